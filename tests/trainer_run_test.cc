// sweep-train as a trial process: the real binary on small generated datasets.
// Training lowers the loss, every epoch reports the contract's metrics, a run
// stopped by SIGTERM resumes to exactly the uninterrupted run's metrics, CUDA
// is refused rather than replaced by the CPU, and bad parameters or data fail
// before training.
#include <signal.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing.h"
#include "tests/trainer_testdata.h"

namespace sweep::testing {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

std::string TrainBin() {
  return Env("SWEEP_TRAIN_BIN", SWEEP_TRAIN_BIN_DEFAULT);
}

struct TrainResult {
  int exit_code = -1;
  std::string out, err;
  std::vector<Json> lines;  // the metrics file
  double seconds = 0;
};

std::vector<Json> ReadMetrics(const std::string& path) {
  std::vector<Json> out;
  for (absl::string_view line :
       absl::StrSplit(ReadFile(path), '\n', absl::SkipEmpty())) {
    out.push_back(Json::parse(line));
  }
  return out;
}

class TrainerRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_ / "data";
    std::filesystem::create_directories(data_);
    WriteIdxDataset(data_, 400, 100, 4);
  }

  // The environment a worker gives a trial (ours, less SWEEP_* and CUDA_*),
  // plus `extra`.
  std::vector<std::string> TrialEnv(const std::vector<std::string>& extra) {
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
      std::string kv = *e;
      if (kv.rfind("SWEEP_", 0) == 0 ||
          kv.rfind("CUDA_VISIBLE_DEVICES=", 0) == 0)
        continue;
      env.push_back(kv);
    }
    env.insert(env.end(), extra.begin(), extra.end());
    return env;
  }

  SpawnOptions Options(const std::string& name,
                       const std::vector<std::string>& args,
                       const std::vector<std::string>& env) {
    SpawnOptions o;
    o.argv = {TrainBin()};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.env = TrialEnv(env);
    o.stdout_path = dir_ / (name + ".out");
    o.stderr_path = dir_ / (name + ".err");
    std::filesystem::remove(o.stdout_path);
    std::filesystem::remove(o.stderr_path);
    return o;
  }

  // Runs sweep-train as trial `name` (metrics in <name>.jsonl, checkpoints in
  // ckpt-<name> unless `checkpoint_dir` is given) with `args` and extra `env`.
  TrainResult Train(const std::string& name,
                    const std::vector<std::string>& args,
                    std::vector<std::string> env = {},
                    std::string checkpoint_dir = "") {
    if (checkpoint_dir.empty()) checkpoint_dir = dir_ / ("ckpt-" + name);
    env.push_back("SWEEP_METRICS_FILE=" + dir_ / (name + ".jsonl"));
    env.push_back("SWEEP_CHECKPOINT_DIR=" + checkpoint_dir);
    env.push_back("CUDA_VISIBLE_DEVICES=");
    SpawnOptions o = Options(name, args, env);
    absl::Time start = absl::Now();
    auto child = ChildProcess::Spawn(o);
    TrainResult r;
    if (!child.ok()) {
      ADD_FAILURE() << child.status();
      return r;
    }
    std::optional<ExitStatus> st = child->Wait(absl::Seconds(120));
    if (!st) st = child->Stop(absl::Seconds(1));
    r.seconds = absl::ToDoubleSeconds(absl::Now() - start);
    r.exit_code = st->signal ? 128 + st->signal : st->exit_code;
    r.out = ReadFile(o.stdout_path);
    r.err = ReadFile(o.stderr_path);
    r.lines = ReadMetrics(dir_ / (name + ".jsonl"));
    return r;
  }

  std::vector<std::string> Small(std::vector<std::string> more = {}) {
    std::vector<std::string> args = {"--dataset=idx", "--data_dir=" + data_,
                                     "--hidden=[32]", "--batch_size=32",
                                     "--lr=0.05",     "--momentum=0.9"};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }

  TempDir dir_;
  std::string data_;
};

TEST_F(TrainerRunTest, TrainingLowersTheLossAndReportsEveryContractMetric) {
  TrainResult r =
      Train("a", Small({"--epochs=3", "--dropout=0.1", "--augment=crop"}));
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  ASSERT_EQ(r.lines.size(), 5u) << r.out;  // start, 3 epochs, test
  const Json& start = r.lines[0];
  EXPECT_EQ(start["step"], 0);
  EXPECT_EQ(start["parameters"], 784 * 32 + 32 + 32 * 4 + 4);
  EXPECT_GT(start["memory_estimate_bytes"].get<double>(), 4 * 2 * 25252.0);
  for (int e = 1; e <= 3; ++e) {
    const Json& line = r.lines[e];
    EXPECT_EQ(line["step"], e);
    for (const char* key : {"train_loss", "val_loss", "val_acc", "lr",
                            "epoch_seconds", "samples_per_second"}) {
      EXPECT_TRUE(line[key].is_number()) << key << " in " << line;
    }
    EXPECT_EQ(line["lr"], 0.05);
  }
  EXPECT_LT(r.lines[3]["train_loss"].get<double>(),
            r.lines[1]["train_loss"].get<double>());
  EXPECT_LT(r.lines[3]["val_loss"].get<double>(), 0.5);
  EXPECT_GT(r.lines[3]["val_acc"].get<double>(), 0.9);
  EXPECT_EQ(r.lines[4]["step"], 3);
  EXPECT_GT(r.lines[4]["test_acc"].get<double>(), 0.9);
  EXPECT_TRUE(std::filesystem::exists(dir_ / "ckpt-a/last.pt"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "ckpt-a/last.pt.tmp"));
}

TEST_F(TrainerRunTest, CsvDataFromSweepParamsTrains) {
  WriteCsvDataset(dir_ / "data", 600, 100);
  TrainResult r =
      Train("csv", {},
            {R"(SWEEP_PARAMS={"dataset": "csv", "data_dir": ")" + data_ +
             R"(", "hidden": [8], "optimizer": "adam", "lr": 0.03,
                                    "epochs": 2, "batch_size": 16, "schedule": "cosine",
                                    "label_smoothing": 0.05})"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.lines.size(), 4u);
  EXPECT_EQ(r.lines[0]["parameters"], 2 * 8 + 8 + 8 * 2 + 2);
  EXPECT_GT(r.lines[2]["val_acc"].get<double>(), 0.85);
  EXPECT_LT(r.lines[2]["lr"].get<double>(), 0.001) << "cosine ends near zero";
}

TEST_F(TrainerRunTest,
       ResumeAfterSigtermReproducesTheUninterruptedRunsMetrics) {
  // Epochs long enough (a few hundred ms) to stop one in the middle.
  WriteIdxDataset(data_, 2000, 100, 4);
  std::vector<std::string> args = {
      "--dataset=idx",     "--data_dir=" + data_, "--hidden=[256,256]",
      "--batch_size=16",   "--lr=0.02",           "--momentum=0.9",
      "--dropout=0.2",     "--augment=crop",      "--schedule=cosine",
      "--warmup_epochs=1", "--epochs=4",          "--seed=5"};
  TrainResult full = Train("full", args);
  ASSERT_EQ(full.exit_code, 0) << full.err;
  ASSERT_EQ(full.lines.size(), 6u);

  // The same trial, stopped by SIGTERM once its first epoch is reported.
  std::vector<std::string> env = {
      "SWEEP_METRICS_FILE=" + dir_ / "part1.jsonl",
      "SWEEP_CHECKPOINT_DIR=" + dir_ / "ckpt-resumed", "CUDA_VISIBLE_DEVICES="};
  auto child = ChildProcess::Spawn(Options("part1", args, env));
  ASSERT_TRUE(child.ok()) << child.status();
  bool reported = false;
  for (int i = 0; i < 24000 && !reported; ++i) {
    reported = ReadMetrics(dir_ / "part1.jsonl").size() >= 2;
    if (!reported) usleep(5000);
  }
  ASSERT_TRUE(reported) << ReadFile(dir_ / "part1.err");
  child->Signal(SIGTERM);
  std::optional<ExitStatus> st = child->Wait(absl::Seconds(30));
  ASSERT_TRUE(st.has_value());
  ASSERT_EQ(st->exit_code, 143)
      << "stopped mid-run; " << ReadFile(dir_ / "part1.err");
  EXPECT_THAT(ReadFile(dir_ / "part1.err"),
              HasSubstr("stopped by SIGTERM during epoch"));
  std::vector<Json> part1 = ReadMetrics(dir_ / "part1.jsonl");

  // The retry, as the worker starts it: same checkpoint directory, a new
  // metrics file.
  TrainResult part2 = Train("part2", args, {}, dir_ / "ckpt-resumed");
  ASSERT_EQ(part2.exit_code, 0) << part2.err;
  EXPECT_THAT(part2.out, HasSubstr("resumed from"));
  ASSERT_GE(part2.lines.size(), 2u);
  int64_t first = part2.lines[0]["step"];
  EXPECT_GE(first, 2) << "resumed after the reported epoch, not from scratch";
  EXPECT_EQ(static_cast<int64_t>(part1.size()) - 1 +
                static_cast<int64_t>(part2.lines.size()) - 1,
            4)
      << "every epoch reported exactly once across the two attempts";

  std::vector<Json> combined(part1.begin(), part1.end());
  combined.insert(combined.end(), part2.lines.begin(), part2.lines.end());
  ASSERT_EQ(combined.size(), full.lines.size());
  for (size_t i = 1; i < combined.size(); ++i) {
    SCOPED_TRACE(combined[i].dump());
    EXPECT_EQ(combined[i]["step"], full.lines[i]["step"]);
    for (const char* key :
         {"train_loss", "val_loss", "val_acc", "lr", "test_acc", "test_loss"}) {
      if (!full.lines[i].contains(key)) continue;
      EXPECT_EQ(combined[i][key].get<double>(),
                full.lines[i][key].get<double>())
          << key;
    }
  }
}

TEST_F(TrainerRunTest,
       CudaOnAMachineWithoutItExitsThreeAtOnceAndNeverFallsBack) {
  if (std::filesystem::exists("/dev/nvidia0"))
    GTEST_SKIP() << "this machine has a GPU";
  // A GPU slot's default: CUDA_VISIBLE_DEVICES names a GPU, no device
  // parameter.
  SpawnOptions o = Options(
      "gpu-slot", Small({"--epochs=1"}),
      {"CUDA_VISIBLE_DEVICES=0", "SWEEP_METRICS_FILE=" + dir_ / "gpu.jsonl"});
  auto child = ChildProcess::Spawn(o);
  ASSERT_TRUE(child.ok());
  std::optional<ExitStatus> st = child->Wait(absl::Seconds(60));
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 3);
  std::string err = ReadFile(o.stderr_path);
  EXPECT_THAT(err,
              HasSubstr("device cuda was asked for but CUDA is not available"));
  EXPECT_THAT(err, HasSubstr("CUDA_VISIBLE_DEVICES=\"0\""));
  EXPECT_THAT(err, HasSubstr("Not falling back to the CPU"));
  EXPECT_TRUE(ReadMetrics(dir_ / "gpu.jsonl").empty()) << "nothing trained";

  // Explicit device=cuda on a CPU slot: the same refusal.
  TrainResult r = Train("explicit", Small({"--device=cuda:0"}));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, HasSubstr("device cuda:0 was asked for"));
  EXPECT_TRUE(r.lines.empty());
  EXPECT_LT(r.seconds, 10);
}

TEST_F(TrainerRunTest, BadParametersExitTwoBeforeTraining) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  // One of each kind; trainer_params_test has every message.
  for (const Case& c : std::vector<Case>{
           {{"--learning_rate=0.1"}, "unknown parameter learning_rate"},
           {{"--lr=-1"}, "parameter lr: must be in (0, 100]"},
           {{"--momentum=0", "--nesterov=True"},
            "parameter nesterov: needs momentum > 0"},
       }) {
    TrainResult r = Train("bad", Small(c.args));
    EXPECT_EQ(r.exit_code, 2) << c.message << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.message));
    EXPECT_TRUE(r.lines.empty()) << c.message;
  }
  TrainResult json = Train("badjson", {}, {"SWEEP_PARAMS={\"lr\": "});
  EXPECT_EQ(json.exit_code, 2);
  EXPECT_THAT(json.err, HasSubstr("SWEEP_PARAMS is not a JSON object"));
}

TEST_F(TrainerRunTest, MissingOrCorruptDataExitsTwoBeforeTraining) {
  TrainResult missing =
      Train("missing", Small({"--data_dir=" + dir_ / "nowhere"}));
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("train-images-idx3-ubyte[.gz] not found"));
  EXPECT_TRUE(missing.lines.empty());

  std::string images = data_ + "/t10k-images-idx3-ubyte.gz";
  std::string bytes = ReadFile(images);
  WriteFile(images, bytes.substr(0, bytes.size() - 100));
  TrainResult truncated = Train("truncated", Small());
  EXPECT_EQ(truncated.exit_code, 2);
  EXPECT_THAT(truncated.err,
              HasSubstr("t10k-images-idx3-ubyte.gz: truncated gzip data"));
  EXPECT_TRUE(truncated.lines.empty());

  WriteFile(data_ + "/train.csv", "0,1,2\n1,3,x\n");
  WriteFile(data_ + "/test.csv", "0,1,2\n");
  TrainResult csv = Train("csv", {"--dataset=csv", "--data_dir=" + data_});
  EXPECT_EQ(csv.exit_code, 2);
  EXPECT_THAT(csv.err, HasSubstr("train.csv:2: column 3: not a number: 'x'"));
}

TEST_F(TrainerRunTest,
       InitFromFineTunesWithAFrozenBackboneAndRejectsOtherShapes) {
  TrainResult base = Train("base", Small({"--epochs=1"}));
  ASSERT_EQ(base.exit_code, 0) << base.err;
  std::string ckpt = dir_ / "ckpt-base";

  TrainResult tuned =
      Train("tuned",
            Small({"--epochs=1", "--init_from=" + ckpt, "--freeze=backbone"}));
  ASSERT_EQ(tuned.exit_code, 0) << tuned.err;
  EXPECT_THAT(tuned.out, HasSubstr("init_from: weights from " + ckpt));
  ASSERT_EQ(tuned.lines.size(), 3u);
  EXPECT_GT(tuned.lines[1]["val_acc"].get<double>(), 0.9);

  TrainResult other = Train(
      "other", Small({"--hidden=[64]", "--init_from=" + ckpt + "/last.pt"}));
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_THAT(
      other.err,
      HasSubstr("fc1.weight has shape [32, 784] there but [64, 784] here"));
  EXPECT_TRUE(other.lines.empty());
}

TEST_F(TrainerRunTest, DivergedTrainingExitsFourAfterReportingTheEpoch) {
  TrainResult r =
      Train("diverge", Small({"--lr=100", "--momentum=0.99", "--epochs=3"}));
  EXPECT_EQ(r.exit_code, 4) << r.err << r.out;
  EXPECT_THAT(r.err, HasSubstr("training diverged in epoch 1"));
  ASSERT_EQ(r.lines.size(),
            2u);  // start, epoch 1 (with its non-finite loss as null)
  EXPECT_TRUE(r.lines[1]["train_loss"].is_null());
}

TEST_F(TrainerRunTest, HelpListsTheParameters) {
  TrainResult r = Train("help", {"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("--conv_channels"));
  EXPECT_THAT(r.out, HasSubstr("--init_from"));
}

}  // namespace
}  // namespace sweep::testing
