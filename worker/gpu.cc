#include "worker/gpu.h"

#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/process.h"
#include "common/status_util.h"

namespace sweep {
namespace {

class NvidiaSmiDiscovery final : public GpuDiscovery {
 public:
  absl::StatusOr<std::vector<Gpu>> Discover() override {
    char path[] = "/tmp/sweep-nvidia-smi-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return absl::InternalError("cannot make a temporary file");
    close(fd);
    SpawnOptions o;
    o.argv = {"nvidia-smi", "--query-gpu=index,uuid,name,memory.total",
              "--format=csv,noheader,nounits"};
    o.stdout_path = path;
    o.stderr_path = "/dev/null";
    absl::StatusOr<ChildProcess> child = ChildProcess::Spawn(o);
    if (!child.ok()) {
      unlink(path);
      return absl::NotFoundError(
          "no NVIDIA GPU found: nvidia-smi is not on PATH (use --cpus N on a machine "
          "without GPUs)");
    }
    std::optional<ExitStatus> st = child->Wait(absl::Seconds(30));
    if (!st) st = child->Stop(absl::ZeroDuration());
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    unlink(path);
    if (!st->ok()) {
      return absl::NotFoundError(absl::StrCat(
          "no NVIDIA GPU found: nvidia-smi failed (", st->ToString(),
          "); is the driver loaded? Use --cpus N on a machine without GPUs"));
    }
    SWEEP_ASSIGN_OR_RETURN(std::vector<Gpu> gpus, ParseNvidiaSmiCsv(text.str()));
    if (gpus.empty()) return absl::NotFoundError("nvidia-smi lists no GPU");
    return gpus;
  }
};

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
