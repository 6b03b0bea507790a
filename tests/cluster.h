// A real cluster on loopback for the integration tests: a `sweep scheduler`
// process and `sweep worker` processes, all started from the binary under test.
#ifndef SWEEP_TESTS_CLUSTER_H_
#define SWEEP_TESTS_CLUSTER_H_

#include <signal.h>

#include <map>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/testing.h"

namespace sweep::testing {

class Cluster {
 public:
  ~Cluster() {
    for (auto& w : workers_) w.Stop(absl::Seconds(5));
    if (scheduler_) scheduler_->Stop(absl::Seconds(5));
  }

  const TempDir& dir() const { return dir_; }
  std::string db() const { return dir_ / "sweeps.db"; }
  const std::string& address() const { return address_; }

  // Starts the scheduler on `listen` (default: a free loopback port). The default
  // lease (30 s) outlasts any stall of a loaded machine, so that no lease of a live
  // worker expires; a test that needs a dead worker's lease to expire passes a
  // shorter one.
  void StartScheduler(double lease_timeout = 30, double heartbeat = 0.2,
                      const std::string& listen = "127.0.0.1:0",
                      const std::vector<std::string>& extra_args = {}) {
    lease_timeout_ = lease_timeout;
    heartbeat_ = heartbeat;
    extra_args_ = extra_args;
    std::string port_file = dir_ / "port";
    std::filesystem::remove(port_file);
    SpawnOptions o;
    o.argv = {SweepBin(), "scheduler", "--listen", listen, "--db", db(),
              "--http", "127.0.0.1:0", "--port-file", port_file,
              "--lease-timeout", absl::StrCat(lease_timeout),
              "--heartbeat-interval", absl::StrCat(heartbeat), "--log-level", "debug"};
    o.argv.insert(o.argv.end(), extra_args.begin(), extra_args.end());
    o.stdout_path = dir_ / "scheduler.log";
    o.stderr_path = dir_ / "scheduler.log";
    auto child = ChildProcess::Spawn(o);
    ASSERT_TRUE(child.ok()) << child.status();
    scheduler_.emplace(std::move(*child));
    ASSERT_TRUE(WaitFor([&] { return !ReadFile(port_file).empty(); }, absl::Seconds(20)))
        << ReadFile(dir_ / "scheduler.log");
    address_ = std::string(absl::StripAsciiWhitespace(ReadFile(port_file)));
  }

  void KillScheduler() { scheduler_.reset(); }
  pid_t scheduler_pid() const { return scheduler_->pid(); }

  // SIGKILLs the scheduler, waits `down`, and starts a new one on the same address
  // and database.
  void RestartScheduler(absl::Duration down) {
    ASSERT_TRUE(scheduler_);
    scheduler_->Signal(SIGKILL);
    scheduler_->Wait(absl::Seconds(5));
    scheduler_.reset();
    absl::SleepFor(down);
    StartScheduler(lease_timeout_, heartbeat_, address_, extra_args_);
  }

  // Starts `sweep worker --cpus N`; returns its index in workers().
  size_t StartWorker(int cpus, const std::string& work_dir = "runs") {
    return StartWorkerWith({"--cpus", absl::StrCat(cpus)}, {}, work_dir);
  }

  // Starts `sweep worker` with `slot_args` (e.g. {"--gpus", "all"}) and extra
  // environment ("PATH=..."); returns its index in workers().
  size_t StartWorkerWith(const std::vector<std::string>& slot_args,
                         const std::vector<std::string>& env,
                         const std::string& work_dir = "runs") {
    SpawnOptions o;
    size_t n = workers_.size();
    o.argv = {SweepBin(), "worker", "--scheduler", address_, "--work-dir", dir_ / work_dir,
              "--kill-grace", "1", "--drain-timeout", "2", "--log-level", "debug"};
    o.argv.insert(o.argv.end(), slot_args.begin(), slot_args.end());
    if (!env.empty()) o.env = EnvWith(env);
    o.stdout_path = dir_ / absl::StrCat("worker", n, ".log");
    o.stderr_path = dir_ / absl::StrCat("worker", n, ".log");
    auto child = ChildProcess::Spawn(o);
    EXPECT_TRUE(child.ok()) << child.status();
    workers_.push_back(std::move(*child));
    return n;
  }

  ChildProcess& worker(size_t i) { return workers_[i]; }

  // Writes `yaml` to a file and submits it with `sweep submit`; returns the id.
  std::string Submit(const std::string& yaml) {
    std::string file = dir_ / "spec.yaml";
    WriteFile(file, yaml);
    CommandResult r = RunSweep({"submit", file, "--scheduler", address_}, dir_);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return std::string(absl::StripAsciiWhitespace(r.out));
  }

  CommandResult Sweep(std::vector<std::string> args) {
    args.push_back("--scheduler");
    args.push_back(address_);
    return RunSweep(args, dir_);
  }

  // Waits until the sweep is no longer running and none of its trials runs.
  bool WaitEnded(const std::string& sweep, absl::Duration timeout) {
    Db db(this->db());
    return WaitFor(
        [&] {
          return db.Value("SELECT state FROM sweeps WHERE id='" + sweep + "'") != "running" &&
                 db.Value("SELECT COUNT(*) FROM trials WHERE sweep_id='" + sweep +
                          "' AND state IN ('running','queued')") == "0";
        },
        timeout);
  }

  std::string Logs() const {
    std::string out = "--- scheduler\n" + ReadFile(dir_ / "scheduler.log");
    for (size_t i = 0; i < workers_.size(); ++i) {
      out += absl::StrCat("--- worker", i, "\n", ReadFile(dir_ / absl::StrCat("worker", i, ".log")));
    }
    return out;
  }

 private:
  TempDir dir_;
  std::optional<ChildProcess> scheduler_;
  double lease_timeout_ = 30, heartbeat_ = 0.2;
  std::vector<std::string> extra_args_;  // StartScheduler's, kept for a restart
  std::vector<ChildProcess> workers_;
  std::string address_;
};

// Reads a trial's seen.txt (KEY=VALUE lines) into a map.
inline std::map<std::string, std::string> ReadSeen(const std::string& path) {
  std::map<std::string, std::string> out;
  for (absl::string_view line : absl::StrSplit(ReadFile(path), '\n')) {
    size_t eq = line.find('=');
    if (eq == absl::string_view::npos) continue;
    out[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
  }
  return out;
}

inline std::string TrialScript() { return SourceDir() + "/tests/data/trial.sh"; }

// The spec's `command` for TrialScript(), holding every trial at `gate` (see
// trial.sh --gate) when that is not empty.
inline std::string TrialCommand(const std::string& gate = "") {
  return gate.empty() ? R"(["/bin/sh", "${program}", "${args}"])"
                      : absl::StrCat(R"(["/bin/sh", "${program}", "--gate=)", gate,
                                     R"(", "${args}"])");
}

// The number of the sweep's trials in `state`.
inline int CountTrials(Db& db, const std::string& sweep, const std::string& state) {
  return std::stoi(db.Value("SELECT COUNT(*) FROM trials WHERE sweep_id='" + sweep +
                            "' AND state='" + state + "'"));
}

}  // namespace sweep::testing

#endif  // SWEEP_TESTS_CLUSTER_H_
