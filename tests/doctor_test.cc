// `sweep doctor` and `sweep-train doctor`, the real binaries: on this machine
// (no GPU) they say so plainly and time the CPU; the fake NVML
// (tests/fake_nvml.cc) listing a GPU while sweep-train's LibTorch has no CUDA
// is the silent-CPU trap and fails loudly; an unreachable scheduler and a
// missing --trainer fail; a real scheduler passes.
#include <sys/stat.h>

#include <filesystem>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/cluster.h"
#include "tests/fake_nvml.h"
#include "tests/testing.h"

namespace sweep::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

std::string TrainBin() {
  return Env("SWEEP_TRAIN_BIN", SWEEP_TRAIN_BIN_DEFAULT);
}

// The environment of a node without the NVIDIA driver: no NVML to load. (A
// machine with a real one skips the tests that need this.)
std::string NoNvml() { return "LD_LIBRARY_PATH=/nonexistent"; }

// Runs `sweep-train ARGS` and returns its stdout.
CommandResult RunTrain(const std::vector<std::string>& args,
                       const TempDir& dir) {
  SpawnOptions o;
  o.argv = {TrainBin()};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.stdout_path = dir / "train.out";
  o.stderr_path = dir / "train.err";
  std::filesystem::remove(o.stdout_path);
  std::filesystem::remove(o.stderr_path);
  CommandResult r;
  auto child = ChildProcess::Spawn(o);
  if (!child.ok()) {
    ADD_FAILURE() << child.status();
    return r;
  }
  std::optional<ExitStatus> st = child->Wait(absl::Seconds(60));
  if (!st) st = child->Stop(absl::Seconds(1));
  r.exit_code = st->signal ? 128 + st->signal : st->exit_code;
  r.out = ReadFile(o.stdout_path);
  r.err = ReadFile(o.stderr_path);
  return r;
}

// Whether sweep-train can use a CUDA device here (then the no-GPU
// expectations do not hold).
bool TrainerHasCuda(const TempDir& dir) {
  return RunTrain({"--version"}, dir).out.find("CUDA device usable: yes") !=
         std::string::npos;
}

class DoctorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (TrainerHasCuda(dir_)) {
      GTEST_SKIP() << "sweep-train can use CUDA on this machine; these tests "
                      "check the behaviour without a usable GPU";
    }
  }
  TempDir dir_;
};

TEST_F(DoctorTest, TrainerDoctorWithoutGpuSaysSoAndTimesTheCpu) {
  CommandResult r = RunTrain({"doctor", "--cpu-size=256"}, dir_);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("no CUDA device: measuring the CPU only"));
  EXPECT_THAT(r.out, HasSubstr("CUDA: not usable: "));
  EXPECT_THAT(r.out, HasSubstr("matmul 256x256 fp32: "));
  EXPECT_THAT(r.out, HasSubstr("GFLOP/s"));

  CommandResult j = RunTrain({"doctor", "--json", "--cpu-size=256"}, dir_);
  ASSERT_EQ(j.exit_code, 0) << j.err;
  Json report = Json::parse(j.out);
  EXPECT_EQ(report["cuda_available"], false);
  EXPECT_FALSE(report["cuda_unavailable_because"].get<std::string>().empty());
  EXPECT_EQ(report["device_count"], 0);
  EXPECT_TRUE(report["gpu"].is_null());
  EXPECT_EQ(report["cpu"]["matmul"]["size"], 256);
  EXPECT_GT(report["cpu"]["matmul"]["gflops"].get<double>(), 0);
  EXPECT_GT(report["cpu"]["scalar_multiply_us"].get<double>(), 0);
  EXPECT_EQ(report["ok"], true);
  EXPECT_TRUE(report["problems"].empty());

  CommandResult bad = RunTrain({"doctor", "--cpu-size=huge"}, dir_);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--cpu-size"));
}

TEST_F(DoctorTest, SweepDoctorWithoutGpuFindsTheTrainerAndRelaysCpuFigures) {
  if (RealNvmlPresent()) GTEST_SKIP() << "this machine has an NVIDIA driver";
  // No --trainer: found next to the sweep binary's build tree.
  CommandResult r = RunSweep({"doctor", "--work-dir", dir_ / "runs"}, dir_,
                             {NoNvml(), "SWEEP_SCHEDULER="});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(
      r.out,
      HasSubstr("GPUs: none: no NVIDIA GPU found: NVML could not be loaded "
                "(cannot load libnvidia-ml.so.1: "));
  EXPECT_THAT(r.out, HasSubstr("Use --cpus N on a machine without GPUs"));
  EXPECT_THAT(
      r.out, HasSubstr("sweep-train: " +
                       std::filesystem::weakly_canonical(TrainBin()).string()));
  EXPECT_THAT(r.out, HasSubstr("| no CUDA device: measuring the CPU only"));
  EXPECT_THAT(r.out, HasSubstr("| CPU, "));
  EXPECT_THAT(r.out, HasSubstr("matmul 1024x1024 fp32: "));
  EXPECT_THAT(r.out, HasSubstr("GFLOP/s"));
  EXPECT_THAT(r.out, HasSubstr("Work directory "));
  EXPECT_THAT(r.out, HasSubstr("Scheduler: not checked"));
  EXPECT_THAT(r.out, HasSubstr("doctor: every check passed"));
  EXPECT_THAT(r.out, Not(HasSubstr("PROBLEM")));
}

TEST_F(DoctorTest, GpuListedButLibTorchWithoutCudaFailsAndNamesTheTrap) {
  FakeNvml nvml(dir_ / "nvml.json");
  nvml.Write({{"gpus",
               {{{"uuid", "GPU-1234"},
                 {"name", "NVIDIA H200"},
                 {"memory_mib", 143771}}}}});
  std::vector<std::string> env = nvml.Env();
  env.push_back("SWEEP_SCHEDULER=");
  CommandResult r = RunSweep(
      {"doctor", "--trainer", TrainBin(), "--work-dir", dir_.path().string()},
      dir_, env);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out,
              HasSubstr("GPUs: 1 listed by NVML (" + FakeNvmlLibrary() + ")"));
  EXPECT_THAT(r.out, HasSubstr("0  NVIDIA H200  GPU-1234  143771 MiB"));
  EXPECT_THAT(r.out, HasSubstr("PROBLEM: NVML lists 1 GPU(s) but "
                               "sweep-train's LibTorch cannot use CUDA"));
  EXPECT_THAT(r.out, HasSubstr("SILENT-CPU TRAP"));
  EXPECT_THAT(r.out, HasSubstr("doctor: 1 problem(s)"));
}

TEST_F(DoctorTest, UnreachableSchedulerAndMissingTrainerFail) {
  // Port 1: nothing listens there (binding it needs root).
  CommandResult r = RunSweep(
      {"doctor", "--scheduler", "127.0.0.1:1", "--trainer",
       dir_ / "no-such-sweep-train", "--work-dir", dir_.path().string()},
      dir_, {NoNvml()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("Scheduler 127.0.0.1:1: not reachable"));
  EXPECT_THAT(r.out, HasSubstr("cannot reach the scheduler at 127.0.0.1:1"));
  EXPECT_THAT(r.out,
              HasSubstr("PROBLEM: --trainer " + dir_ / "no-such-sweep-train" +
                        ": not an executable file"));
  EXPECT_THAT(r.out, HasSubstr("doctor: 2 problem(s)"));
}

TEST_F(DoctorTest, ReachableSchedulerFromTheEnvironmentPasses) {
  if (RealNvmlPresent()) GTEST_SKIP() << "this machine has an NVIDIA driver";
  Cluster cluster;
  cluster.StartScheduler();
  CommandResult r = RunSweep(
      {"doctor", "--trainer", TrainBin(), "--work-dir", dir_.path().string()},
      dir_, {NoNvml(), "SWEEP_SCHEDULER=" + cluster.address()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("Scheduler " + cluster.address() +
                               ": reachable, 0 sweep(s), 0 worker(s)"));
}

}  // namespace
}  // namespace sweep::testing
