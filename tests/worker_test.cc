// The worker daemon as users run it: GPU slots found through nvidia-smi (a fake one
// on PATH here), one process per GPU under --gpus, and draining on SIGTERM.
#include <signal.h>
#include <sys/stat.h>

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster.h"

namespace sweep::testing {
namespace {

using ::testing::HasSubstr;

bool Alive(pid_t pid) { return kill(pid, 0) == 0; }

// A grid of trial.sh trials; each holds at `gate` (trial.sh --gate) when given.
std::string Spec(const std::string& extra, double sleep_s, const std::string& x_values,
                 const std::string& gate = "") {
  return absl::StrCat("program: ", TrialScript(), R"(
command: )", TrialCommand(gate), R"(
method: grid
parameters:
  x: {values: )", x_values, R"(}
  sleep: {value: )", sleep_s, "}\n", extra);
}

// A fake nvidia-smi that reports two GPUs, in a directory to put first on PATH.
std::string FakeNvidiaSmi(const Cluster& c) {
  std::string bin = c.dir() / "fakebin";
  std::filesystem::create_directories(bin);
  WriteFile(bin + "/nvidia-smi",
            "#!/bin/sh\n"
            "echo '0, GPU-11111111, Fake GPU, 81559'\n"
            "echo '1, GPU-22222222, Fake GPU, 81559'\n");
  chmod((bin + "/nvidia-smi").c_str(), 0755);
  return "PATH=" + bin + ":" + Env("PATH");
}

std::vector<std::string> SeenFiles(const Cluster& c) {
  std::vector<std::string> out;
  if (!std::filesystem::exists(c.dir() / "runs")) return out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(c.dir() / "runs")) {
    if (e.path().filename() == "seen.txt" && !ReadSeen(e.path())["CWD"].empty()) {
      out.push_back(e.path().string());
    }
  }
  return out;
}

TEST(WorkerTest, GpusAllRunsOneDaemonPerGpuAndPinsEachTrialToItsGpu) {
  Cluster c;
  c.StartScheduler();
  size_t w = c.StartWorkerWith({"--gpus", "all"}, {FakeNvidiaSmi(c)});
  const std::string gate = c.dir() / "go";
  std::string sweep =
      c.Submit(Spec("resources: {gpus_per_trial: 1}\n", 0, "[1, 2, 3, 4, 5, 6]", gate));
  Db db(c.db());
  // The trials hold at the gate until two run at once, which one GPU (one trial at a
  // time by default) cannot do alone: both daemons took trials, however late one
  // came up.
  ASSERT_TRUE(WaitFor([&] { return CountTrials(db, sweep, "running") == 2; },
                      absl::Seconds(60)))
      << c.Logs();
  WriteFile(gate, "");
  ASSERT_TRUE(c.WaitEnded(sweep, absl::Seconds(120))) << c.Logs();

  // One process per GPU, each registering --slots-per-gpu (default 4) slots.
  auto workers = db.Query("SELECT gpu_index, gpu_uuid, gpu_name, gpu_memory_mib, pid, "
                          "COUNT(*) FROM workers GROUP BY gpu_index, pid ORDER BY gpu_index");
  ASSERT_EQ(workers.size(), 2u);
  EXPECT_EQ(workers[0][1], "GPU-11111111");
  EXPECT_EQ(workers[1][2], "Fake GPU");
  EXPECT_EQ(workers[1][3], "81559");
  EXPECT_EQ(workers[0][5], "4");
  EXPECT_NE(workers[0][4], workers[1][4]) << "one process per GPU";

  auto trials = db.Query("SELECT state, gpu, trial_dir FROM trials");
  ASSERT_EQ(trials.size(), 6u);
  std::set<std::string> gpus;
  for (const auto& t : trials) {
    EXPECT_EQ(t[0], "completed");
    EXPECT_EQ(ReadSeen(t[2] + "/seen.txt")["CUDA_VISIBLE_DEVICES"], t[1]);
    gpus.insert(t[1]);
  }
  EXPECT_EQ(gpus, (std::set<std::string>{"0", "1"}));

  // Stopping the supervisor stops its daemons.
  std::vector<pid_t> daemons = {std::stoi(workers[0][4]), std::stoi(workers[1][4])};
  c.worker(w).Signal(SIGTERM);
  auto st = c.worker(w).Wait(absl::Seconds(60));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->exit_code, 0);
  for (pid_t pid : daemons) EXPECT_FALSE(Alive(pid));
}

TEST(WorkerTest, DrainedWorkerGivesItsTrialBackAndLeavesNoProcess) {
  Cluster c;
  c.StartScheduler();
  size_t w = c.StartWorker(1);  // --drain-timeout 2 --kill-grace 1
  // The trial holds at a gate that never opens: it runs until the drain stops it.
  std::string sweep = c.Submit(Spec("", 0, "[1]", c.dir() / "go"));
  std::vector<std::string> seen;
  ASSERT_TRUE(WaitFor([&] { return !(seen = SeenFiles(c)).empty(); }, absl::Seconds(60)))
      << c.Logs();
  pid_t trial = std::stoi(ReadSeen(seen[0])["PID"]);
  c.worker(w).Signal(SIGTERM);
  auto st = c.worker(w).Wait(absl::Seconds(60));
  ASSERT_TRUE(st) << c.Logs();
  EXPECT_EQ(st->exit_code, 0);
  EXPECT_FALSE(Alive(trial));
  Db db(c.db());
  EXPECT_EQ(db.Value("SELECT state FROM trials"), "queued");
  EXPECT_THAT(db.Value("SELECT message FROM trials"), HasSubstr("released by worker"));
  // A new worker picks it up; the release did not cost a retry.
  c.StartWorker(1);
  ASSERT_TRUE(WaitFor([&] { return db.Value("SELECT state FROM trials") == "running"; },
                      absl::Seconds(60)));
  EXPECT_EQ(db.Value("SELECT attempt FROM trials"), "1");
}

TEST(WorkerTest, GpuWorkerOnAMachineWithoutGpusSaysSo) {
  TempDir dir;
  CommandResult r = RunSweep({"worker", "--gpus", "all", "--scheduler", "127.0.0.1:1"}, dir,
                             {"PATH=/nonexistent"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("no NVIDIA GPU found"));
  EXPECT_THAT(r.err, HasSubstr("--cpus N"));
}

}  // namespace
}  // namespace sweep::testing
