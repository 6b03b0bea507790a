// The worker daemon as users run it: GPU slots found through NVML (the fake
// libnvidia-ml.so.1 of tests/fake_nvml.cc here), one process per GPU or MIG device
// under --gpus, bad GPU selections, a lost GPU, and draining on SIGTERM.
#include <signal.h>
#include <sys/stat.h>

#include <functional>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster.h"
#include "tests/fake_nvml.h"

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

// A fake NVML that reports two GPUs; returns the environment that loads it.
std::vector<std::string> TwoFakeGpus(const Cluster& c) {
  FakeNvml nvml(c.dir() / "nvml.json");
  nlohmann::json config = FakeCards(2, 81559);
  config["gpus"][0]["uuid"] = "GPU-11111111";
  config["gpus"][1]["uuid"] = "GPU-22222222";
  nvml.Write(config);
  return nvml.Env();
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
  size_t w = c.StartWorkerWith({"--gpus", "all"}, TwoFakeGpus(c));
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

TEST(WorkerTest, GpuWorkerOnAMachineWithoutGpusSaysWhyNvmlCouldNotBeLoaded) {
  if (RealNvmlPresent()) GTEST_SKIP() << "this machine has an NVIDIA driver";
  TempDir dir;
  CommandResult r = RunSweep({"worker", "--gpus", "all", "--scheduler", "127.0.0.1:1"}, dir,
                             {"LD_LIBRARY_PATH=/nonexistent"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("no NVIDIA GPU found: NVML could not be loaded (cannot load "
                               "libnvidia-ml.so.1: libnvidia-ml.so.1: cannot open shared "
                               "object file"));
  EXPECT_THAT(r.err, HasSubstr("--cpus N"));
}

TEST(WorkerTest, BadGpuSelectionsExitTwoNamingWhatWasAskedAndWhatTheNodeHas) {
  TempDir dir;
  FakeNvml nvml(dir / "nvml.json");
  nlohmann::json config = FakeCards(4);
  config["gpus"][3]["mig"] = {
      {{"uuid", "MIG-aaaa"}, {"name", "Fake MIG 1g.5gb"}, {"memory_mib", 4864}},
      {{"uuid", "MIG-bbbb"}, {"name", "Fake MIG 1g.5gb"}, {"memory_mib", 4864}}};
  nvml.Write(config);
  auto run = [&](const std::string& gpus, std::vector<std::string> env) {
    return RunSweep({"worker", "--gpus", gpus, "--scheduler", "127.0.0.1:1"}, dir, env);
  };
  CommandResult r = run("5", nvml.Env());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--gpus: this node has no GPU 5 (it has 4: 0, 1, 2, 3)"));
  r = run("0,MIG-nope", nvml.Env());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--gpus: this node has no MIG device MIG-nope (it has "
                               "MIG-aaaa (Fake MIG 1g.5gb), MIG-bbbb (Fake MIG 1g.5gb))"));
  std::vector<std::string> old = nvml.Env();
  old[0] = "LD_LIBRARY_PATH=" + OldFakeNvmlDir();
  r = run("all", old);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("is too old for sweep: it has no "
                               "nvmlDeviceGetComputeRunningProcesses_v3"));
  r = RunSweep({"worker", "--gpu", "3", "--scheduler", "127.0.0.1:1"}, dir, nvml.Env());
  EXPECT_EQ(r.exit_code, 2) << "GPU 3 is in MIG mode: one of its MIG devices, not it";
  EXPECT_THAT(r.err, HasSubstr("--gpu 3 names 2 devices (MIG-aaaa, MIG-bbbb): give one of "
                               "them, or --gpus 3 for one worker process each"));
}

TEST(WorkerTest, EachMigDeviceIsASlotOfItsOwnAndTrialsSeeItsUuid) {
  Cluster c;
  c.StartScheduler();
  FakeNvml nvml(c.dir() / "nvml.json");
  nlohmann::json config = FakeCards(2, 40960);
  config["gpus"][1]["mig"] = {
      {{"uuid", "MIG-aaaa"}, {"name", "Fake MIG 3g.20gb"}, {"memory_mib", 19968}},
      {{"uuid", "MIG-bbbb"}, {"name", "Fake MIG 1g.5gb"}, {"memory_mib", 4864}}};
  nvml.Write(config);
  c.StartWorkerWith({"--gpus", "all", "--slots-per-gpu", "1"}, nvml.Env());
  Db db(c.db());
  ASSERT_TRUE(WaitFor([&] { return db.Value("SELECT COUNT(*) FROM workers") == "3"; },
                      absl::Seconds(20)))
      << c.Logs();
  auto workers = db.Query(
      "SELECT gpu_uuid, gpu_name, gpu_memory_mib, gpu_index FROM workers ORDER BY gpu_uuid");
  ASSERT_EQ(workers.size(), 3u);
  EXPECT_EQ(workers[0], (std::vector<std::string>{"GPU-fake-0", "Fake GPU", "40960", "0"}));
  EXPECT_EQ(workers[1], (std::vector<std::string>{"MIG-aaaa", "Fake MIG 3g.20gb", "19968", "1"}));
  EXPECT_EQ(workers[2], (std::vector<std::string>{"MIG-bbbb", "Fake MIG 1g.5gb", "4864", "1"}));

  std::string sweep = c.Submit(
      Spec("resources: {gpus_per_trial: 1}\n", 0.5, "[1, 2, 3, 4, 5, 6]"));
  ASSERT_TRUE(c.WaitEnded(sweep, absl::Seconds(60))) << c.Logs();
  std::set<std::string> seen;
  for (const auto& t : db.Query("SELECT state, trial_dir FROM trials")) {
    EXPECT_EQ(t[0], "completed");
    seen.insert(ReadSeen(t[1] + "/seen.txt")["CUDA_VISIBLE_DEVICES"]);
  }
  for (const std::string& v : seen) {
    EXPECT_TRUE(v == "0" || v == "MIG-aaaa" || v == "MIG-bbbb") << v;
  }
  CommandResult status = c.Sweep({"status"});
  EXPECT_THAT(status.out, HasSubstr("Fake MIG 1g.5gb"));
}

// Starts `sweep worker --gpus all` on two fake GPUs (one slot each, a sample every
// 0.1 s) with `nvml`, whose config a test may change to lose a GPU.
void StartOnTwoFakeGpus(Cluster& c, FakeNvml& nvml) {
  nvml.Write(FakeCards(2));
  c.StartWorkerWith({"--gpus", "all", "--slots-per-gpu", "1", "--gpu-sample-interval", "0.1"},
                    nvml.Env());
}

TEST(WorkerTest, SlotsOfALostGpuTakeNoMoreTrialsAndSaySo) {
  Cluster c;
  c.StartScheduler();
  FakeNvml nvml(c.dir() / "nvml.json");
  StartOnTwoFakeGpus(c, nvml);
  Db db(c.db());
  ASSERT_TRUE(WaitFor([&] { return db.Value("SELECT COUNT(*) FROM workers") == "2"; },
                      absl::Seconds(20)))
      << c.Logs();
  nvml.config()["gpus"][1]["lost"] = true;
  nvml.Write();
  std::string message;
  ASSERT_TRUE(WaitFor(
      [&] {
        message = db.Value("SELECT message FROM workers WHERE gpu_uuid = 'GPU-fake-1'");
        return !message.empty();
      },
      absl::Seconds(20)))
      << c.Logs();
  EXPECT_THAT(message, HasSubstr("GPU 1 (GPU-fake-1) is lost: GPU is lost (NVML error 15); "
                                 "this slot takes no more trials"));
  EXPECT_THAT(c.Logs(), HasSubstr("is lost"));
  std::string sweep = c.Submit(Spec("resources: {gpus_per_trial: 1}\n", 0.2, "[1, 2, 3]"));
  ASSERT_TRUE(c.WaitEnded(sweep, absl::Seconds(60))) << c.Logs();
  for (const auto& t : db.Query("SELECT state, gpu FROM trials")) {
    EXPECT_EQ(t[0], "completed");
    EXPECT_EQ(t[1], "0") << "none on the lost GPU";
  }
}

// Two trials hold at a gate, one on each of two fake GPUs; `fail` breaks GPU 1
// under its trial. That trial must go back to the queue with a message containing
// `why`, without using a retry (max_retries 0), and run again on GPU 0, while GPU
// 1's slot says `why` too.
void ExpectTrialOfABrokenGpuRequeued(const std::function<void(FakeNvml&)>& fail,
                                     const std::string& why) {
  Cluster c;
  c.StartScheduler();
  FakeNvml nvml(c.dir() / "nvml.json");
  StartOnTwoFakeGpus(c, nvml);
  const std::string gate = c.dir() / "go";
  std::string sweep = c.Submit(
      Spec("resources: {gpus_per_trial: 1}\nmax_retries: 0\n", 0, "[1, 2]", gate));
  Db db(c.db());
  ASSERT_TRUE(WaitFor([&] { return CountTrials(db, sweep, "running") == 2; },
                      absl::Seconds(60)))
      << c.Logs();
  std::string doomed = db.Value("SELECT id FROM trials WHERE gpu = 1");
  fail(nvml);
  ASSERT_TRUE(WaitFor(
      [&] {
        return db.Value("SELECT COUNT(*) FROM events WHERE kind = 'trial_requeued' AND "
                        "trial_id = '" + doomed + "' AND message LIKE '%" + why + "%'") == "1";
      },
      absl::Seconds(60)))
      << c.Logs();
  WriteFile(gate, "");
  ASSERT_TRUE(c.WaitEnded(sweep, absl::Seconds(120))) << c.Logs();
  // With max_retries 0 a counted attempt would have failed it: it ran again on GPU 0.
  auto t = db.Query("SELECT state, attempt, gpu FROM trials WHERE id = '" + doomed + "'");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0], (std::vector<std::string>{"completed", "1", "0"}));
  EXPECT_EQ(CountTrials(db, sweep, "completed"), 2);
  EXPECT_THAT(db.Value("SELECT message FROM workers WHERE gpu_uuid = 'GPU-fake-1'"),
              HasSubstr(why));
}

TEST(WorkerTest, ATrialWhoseGpuIsLostGoesBackToTheQueueWithoutUsingARetry) {
  ExpectTrialOfABrokenGpuRequeued(
      [](FakeNvml& nvml) {
        nvml.config()["gpus"][1]["lost"] = true;
        nvml.Write();
      },
      "GPU 1 (GPU-fake-1) is lost");
}

TEST(WorkerTest, ATrialOnAGpuThatFellOffTheBusByXidGoesBackAndTheSlotStops) {
  // Xid 79 while the card still answers every query: only the event says it.
  ExpectTrialOfABrokenGpuRequeued(
      [](FakeNvml& nvml) {
        nvml.config()["gpus"][1]["xids"] = nlohmann::json::array({79});
        nvml.Write();
      },
      "GPU 1 (GPU-fake-1) reported Xid 79 (GPU has fallen off the bus)");
}

}  // namespace
}  // namespace sweep::testing
