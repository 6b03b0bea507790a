// sweep-train through the real scheduler and workers on loopback: a grid of
// trainer trials lands val_acc for every trial in SQLite, and a trial that asks
// for CUDA on a CPU slot is recorded as failed with the trainer's exit code and
// message.
#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/cluster.h"
#include "tests/trainer_testdata.h"

namespace sweep::testing {
namespace {

using ::testing::HasSubstr;

std::string TrainBin() {
  return Env("SWEEP_TRAIN_BIN", SWEEP_TRAIN_BIN_DEFAULT);
}

std::string Spec(const std::string& data_dir, const std::string& lrs,
                 const std::string& extra = "") {
  return absl::StrCat(R"(
name: trainer-grid
program: )",
                      TrainBin(), R"(
command: ["${program}", "${args}"]
method: grid
metric: {name: val_acc, goal: maximize}
parameters:
  dataset: {value: idx}
  data_dir: {value: )",
                      data_dir, R"(}
  lr:
    values: )",
                      lrs, R"(
  hidden: {value: [16]}
  batch_size: {value: 32}
  epochs: {value: 2}
)",
                      extra);
}

TEST(TrainerSweepTest, GridOfTrainerTrialsLandsValAccForEveryTrialInSqlite) {
  Cluster c;
  std::string data = c.dir() / "data";
  std::filesystem::create_directories(data);
  WriteIdxDataset(data, 300, 60, 4);
  c.StartScheduler();
  c.StartWorker(2);
  std::string sweep = c.Submit(Spec(data, "[0.005, 0.02, 0.05, 0.1]"));
  ASSERT_TRUE(c.WaitEnded(sweep, absl::Seconds(120))) << c.Logs();

  Db db(c.db());
  EXPECT_EQ(db.Value("SELECT state FROM sweeps WHERE id='" + sweep + "'"),
            "finished");
  auto trials = db.Query(
      "SELECT id, state, exit_code, params, final_metric, stderr_tail "
      "FROM trials WHERE sweep_id='" +
      sweep + "' ORDER BY idx");
  ASSERT_EQ(trials.size(), 4u);
  for (const auto& t : trials) {
    SCOPED_TRACE(t[0] + " " + t[3] + " " + t[5]);
    EXPECT_EQ(t[1], "completed");
    EXPECT_EQ(t[2], "0");
    EXPECT_GT(std::stod(t[4]), 0.5) << "final val_acc";
    // Both epochs' val_acc, and the run's other metrics, as points.
    EXPECT_EQ(db.Value("SELECT COUNT(*) FROM metrics WHERE trial_id='" + t[0] +
                       "' AND name='val_acc'"),
              "2");
    for (const char* name :
         {"train_loss", "val_loss", "lr", "samples_per_second", "test_acc",
          "parameters", "memory_estimate_bytes"}) {
      EXPECT_EQ(db.Value("SELECT COUNT(*) > 0 FROM metrics WHERE trial_id='" +
                         t[0] + "' AND name='" + name + "'"),
                "1")
          << name;
    }
  }
  CommandResult best = c.Sweep({"best", sweep, "--json"});
  ASSERT_EQ(best.exit_code, 0) << best.err;
  EXPECT_GT(nlohmann::json::parse(best.out)["final"].get<double>(), 0.9);
}

TEST(TrainerSweepTest,
     CudaTrialOnACpuSlotFailsWithTheTrainersExitCodeAndMessage) {
  if (std::filesystem::exists("/dev/nvidia0"))
    GTEST_SKIP() << "this machine has a GPU";
  Cluster c;
  std::string data = c.dir() / "data";
  std::filesystem::create_directories(data);
  WriteIdxDataset(data, 100, 20, 4);
  c.StartScheduler();
  c.StartWorker(1);
  std::string sweep =
      c.Submit(Spec(data, "[0.01]", "  device: {value: cuda}\n"));
  ASSERT_TRUE(c.WaitEnded(sweep, absl::Seconds(60))) << c.Logs();
  Db db(c.db());
  auto t = db.Query(
      "SELECT state, exit_code, stderr_tail FROM trials WHERE sweep_id='" +
      sweep + "'");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0][0], "failed");
  EXPECT_EQ(t[0][1], "3");
  EXPECT_THAT(t[0][2], HasSubstr("CUDA is not available"));
  EXPECT_EQ(db.Value("SELECT COUNT(*) FROM metrics"), "0");
}

}  // namespace
}  // namespace sweep::testing
