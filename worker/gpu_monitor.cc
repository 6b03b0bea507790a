#include "worker/gpu_monitor.h"

#include <algorithm>
#include <deque>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
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

struct GpuMonitor::State {
  struct Active {
    pid_t leader = 0;
    std::vector<std::string> uuids;
    int64_t baseline_mib = -1;  // memory in use on its first device when it began
    absl::Time begin;
    TrialGpuUse use;
  };
  // The previous sample of a device: when it began and the energy counter then.
  struct Previous {
    absl::Time time;
    std::optional<double> energy_joules;
  };

  State(std::shared_ptr<GpuProbe> p, std::vector<std::string> w, absl::Duration i, Clock* c)
      : probe(std::move(p)), watch(std::move(w)), interval(i), clock(c) {}

  void Loop();
  void Fold(const GpuReading& reading, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void Note(const std::vector<GpuFault>& reported, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  bool Uses(const Active& a, const std::string& uuid) const {
    return std::find(a.uuids.begin(), a.uuids.end(), uuid) != a.uuids.end();
  }

  const std::shared_ptr<GpuProbe> probe;
  const std::vector<std::string> watch;
  const absl::Duration interval;
  Clock* const clock;
  std::thread thread;
  absl::Mutex mu;
  bool stop ABSL_GUARDED_BY(mu) = false;
  bool done ABSL_GUARDED_BY(mu) = false;       // the sampler returned
  bool requested ABSL_GUARDED_BY(mu) = false;  // a slot asked for a sample
  absl::Time last_attempt ABSL_GUARDED_BY(mu) = absl::InfinitePast();
  absl::Time last_start ABSL_GUARDED_BY(mu) = absl::InfinitePast();  // of the newest sample
  absl::Duration last_duration ABSL_GUARDED_BY(mu);  // of the newest read, ok or not
  absl::Time reading_since ABSL_GUARDED_BY(mu) = absl::InfiniteFuture();  // one in flight
  std::map<std::string, Active> active ABSL_GUARDED_BY(mu);
  std::map<std::string, Previous> previous ABSL_GUARDED_BY(mu);  // by device UUID
  std::map<std::string, GpuSample> last_samples ABSL_GUARDED_BY(mu);  // by device UUID
  std::vector<GpuProcess> last_procs ABSL_GUARDED_BY(mu);
  // Xids by device, with the start of the sample that brought them.
  struct Fault {
    std::string uuid;
    int64_t xid;
    absl::Time time;
  };
  std::deque<Fault> faults ABSL_GUARDED_BY(mu);
  std::map<std::string, std::string> broken ABSL_GUARDED_BY(mu);  // UUID -> the Xid
  bool warned ABSL_GUARDED_BY(mu) = false;
};

void GpuMonitor::State::Loop() {
  while (true) {
    std::vector<std::string> uuids;
    {
      absl::MutexLock lock(&mu);
      auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return stop || requested; };
      clock->AwaitWithDeadline(&mu, absl::Condition(&wake), last_attempt + interval);
      if (stop) {
        done = true;
        return;
      }
      requested = false;
      reading_since = absl::Now();
      uuids = watch;
      for (const auto& [id, a] : active) {
        for (const std::string& u : a.uuids) {
          if (!u.empty() && std::find(uuids.begin(), uuids.end(), u) == uuids.end()) {
            uuids.push_back(u);
          }
        }
      }
    }
    absl::Time start = clock->Now();
    absl::Time real_start = absl::Now();  // how long the driver takes is real time
    absl::StatusOr<GpuReading> reading = probe->Read(uuids);
    absl::MutexLock lock(&mu);
    last_attempt = start;
    last_duration = absl::Now() - real_start;
    reading_since = absl::InfiniteFuture();
    if (!reading.ok()) {
      if (!warned) {
        spdlog::warn("GPU telemetry unavailable: {}", std::string(reading.status().message()));
        warned = true;
      }
      continue;
    }
    Fold(*reading, start);
    Note(reading->faults, start);
    for (const GpuSample& g : reading->gpus) last_samples[g.uuid] = g;
    last_procs = std::move(reading->processes);
    last_start = start;
  }
}

void GpuMonitor::State::Fold(const GpuReading& reading, absl::Time now) {
  // Energy between the previous sample of a device and this one: the driver's
  // counter where both have it, else power times time. Each trial on the device
  // gets an even share of the part of that time it ran.
  for (const GpuSample& g : reading.gpus) {
    if (!g.error.empty()) continue;
    auto prev = previous.find(g.uuid);
    if (prev != previous.end() && now > prev->second.time) {
      double dt = absl::ToDoubleSeconds(now - prev->second.time);
      std::optional<double> joules;
      if (g.energy_joules && prev->second.energy_joules) {
        joules = std::max(0.0, *g.energy_joules - *prev->second.energy_joules);
      } else if (g.power_watts) {
        joules = *g.power_watts * dt;
      }
      std::vector<Active*> on;
      for (auto& [id, a] : active) {
        if (Uses(a, g.uuid)) on.push_back(&a);
      }
      for (Active* a : on) {
        if (!joules) break;
        double ran = absl::ToDoubleSeconds(now - std::max(prev->second.time, a->begin));
        a->use.energy_joules += *joules * std::clamp(ran / dt, 0.0, 1.0) / on.size();
      }
    }
    previous[g.uuid] = Previous{now, g.energy_joules};
  }
  for (auto& [id, a] : active) {
    if (a.uuids.empty()) continue;
    int64_t held = 0;
    bool listed = false;  // NVML lists any process on its first device
    for (const GpuProcess& p : reading.processes) {
      if (!Uses(a, p.uuid)) continue;
      listed |= p.uuid == a.uuids.front();
      if (!a.use.pids.count(p.pid) && !InProcessTree(p.pid, a.leader)) continue;
      a.use.pids.insert(p.pid);
      a.use.seen_on_gpu = true;
      held += p.used_mib;
    }
    a.use.peak_mib = std::max(a.use.peak_mib, held);
    for (const GpuSample& g : reading.gpus) {
      if (g.uuid != a.uuids.front() || !g.error.empty()) continue;
      ++a.use.samples;
      if (g.utilization) {
        a.use.utilization_sum += *g.utilization;
        ++a.use.utilization_samples;
      }
      if (!listed && a.baseline_mib >= 0 && g.memory_used_mib > a.baseline_mib + 64) {
        a.use.attributable = false;
      }
    }
  }
}

// Keeps the Xids; one of XidKind::kDevice takes its device out of use for good.
// The driver reports an Xid to every process listening on the node, so each worker
// process logs only those of devices it uses.
void GpuMonitor::State::Note(const std::vector<GpuFault>& reported, absl::Time now) {
  for (const GpuFault& f : reported) {
    faults.push_back(Fault{f.uuid, f.xid, now});
    if (faults.size() > 256) faults.pop_front();
    bool ours = std::find(watch.begin(), watch.end(), f.uuid) != watch.end();
    for (const auto& [id, a] : active) ours |= Uses(a, f.uuid);
    XidKind kind = ClassifyXid(f.xid);
    if (kind == XidKind::kDevice) broken.emplace(f.uuid, XidText(f.xid));
    if (!ours) continue;
    if (kind == XidKind::kDevice) {
      spdlog::error("the driver reported {} for {}; it takes no more trials until it is reset",
                    XidText(f.xid), f.uuid);
    } else {
      spdlog::warn("the driver reported {} for {}", XidText(f.xid), f.uuid);
    }
  }
}

GpuMonitor::GpuMonitor(std::shared_ptr<GpuProbe> probe, std::vector<std::string> watch,
                       absl::Duration interval, Clock* clock)
    : state_(std::make_shared<State>(std::move(probe), std::move(watch), interval, clock)) {
  state_->thread = std::thread([s = state_] { s->Loop(); });
}

GpuMonitor::~GpuMonitor() {
  bool done;
  {
    absl::MutexLock lock(&state_->mu);
    state_->stop = true;
    auto finished = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu) { return state_->done; };
    done = state_->mu.AwaitWithTimeout(absl::Condition(&finished), absl::Seconds(1));
  }
  // A sampler stuck in the driver keeps its own reference to the state and probe.
  if (done) {
    state_->thread.join();
  } else {
    state_->thread.detach();
  }
}

void GpuMonitor::Begin(const std::string& trial, pid_t leader,
                       const std::vector<std::string>& uuids, int64_t baseline_mib) {
  absl::MutexLock lock(&state_->mu);
  State::Active& a = state_->active[trial];
  a = State::Active();
  a.leader = leader;
  a.uuids = uuids;
  a.baseline_mib = baseline_mib;
  a.begin = state_->clock->Now();
  state_->requested = true;
}

TrialGpuUse GpuMonitor::Usage(const std::string& trial) {
  absl::MutexLock lock(&state_->mu);
  auto it = state_->active.find(trial);
  return it == state_->active.end() ? TrialGpuUse() : it->second.use;
}

TrialGpuUse GpuMonitor::End(const std::string& trial) {
  absl::MutexLock lock(&state_->mu);
  auto it = state_->active.find(trial);
  if (it == state_->active.end()) return TrialGpuUse();
  TrialGpuUse use = std::move(it->second.use);
  state_->active.erase(it);
  return use;
}

void GpuMonitor::RequestSample() {
  absl::MutexLock lock(&state_->mu);
  state_->requested = true;
}

absl::Time GpuMonitor::LastSampleTime() {
  absl::MutexLock lock(&state_->mu);
  return state_->last_start;
}

absl::Duration GpuMonitor::ReadDuration() {
  absl::MutexLock lock(&state_->mu);
  return std::max(state_->last_duration, absl::Now() - state_->reading_since);
}

bool GpuMonitor::WaitForSample(absl::Time after, absl::Time deadline) {
  State& s = *state_;
  absl::MutexLock lock(&s.mu);
  if (s.last_start >= after) return true;
  s.requested = true;
  auto in = [&s, after]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s.mu) {
    return s.last_start >= after || s.stop;
  };
  s.clock->AwaitWithDeadline(&s.mu, absl::Condition(&in), deadline);
  return s.last_start >= after;
}

std::optional<GpuSample> GpuMonitor::Reading(const std::string& uuid) {
  absl::MutexLock lock(&state_->mu);
  auto it = state_->last_samples.find(uuid);
  if (it == state_->last_samples.end()) return std::nullopt;
  return it->second;
}

GpuMonitor::Release GpuMonitor::CheckReleased(const std::string& uuid, const TrialGpuUse& use,
                                              int64_t baseline_mib, bool was_alone,
                                              absl::Time after, absl::Time deadline,
                                              std::string* held) {
  if (!WaitForSample(after, deadline)) return Release::kUnknown;
  State& s = *state_;
  absl::MutexLock lock(&s.mu);
  std::vector<std::string> left;
  int64_t left_mib = 0;
  for (const GpuProcess& p : s.last_procs) {
    if (p.uuid != uuid || !use.pids.count(p.pid)) continue;
    left.push_back(absl::StrCat(p.pid));
    left_mib += p.used_mib;
  }
  int64_t used = -1;
  if (auto it = s.last_samples.find(uuid); it != s.last_samples.end() && it->second.error.empty()) {
    used = it->second.memory_used_mib;
  }
  bool others = false;
  for (const auto& [id, a] : s.active) others |= s.Uses(a, uuid);
  if (!left.empty()) {
    *held = absl::StrCat(left_mib, " MiB still held by process", left.size() == 1 ? "" : "es",
                         " ", absl::StrJoin(left, ", "), " of the trial");
    return Release::kHeld;
  }
  if (was_alone && !others && baseline_mib >= 0 && used > baseline_mib + 256) {
    *held = absl::StrCat(used - baseline_mib, " MiB more in use than before the trial (", used,
                         " MiB now, ", baseline_mib, " before)");
    return Release::kHeld;
  }
  return Release::kReleased;
}

std::vector<std::string> GpuMonitor::Foreign(const std::string& uuid) {
  std::vector<GpuProcess> procs;
  std::vector<State::Active> trials;
  {
    absl::MutexLock lock(&state_->mu);
    procs = state_->last_procs;
    for (const auto& [id, a] : state_->active) trials.push_back(a);
  }
  std::vector<std::string> out;
  for (const GpuProcess& p : procs) {
    if (p.uuid != uuid) continue;
    bool ours = false;
    for (const State::Active& a : trials) {
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

bool GpuMonitor::Shared(const std::string& uuid, const std::string& except_trial) {
  absl::MutexLock lock(&state_->mu);
  for (const auto& [id, a] : state_->active) {
    if (id != except_trial && state_->Uses(a, uuid)) return true;
  }
  return false;
}

bool GpuMonitor::Broken(const std::string& uuid, std::string* why) {
  absl::MutexLock lock(&state_->mu);
  if (auto it = state_->broken.find(uuid); it != state_->broken.end()) {
    *why = absl::StrCat("reported ", it->second);
    return true;
  }
  auto it = state_->last_samples.find(uuid);
  if (it == state_->last_samples.end() || !it->second.lost) return false;
  *why = absl::StrCat("is lost: ", it->second.error);
  return true;
}

std::vector<int64_t> GpuMonitor::XidsSince(const std::string& uuid, absl::Time since) {
  absl::MutexLock lock(&state_->mu);
  std::vector<int64_t> out;
  for (const State::Fault& f : state_->faults) {
    if (f.uuid == uuid && f.time >= since) out.push_back(f.xid);
  }
  return out;
}

}  // namespace sweep
