#include "worker/gpu.h"

#include <unistd.h>

#include <stdlib.h>
#include <sys/stat.h>

#include "gtest/gtest.h"
#include "tests/testing.h"
#include "worker/gpu_monitor.h"

namespace sweep {
namespace {

using ::sweep::testing::TempDir;
using ::sweep::testing::WriteFile;

constexpr char kFourGpus[] =
    "0, GPU-aaaa, NVIDIA H200, 143771\n"
    "1, GPU-bbbb, NVIDIA H200, 143771\n"
    "2, GPU-cccc, NVIDIA H200, 143771\n"
    "3, GPU-dddd, NVIDIA H200, 143771\n";

TEST(GpuTest, ParsesNvidiaSmiCsv) {
  auto gpus = ParseNvidiaSmiCsv(kFourGpus);
  ASSERT_TRUE(gpus.ok());
  ASSERT_EQ(gpus->size(), 4u);
  EXPECT_EQ((*gpus)[2].index, 2);
  EXPECT_EQ((*gpus)[2].uuid, "GPU-cccc");
  EXPECT_EQ((*gpus)[2].name, "NVIDIA H200");
  EXPECT_EQ((*gpus)[2].memory_mib, 143771);
}

TEST(GpuTest, UnreadableLineIsInvalidArgumentNamingIt) {
  auto gpus = ParseNvidiaSmiCsv("0, GPU-aaaa, NVIDIA H200, [N/A]\n");
  EXPECT_EQ(gpus.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(gpus.status().message()),
            "nvidia-smi output line 1 is not 'index, uuid, name, memory': "
            "0, GPU-aaaa, NVIDIA H200, [N/A]");
}

TEST(GpuTest, SelectsAllOrAListAndRejectsUnknownIndexes) {
  auto all = *ParseNvidiaSmiCsv(kFourGpus);
  EXPECT_EQ(SelectGpus(all, "all")->size(), 4u);
  auto some = SelectGpus(all, "0,2,3,2");
  ASSERT_TRUE(some.ok());
  ASSERT_EQ(some->size(), 3u);
  EXPECT_EQ((*some)[1].index, 2);
  EXPECT_EQ(SelectGpus(all, "7").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(SelectGpus(all, "one").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(GpuTest, DiscoveryRunsNvidiaSmiFromPath) {
  TempDir dir;
  WriteFile(dir / "nvidia-smi", std::string("#!/bin/sh\ncat <<'X'\n") + kFourGpus + "X\n");
  chmod((dir / "nvidia-smi").c_str(), 0755);
  std::string old_path = getenv("PATH");
  setenv("PATH", (dir.path().string() + ":" + old_path).c_str(), 1);
  auto gpus = NewNvidiaSmiDiscovery()->Discover();
  setenv("PATH", old_path.c_str(), 1);
  ASSERT_TRUE(gpus.ok()) << gpus.status();
  EXPECT_EQ(gpus->size(), 4u);
}

TEST(GpuTest, NoNvidiaSmiMeansNoGpuWithAHint) {
  std::string old_path = getenv("PATH");
  setenv("PATH", "/nonexistent", 1);
  auto gpus = NewNvidiaSmiDiscovery()->Discover();
  setenv("PATH", old_path.c_str(), 1);
  EXPECT_EQ(gpus.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(gpus.status().message()).find("--cpus N"), std::string::npos);
}

// ---- telemetry (issue 6) --------------------------------------------------------

TEST(GpuTest, ParsesTelemetryWithNotAvailableAsZero) {
  auto samples = ParseGpuSampleCsv(
      "0, GPU-aaaa, 87, 30512, 143771, 612.40\n1, GPU-bbbb, [N/A], 0, 143771, [N/A]\n");
  ASSERT_TRUE(samples.ok()) << samples.status();
  ASSERT_EQ(samples->size(), 2u);
  EXPECT_EQ((*samples)[0].utilization, 87);
  EXPECT_EQ((*samples)[0].memory_used_mib, 30512);
  EXPECT_EQ((*samples)[0].memory_total_mib, 143771);
  EXPECT_DOUBLE_EQ((*samples)[0].power_watts, 612.4);
  EXPECT_EQ((*samples)[1].uuid, "GPU-bbbb");
  EXPECT_EQ((*samples)[1].power_watts, 0);
  EXPECT_EQ(ParseGpuSampleCsv("0, GPU-aaaa, 87\n").status().code(),
            absl::StatusCode::kInvalidArgument);

  auto procs = ParseComputeAppsCsv("4242, GPU-aaaa, 5000\n4243, GPU-bbbb, [N/A]\n");
  ASSERT_TRUE(procs.ok()) << procs.status();
  ASSERT_EQ(procs->size(), 2u);
  EXPECT_EQ((*procs)[0].pid, 4242);
  EXPECT_EQ((*procs)[0].used_mib, 5000);
  EXPECT_EQ((*procs)[1].used_mib, 0);
  EXPECT_TRUE(ParseComputeAppsCsv("No running processes found\n")->empty());
  EXPECT_EQ(std::string(ParseComputeAppsCsv("x, GPU-aaaa, 1\n").status().message()),
            "nvidia-smi output line 1 is not 'pid, gpu uuid, used memory': x, GPU-aaaa, 1");
}

// A probe that reports what the test sets.
class FakeProbe : public GpuProbe {
 public:
  absl::StatusOr<std::vector<GpuSample>> Sample() override { return samples; }
  absl::StatusOr<std::vector<GpuProcess>> Processes() override { return procs; }
  std::vector<GpuSample> samples;
  std::vector<GpuProcess> procs;
};

std::vector<Gpu> TwoGpus() {
  return {Gpu{.index = 0, .uuid = "GPU-a", .name = "H200", .memory_mib = 143771},
          Gpu{.index = 1, .uuid = "GPU-b", .name = "H200", .memory_mib = 143771}};
}

TEST(GpuMonitorTest, TrialsSharingAGpuSplitItsEnergyAndEachKeepsItsOwnPeak) {
  FakeProbe probe;
  probe.samples = {{.index = 0, .uuid = "GPU-a", .utilization = 80, .memory_used_mib = 0,
                    .memory_total_mib = 143771, .power_watts = 300},
                   {.index = 1, .uuid = "GPU-b", .utilization = 0, .memory_used_mib = 0,
                    .memory_total_mib = 143771, .power_watts = 60}};
  GpuMonitor monitor(&probe, TwoGpus(), absl::Hours(1));  // samples only when asked
  // Two "trials" led by processes of their own (sleeping children), on GPU 0.
  SpawnOptions o;
  o.argv = {"sleep", "30"};
  auto a = ChildProcess::Spawn(o);
  auto b = ChildProcess::Spawn(o);
  ASSERT_TRUE(a.ok() && b.ok());
  monitor.Begin("t-a", a->pid(), {0}, 0);
  monitor.Begin("t-b", b->pid(), {0}, 0);
  probe.procs = {{.pid = a->pid(), .uuid = "GPU-a", .used_mib = 700},
                 {.pid = b->pid(), .uuid = "GPU-a", .used_mib = 1200},
                 {.pid = 1, .uuid = "GPU-a", .used_mib = 50}};  // not theirs
  absl::Time start = absl::Now();
  ASSERT_TRUE(monitor.SampleNow().ok());
  double a0 = monitor.Usage("t-a").energy_joules, b0 = monitor.Usage("t-b").energy_joules;
  absl::SleepFor(absl::Milliseconds(200));
  ASSERT_TRUE(monitor.SampleNow().ok());
  double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
  EXPECT_EQ(monitor.Foreign(0).size(), 1u) << "pid 1 is no trial's";
  TrialGpuUse ua = monitor.Usage("t-a");
  TrialGpuUse ub = monitor.Usage("t-b");
  EXPECT_TRUE(ua.seen_on_gpu);
  EXPECT_EQ(ua.peak_mib, 700);
  EXPECT_EQ(ub.peak_mib, 1200);
  EXPECT_DOUBLE_EQ(ua.MeanUtilization(), 80);
  EXPECT_GT(ua.energy_joules, 0);
  // Between two samples both ran: an even split of GPU 0's power.
  EXPECT_NEAR(ua.energy_joules - a0, ub.energy_joules - b0, 1e-9);
  EXPECT_LE(ua.energy_joules - a0 + ub.energy_joules - b0, 300 * elapsed + 1e-9)
      << "never more than the GPU drew";
  monitor.End("t-a");
  EXPECT_TRUE(monitor.Shared(0, "x")) << "t-b still runs on GPU 0";
  monitor.End("t-b");
  EXPECT_FALSE(monitor.Shared(0, "x"));
  a->Stop(absl::Seconds(1));
  b->Stop(absl::Seconds(1));
}

TEST(GpuMonitorTest, WhenNoProcessIsVisibleButMemoryGrowsNothingIsAttributed) {
  // Inside a container without the host's PID namespace nvidia-smi lists no process.
  FakeProbe probe;
  probe.samples = {{.index = 0, .uuid = "GPU-a", .memory_used_mib = 1000,
                    .memory_total_mib = 143771}};
  GpuMonitor monitor(&probe, TwoGpus(), absl::Hours(1));
  monitor.Begin("t", getpid(), {0}, 1000);
  probe.samples[0].memory_used_mib = 9000;
  ASSERT_TRUE(monitor.SampleNow().ok());
  TrialGpuUse u = monitor.End("t");
  EXPECT_FALSE(u.seen_on_gpu);
  EXPECT_FALSE(u.attributable) << "so the no-silent-CPU check does not flag it";
}

TEST(GpuMonitorTest, ProcessTreeIsTheGroupAndTheDescendantsOfTheLeader) {
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", "sleep 30 & wait"};
  auto leader = ChildProcess::Spawn(o);
  ASSERT_TRUE(leader.ok());
  EXPECT_TRUE(InProcessTree(leader->pid(), leader->pid()));
  EXPECT_FALSE(InProcessTree(getpid(), leader->pid()));
  EXPECT_FALSE(InProcessTree(1, leader->pid()));
  leader->Stop(absl::Seconds(1));
  EXPECT_FALSE(InProcessTree(leader->pid(), leader->pid())) << "gone";
}
}  // namespace
}  // namespace sweep
