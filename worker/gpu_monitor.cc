#include "worker/gpu_monitor.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "spdlog/spdlog.h"

namespace sweep {
namespace {

// pid's parent and process group from /proc/<pid>/stat; false when it is gone.
bool ReadStat(int pid, int* ppid, int* pgrp) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = text.rfind(')');
  if (close == std::string::npos) return false;
  std::vector<std::string> f = absl::StrSplit(text.substr(close + 2), ' ');
  // state ppid pgrp ...
  return f.size() > 2 && absl::SimpleAtoi(f[1], ppid) && absl::SimpleAtoi(f[2], pgrp);
}

std::string CommandName(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/comm"));
  std::string name;
  std::getline(in, name);
  return name.empty() ? "?" : name;
}

// The SWEEP_TRIAL_ID in pid's environment, when we may read it.
std::string TrialOf(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/environ"), std::ios::binary);
  std::string env((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (absl::string_view kv : absl::StrSplit(env, '\0')) {
    if (absl::ConsumePrefix(&kv, "SWEEP_TRIAL_ID=")) return std::string(kv);
  }
  return "";
}

}  // namespace

bool InProcessTree(int pid, pid_t leader) {
  int ppid = 0, pgrp = 0;
  if (!ReadStat(pid, &ppid, &pgrp)) return false;
  if (pid == leader || pgrp == leader) return true;
  for (int depth = 0; depth < 64 && ppid > 1; ++depth) {
    if (ppid == leader) return true;
    int next = 0;
    if (!ReadStat(ppid, &next, &pgrp)) return false;
    ppid = next;
  }
  return false;
}

GpuMonitor::GpuMonitor(GpuProbe* probe, std::vector<Gpu> gpus, absl::Duration interval)
    : probe_(probe), gpus_(std::move(gpus)), interval_(interval) {
  thread_ = std::thread([this] { Loop(); });
}

GpuMonitor::~GpuMonitor() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void GpuMonitor::Loop() {
  while (true) {
    bool sample = false;
    {
      absl::MutexLock lock(&mu_);
      auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
      mu_.AwaitWithTimeout(absl::Condition(&stopping), interval_);
      if (stop_) return;
      sample = !active_.empty();
    }
    if (sample) {
      if (absl::Status st = SampleNow(); !st.ok()) {
        absl::MutexLock lock(&mu_);
        if (!warned_) {
          spdlog::warn("GPU telemetry unavailable: {}", std::string(st.message()));
          warned_ = true;
        }
      }
    }
  }
}

std::string GpuMonitor::UuidOf(int index) const {
  for (const Gpu& g : gpus_) {
    if (g.index == index) return g.uuid;
  }
  return "";
}

void GpuMonitor::Begin(const std::string& trial, pid_t leader,
                       const std::vector<int>& gpu_indexes, int64_t baseline_mib) {
  absl::MutexLock lock(&mu_);
  Active& a = active_[trial];
  a = Active();
  a.leader = leader;
  for (int index : gpu_indexes) a.uuids.push_back(UuidOf(index));
  a.baseline_mib = baseline_mib;
}

TrialGpuUse GpuMonitor::Usage(const std::string& trial) {
  absl::MutexLock lock(&mu_);
  auto it = active_.find(trial);
  return it == active_.end() ? TrialGpuUse() : it->second.use;
}

TrialGpuUse GpuMonitor::End(const std::string& trial) {
  SampleNow().IgnoreError();
  absl::MutexLock lock(&mu_);
  auto it = active_.find(trial);
  if (it == active_.end()) return TrialGpuUse();
  TrialGpuUse use = std::move(it->second.use);
  active_.erase(it);
  return use;
}

absl::Status GpuMonitor::SampleNow() {
  absl::MutexLock probe_lock(&sample_mu_);
  absl::StatusOr<std::vector<GpuSample>> samples = probe_->Sample();
  if (!samples.ok()) return samples.status();
  absl::StatusOr<std::vector<GpuProcess>> procs = probe_->Processes();
  if (!procs.ok()) return procs.status();
  absl::MutexLock lock(&mu_);
  Fold(*samples, *procs, absl::Now());
  last_samples_ = std::move(*samples);
  last_procs_ = std::move(*procs);
  return absl::OkStatus();
}

void GpuMonitor::Fold(const std::vector<GpuSample>& samples,
                      const std::vector<GpuProcess>& procs, absl::Time now) {
  // Energy: power times the time since the last sample, split between the trials
  // of this worker on that GPU.
  for (const GpuSample& g : samples) {
    auto last = last_time_.find(g.uuid);
    double dt = last == last_time_.end()
                    ? 0
                    : absl::ToDoubleSeconds(std::min(now - last->second, interval_ * 3));
    last_time_[g.uuid] = now;
    std::vector<Active*> on;
    for (auto& [id, a] : active_) {
      if (std::find(a.uuids.begin(), a.uuids.end(), g.uuid) != a.uuids.end()) on.push_back(&a);
    }
    for (Active* a : on) a->use.energy_joules += g.power_watts * dt / on.size();
  }
  for (auto& [id, a] : active_) {
    if (a.uuids.empty()) continue;
    int64_t held = 0;
    bool listed = false;  // nvidia-smi lists any process on its first GPU
    for (const GpuProcess& p : procs) {
      if (std::find(a.uuids.begin(), a.uuids.end(), p.uuid) == a.uuids.end()) continue;
      listed |= p.uuid == a.uuids.front();
      if (!a.use.pids.count(p.pid) && !InProcessTree(p.pid, a.leader)) continue;
      a.use.pids.insert(p.pid);
      a.use.seen_on_gpu = true;
      held += p.used_mib;
    }
    a.use.peak_mib = std::max(a.use.peak_mib, held);
    for (const GpuSample& g : samples) {
      if (g.uuid != a.uuids.front()) continue;
      a.use.utilization_sum += g.utilization;
      ++a.use.samples;
      if (!listed && a.baseline_mib >= 0 && g.memory_used_mib > a.baseline_mib + 64) {
        a.use.attributable = false;
      }
    }
  }
}

std::optional<GpuSample> GpuMonitor::Reading(int index) {
  if (!SampleNow().ok()) return std::nullopt;
  std::string uuid = UuidOf(index);
  absl::MutexLock lock(&mu_);
  for (const GpuSample& g : last_samples_) {
    if (g.uuid == uuid) return g;
  }
  return std::nullopt;
}

std::string GpuMonitor::WaitReleased(int index, const TrialGpuUse& use, int64_t baseline_mib,
                                     bool was_alone, absl::Duration timeout) {
  std::string uuid = UuidOf(index);
  absl::Time deadline = absl::Now() + timeout;
  std::string held;
  while (true) {
    if (!SampleNow().ok()) return "";  // no telemetry: nothing to wait for
    {
      absl::MutexLock lock(&mu_);
      std::vector<std::string> left;
      int64_t left_mib = 0;
      for (const GpuProcess& p : last_procs_) {
        if (p.uuid != uuid || !use.pids.count(p.pid)) continue;
        left.push_back(absl::StrCat(p.pid));
        left_mib += p.used_mib;
      }
      int64_t used = -1;
      for (const GpuSample& g : last_samples_) {
        if (g.uuid == uuid) used = g.memory_used_mib;
      }
      bool others = false;
      for (const auto& [id, a] : active_) {
        others |= std::find(a.uuids.begin(), a.uuids.end(), uuid) != a.uuids.end();
      }
      if (!left.empty()) {
        held = absl::StrCat(left_mib, " MiB still held by process", left.size() == 1 ? "" : "es",
                            " ", absl::StrJoin(left, ", "), " of the trial");
      } else if (was_alone && !others && baseline_mib >= 0 && used > baseline_mib + 256) {
        held = absl::StrCat(used - baseline_mib, " MiB more in use than before the trial (",
                            used, " MiB now, ", baseline_mib, " before)");
      } else {
        return "";
      }
    }
    if (absl::Now() >= deadline) return held;
    absl::SleepFor(std::min(absl::Milliseconds(200), interval_));
  }
}

std::vector<std::string> GpuMonitor::Foreign(int index) {
  std::string uuid = UuidOf(index);
  std::vector<GpuProcess> procs;
  std::vector<Active> trials;
  {
    absl::MutexLock lock(&mu_);
    procs = last_procs_;
    for (const auto& [id, a] : active_) trials.push_back(a);
  }
  std::vector<std::string> out;
  for (const GpuProcess& p : procs) {
    if (p.uuid != uuid) continue;
    bool ours = false;
    for (const Active& a : trials) {
      ours |= a.use.pids.count(p.pid) > 0 || InProcessTree(p.pid, a.leader);
    }
    if (ours) continue;
    std::string trial = TrialOf(p.pid);
    out.push_back(trial.empty() ? absl::StrCat("pid ", p.pid, " (", CommandName(p.pid), ", ",
                                               p.used_mib, " MiB)")
                                : absl::StrCat("pid ", p.pid, " (sweep trial ", trial, ", ",
                                               p.used_mib, " MiB)"));
  }
  return out;
}

bool GpuMonitor::Shared(int index, const std::string& except_trial) {
  std::string uuid = UuidOf(index);
  absl::MutexLock lock(&mu_);
  for (const auto& [id, a] : active_) {
    if (id != except_trial && std::find(a.uuids.begin(), a.uuids.end(), uuid) != a.uuids.end()) {
      return true;
    }
  }
  return false;
}

}  // namespace sweep
