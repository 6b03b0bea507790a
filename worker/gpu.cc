#include "worker/gpu.h"

#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/process.h"
#include "common/status_util.h"

namespace sweep {
namespace {

// Runs nvidia-smi with `args`; returns its stdout. NotFound when it is not on PATH,
// Unavailable when it fails or takes longer than `timeout`.
absl::StatusOr<std::string> RunNvidiaSmi(std::vector<std::string> args,
                                         absl::Duration timeout) {
  char path[] = "/tmp/sweep-nvidia-smi-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return absl::InternalError("cannot make a temporary file");
  close(fd);
  SpawnOptions o;
  o.argv = {"nvidia-smi"};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.stdout_path = path;
  o.stderr_path = "/dev/null";
  absl::StatusOr<ChildProcess> child = ChildProcess::Spawn(o);
  if (!child.ok()) {
    unlink(path);
    return absl::NotFoundError("nvidia-smi is not on PATH");
  }
  std::optional<ExitStatus> st = child->Wait(timeout);
  if (!st) st = child->Stop(absl::ZeroDuration());
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  unlink(path);
  if (!st->ok()) {
    return absl::UnavailableError(absl::StrCat("nvidia-smi failed (", st->ToString(), ")"));
  }
  return text.str();
}

class NvidiaSmiDiscovery final : public GpuDiscovery {
 public:
  absl::StatusOr<std::vector<Gpu>> Discover() override {
    absl::StatusOr<std::string> text = RunNvidiaSmi(
        {"--query-gpu=index,uuid,name,memory.total", "--format=csv,noheader,nounits"},
        absl::Seconds(30));
    if (absl::IsNotFound(text.status())) {
      return absl::NotFoundError(
          "no NVIDIA GPU found: nvidia-smi is not on PATH (use --cpus N on a machine "
          "without GPUs)");
    }
    if (!text.ok()) {
      return absl::NotFoundError(absl::StrCat(
          "no NVIDIA GPU found: ", text.status().message(),
          "; is the driver loaded? Use --cpus N on a machine without GPUs"));
    }
    SWEEP_ASSIGN_OR_RETURN(std::vector<Gpu> gpus, ParseNvidiaSmiCsv(*text));
    if (gpus.empty()) return absl::NotFoundError("nvidia-smi lists no GPU");
    return gpus;
  }
};

class NvidiaSmiProbe final : public GpuProbe {
 public:
  absl::StatusOr<std::vector<GpuSample>> Sample() override {
    absl::StatusOr<std::string> text = RunNvidiaSmi(
        {"--query-gpu=index,uuid,utilization.gpu,memory.used,memory.total,power.draw",
         "--format=csv,noheader,nounits"},
        absl::Seconds(10));
    if (!text.ok()) return absl::UnavailableError(text.status().message());
    return ParseGpuSampleCsv(*text);
  }
  absl::StatusOr<std::vector<GpuProcess>> Processes() override {
    absl::StatusOr<std::string> text = RunNvidiaSmi(
        {"--query-compute-apps=pid,gpu_uuid,used_memory", "--format=csv,noheader,nounits"},
        absl::Seconds(10));
    if (!text.ok()) return absl::UnavailableError(text.status().message());
    return ParseComputeAppsCsv(*text);
  }
};

// The fields of one CSV line, trimmed.
std::vector<std::string> Fields(absl::string_view line) {
  std::vector<std::string> f = absl::StrSplit(line, ',');
  for (std::string& s : f) s = std::string(absl::StripAsciiWhitespace(s));
  return f;
}

// A number, or 0 for what nvidia-smi prints when it has none ("[N/A]", "[Not
// Supported]", "N/A").
bool NumberOrNa(const std::string& s, double* out) {
  if (absl::SimpleAtod(s, out)) return true;
  *out = 0;
  return s.find("N/A") != std::string::npos || s.find("Not Supported") != std::string::npos ||
         s.find("Unknown") != std::string::npos;
}

}  // namespace

std::unique_ptr<GpuDiscovery> NewNvidiaSmiDiscovery() {
  return std::make_unique<NvidiaSmiDiscovery>();
}

absl::StatusOr<std::vector<Gpu>> ParseNvidiaSmiCsv(const std::string& text) {
  std::vector<Gpu> gpus;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    std::vector<std::string> f = absl::StrSplit(line, ',');
    for (std::string& s : f) s = std::string(absl::StripAsciiWhitespace(s));
    Gpu g;
    if (f.size() != 4 || !absl::SimpleAtoi(f[0], &g.index) ||
        !absl::SimpleAtoi(f[3], &g.memory_mib)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "nvidia-smi output line ", line_no, " is not 'index, uuid, name, memory': ",
          line));
    }
    g.uuid = f[1];
    g.name = f[2];
    gpus.push_back(g);
  }
  return gpus;
}

absl::StatusOr<std::vector<GpuSample>> ParseGpuSampleCsv(const std::string& text) {
  std::vector<GpuSample> out;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    std::vector<std::string> f = Fields(line);
    GpuSample g;
    double used = 0, total = 0;
    if (f.size() != 6 || !absl::SimpleAtoi(f[0], &g.index) ||
        !NumberOrNa(f[2], &g.utilization) || !NumberOrNa(f[3], &used) ||
        !NumberOrNa(f[4], &total) || !NumberOrNa(f[5], &g.power_watts)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "nvidia-smi output line ", line_no,
          " is not 'index, uuid, utilization, memory used, memory total, power': ", line));
    }
    g.uuid = f[1];
    g.memory_used_mib = static_cast<int64_t>(used);
    g.memory_total_mib = static_cast<int64_t>(total);
    out.push_back(g);
  }
  return out;
}

absl::StatusOr<std::vector<GpuProcess>> ParseComputeAppsCsv(const std::string& text) {
  std::vector<GpuProcess> out;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || absl::StartsWith(line, "No running")) continue;
    std::vector<std::string> f = Fields(line);
    GpuProcess p;
    double used = 0;
    if (f.size() != 3 || !absl::SimpleAtoi(f[0], &p.pid) || !NumberOrNa(f[2], &used)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "nvidia-smi output line ", line_no, " is not 'pid, gpu uuid, used memory': ", line));
    }
    p.uuid = f[1];
    p.used_mib = static_cast<int64_t>(used);
    out.push_back(p);
  }
  return out;
}

std::unique_ptr<GpuProbe> NewNvidiaSmiProbe() { return std::make_unique<NvidiaSmiProbe>(); }

absl::StatusOr<std::vector<Gpu>> SelectGpus(const std::vector<Gpu>& all,
                                            const std::string& which) {
  if (which == "all") return all;
  std::vector<Gpu> out;
  std::set<int> seen;
  for (absl::string_view part : absl::StrSplit(which, ',')) {
    int index;
    if (!absl::SimpleAtoi(part, &index) || index < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--gpus: expected 'all' or a comma-separated list of GPU indexes, got '", which,
          "'"));
    }
    if (!seen.insert(index).second) continue;
    bool found = false;
    for (const Gpu& g : all) {
      if (g.index == index) {
        out.push_back(g);
        found = true;
      }
    }
    if (!found) {
      return absl::NotFoundError(absl::StrCat("this node has no GPU ", index, " (it has ",
                                              all.size(), ")"));
    }
  }
  return out;
}

}  // namespace sweep
