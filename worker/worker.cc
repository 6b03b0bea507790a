#include "worker/worker.h"

#include <signal.h>

#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/process.h"
#include "common/rpc.h"
#include "common/status_util.h"
#include "spdlog/spdlog.h"
#include "worker/gpu_monitor.h"
#include "worker/grpc_scheduler_link.h"
#include "worker/lifecycle.h"
#include "worker/slot.h"

namespace sweep {
namespace {

// This process's one sweep-group-guard (common/process.h), started on first use; it
// lives as long as the process. Null, with a warning, when it cannot be started:
// trials then still die with the worker, but what they started may not.
GroupGuard* TrialGroupGuard() {
  static GroupGuard* const guard = []() -> GroupGuard* {
    std::string path = GroupGuardPath();
    absl::StatusOr<std::unique_ptr<GroupGuard>> g =
        path.empty() ? absl::NotFoundError("sweep-group-guard is not next to sweep")
                     : GroupGuard::Start(path);
    if (!g.ok()) {
      spdlog::warn("no group guard ({}): if this worker is killed, processes its trials "
                   "started may live on", std::string(g.status().message()));
      return nullptr;
    }
    return g->release();
  }();
  return guard;
}

// Blocks the stop signals in every thread and turns them into lifecycle steps on
// a thread of their own. Returns that thread, detached.
void HandleSignals(Lifecycle* life, std::function<void(Phase)> on_signal) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set, life, on_signal] {
    while (true) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      life->Advance();
      spdlog::info("got signal {}: {}", sig,
                   life->phase() == kDraining ? "draining (send again to stop now)"
                                              : "stopping now");
      if (on_signal) on_signal(life->phase());
    }
  }).detach();
}

// --gpus: one `sweep worker --gpu UUID` process per GPU or MIG device; forwards stop
// signals.
int Supervise(const WorkerOptions& o, const std::vector<Gpu>& gpus) {
  Lifecycle life(SystemClock::Get());
  std::vector<ChildProcess> children;
  absl::Mutex mu;
  HandleSignals(&life, [&](Phase phase) {
    absl::MutexLock lock(&mu);
    for (ChildProcess& c : children) c.Signal(SIGTERM);
  });
  {
    absl::MutexLock lock(&mu);
    for (const Gpu& g : gpus) {
      SpawnOptions so;
      so.argv = {SelfExecutable(),
                 "worker",
                 "--scheduler", o.scheduler,
                 "--token-file", o.token_file,
                 "--tls-ca", o.tls_ca,
                 "--gpu", g.uuid,
                 "--work-dir", o.work_dir,
                 "--drain-timeout", absl::StrCat(absl::ToInt64Seconds(o.drain_timeout)),
                 "--kill-grace", absl::StrCat(absl::ToInt64Seconds(o.kill_grace)),
                 "--slots-per-gpu", absl::StrCat(o.slots_per_gpu),
                 "--gpu-sample-interval",
                 absl::StrCat(absl::ToDoubleSeconds(o.gpu_sample_interval)),
                 "--gpu-release-timeout",
                 absl::StrCat(absl::ToDoubleSeconds(o.gpu_release_timeout)),
                 "--max-log-mib", absl::StrCat(o.max_log_mib),
                 "--max-metric-points-per-second",
                 absl::StrCat(o.metrics.max_points_per_second),
                 "--max-metric-names", absl::StrCat(o.metrics.max_names),
                 "--max-metrics-backlog-mib", absl::StrCat(o.max_metrics_backlog_mib),
                 "--log-level", o.log_level};
      so.new_process_group = false;  // a terminal's Ctrl-C reaches them too
      absl::StatusOr<ChildProcess> c = ChildProcess::Spawn(so);
      if (!c.ok()) {
        spdlog::error("cannot start the worker for {}: {}", g.Label(),
                      std::string(c.status().message()));
        return kExitFailure;
      }
      spdlog::info("started worker for {} ({}, {} MiB), pid {}", g.Label(), g.name,
                   g.memory_mib, c->pid());
      children.push_back(std::move(*c));
    }
  }
  int rc = kExitOk;
  for (size_t i = 0; i < children.size(); ++i) {
    ExitStatus st;
    while (true) {
      std::optional<ExitStatus> s;
      {
        absl::MutexLock lock(&mu);
        s = children[i].Wait(absl::Milliseconds(200));
      }
      if (s) {
        st = *s;
        break;
      }
    }
    if (!st.ok()) rc = kExitFailure;
  }
  return rc;
}

}  // namespace

int RunWorker(const WorkerOptions& o, GpuDiscovery* discovery,
              std::shared_ptr<GpuProbe> probe) {
  int modes = !o.gpu.empty() + !o.gpus.empty() + (o.cpus > 0);
  if (modes != 1) {
    spdlog::error("give exactly one of --gpu N, --gpus all|LIST or --cpus N");
    return kExitBadInput;
  }
  if (o.slots_per_gpu < 1) {
    spdlog::error("--slots-per-gpu must be at least 1");
    return kExitBadInput;
  }
  std::vector<std::optional<Gpu>> slots;
  std::vector<Gpu> node_gpus;
  if (!o.gpus.empty() || !o.gpu.empty()) {
    absl::StatusOr<std::vector<Gpu>> all = discovery->Discover();
    if (!all.ok()) {
      spdlog::error("{}", std::string(all.status().message()));
      return kExitBadInput;
    }
    const std::string& which = o.gpus.empty() ? o.gpu : o.gpus;
    absl::StatusOr<std::vector<Gpu>> chosen = SelectGpus(*all, which);
    if (!chosen.ok()) {
      spdlog::error("{}: {}", o.gpus.empty() ? "--gpu" : "--gpus",
                    std::string(chosen.status().message()));
      return kExitBadInput;
    }
    if (!o.gpus.empty()) return Supervise(o, *chosen);
    if (chosen->size() != 1) {
      std::vector<std::string> names;
      for (const Gpu& g : *chosen) names.push_back(g.uuid);
      spdlog::error("--gpu {} names {} devices ({}): give one of them, or --gpus {} for one "
                    "worker process each",
                    o.gpu, chosen->size(), absl::StrJoin(names, ", "), o.gpu);
      return kExitBadInput;
    }
    slots.assign(o.slots_per_gpu, chosen->front());
    node_gpus = *all;
  } else {
    slots.assign(o.cpus, std::nullopt);
  }

  absl::StatusOr<RpcSecurity> sec = LoadRpcSecurity(o.token_file, o.tls_ca);
  if (!sec.ok()) {
    spdlog::error("{}", std::string(sec.status().message()));
    return kExitBadInput;
  }
  Clock* clock = SystemClock::Get();
  Lifecycle life(clock);
  HandleSignals(&life, nullptr);  // before any thread starts: they inherit the mask
  std::unique_ptr<GpuMonitor> monitor;
  if (!node_gpus.empty()) {
    if (probe == nullptr) probe = NewNvmlProbe();
    monitor = std::make_unique<GpuMonitor>(probe, std::vector<std::string>{slots.front()->uuid},
                                           o.gpu_sample_interval, clock);
    spdlog::info("{} ({}, {}, {} MiB) through {}", slots.front()->Label(), slots.front()->name,
                 slots.front()->uuid, slots.front()->memory_mib, discovery->Source());
  }
  std::unique_ptr<SchedulerLink> link = NewGrpcSchedulerLink(o.scheduler, *sec);
  SlotOptions so;
  so.work_dir = o.work_dir;
  so.drain_timeout = o.drain_timeout;
  so.kill_grace = o.kill_grace;
  so.poll_interval = o.poll_interval;
  so.gpu_sample_interval = o.gpu_sample_interval;
  so.gpu_release_timeout = o.gpu_release_timeout;
  so.max_log_bytes = o.max_log_mib << 20;
  so.metrics = o.metrics;
  so.metrics.max_backlog_bytes = o.max_metrics_backlog_mib << 20;
  SlotWorld world;
  world.link = link.get();
  world.clock = clock;
  world.life = &life;
  world.monitor = monitor.get();
  world.node = &node_gpus;
  world.group_guard = TrialGroupGuard();
  std::vector<std::unique_ptr<Slot>> workers;
  std::vector<std::thread> threads;
  for (size_t i = 0; i < slots.size(); ++i) {
    workers.push_back(std::make_unique<Slot>(so, world, static_cast<int>(i), slots[i]));
  }
  spdlog::info("worker with {} {} slot(s), scheduler {}, work dir {}", slots.size(),
               slots.front() ? "GPU" : "CPU", o.scheduler, o.work_dir);
  for (auto& w : workers) threads.emplace_back([&w] { w->Run(); });
  for (std::thread& t : threads) t.join();
  spdlog::info("worker stopped");
  return kExitOk;
}

}  // namespace sweep
