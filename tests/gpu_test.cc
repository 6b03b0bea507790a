// GPU discovery, telemetry and the GpuMonitor, against the fake libnvidia-ml.so.1
// (tests/fake_nvml.cc) loaded by path: cards and MIG devices, selection, a missing
// or too old NVML, per-device errors (not supported, GPU lost mid-run), the energy
// counter against integrated power, and a driver whose every call takes seconds.
#include "worker/gpu.h"

#include <unistd.h>

#include <stdlib.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "common/clock.h"
#include "tests/fake_nvml.h"
#include "tests/testing.h"
#include "worker/gpu_monitor.h"

namespace sweep {
namespace {

using ::sweep::testing::FakeCards;
using ::sweep::testing::FakeNvml;
using ::sweep::testing::FakeNvmlLibrary;
using ::sweep::testing::TempDir;
using ::sweep::testing::WaitFor;
using ::sweep::testing::WriteFile;
using ::testing::HasSubstr;
using Json = nlohmann::json;

// A fake node for one test: its config file, named by $SWEEP_FAKE_NVML.
class GpuTest : public ::testing::Test {
 protected:
  GpuTest() : nvml_(dir_ / "nvml.json") {
    WriteFile(apps(), "");
    setenv("SWEEP_FAKE_NVML", nvml_.path().c_str(), 1);
  }
  ~GpuTest() override {
    StopHolders();
    unsetenv("SWEEP_FAKE_NVML");
  }
  std::string apps() const { return dir_ / "apps"; }
  // A process that lives until the test ends, holding `mib` on device `uuid`.
  pid_t Hold(const std::string& uuid, int mib) {
    SpawnOptions o;
    o.argv = {"sleep", "60"};
    auto c = ChildProcess::Spawn(o);
    EXPECT_TRUE(c.ok());
    pid_t pid = c->pid();
    held_.push_back(std::move(*c));
    std::string lines = ::sweep::testing::ReadFile(apps());
    WriteFile(apps(), absl::StrCat(lines, pid, ", ", uuid, ", ", mib, "\n"));
    return pid;
  }
  void StopHolders() {
    for (ChildProcess& c : held_) c.Stop(absl::Seconds(1));
    held_.clear();
  }

  TempDir dir_;
  FakeNvml nvml_;
  std::vector<ChildProcess> held_;
};

// One card in MIG mode with two MIG devices (at MIG slots 0 and 3) between two
// plain cards.
Json MigNode() {
  Json c = FakeCards(3, 40960);
  c["gpus"][1]["uuid"] = "GPU-mig-card";
  c["gpus"][1]["name"] = "NVIDIA A100-SXM4-40GB";
  c["gpus"][1]["mig"] = Json::array(
      {{{"uuid", "MIG-aaaa"}, {"name", "NVIDIA A100-SXM4-40GB MIG 3g.20gb"}, {"memory_mib", 19968}},
       {{"uuid", "MIG-bbbb"},
        {"name", "NVIDIA A100-SXM4-40GB MIG 1g.5gb"},
        {"memory_mib", 4864},
        {"slot", 3}}});
  return c;
}

TEST_F(GpuTest, DiscoveryListsEveryCardThroughNvml) {
  nvml_.Write(FakeCards(4, 81559));
  auto discovery = NewNvmlDiscovery(FakeNvmlLibrary());
  auto gpus = discovery->Discover();
  ASSERT_TRUE(gpus.ok()) << gpus.status();
  ASSERT_EQ(gpus->size(), 4u);
  EXPECT_EQ((*gpus)[2].index, 2);
  EXPECT_EQ((*gpus)[2].uuid, "GPU-fake-2");
  EXPECT_EQ((*gpus)[2].name, "Fake GPU");
  EXPECT_EQ((*gpus)[2].memory_mib, 81559);
  EXPECT_FALSE((*gpus)[2].is_mig_device());
  EXPECT_EQ((*gpus)[2].CudaName(), "2");
  EXPECT_THAT(discovery->Source(), HasSubstr("NVML ("));
  EXPECT_THAT(discovery->Source(), HasSubstr("libnvidia-ml.so.1"));
}

TEST_F(GpuTest, CardInMigModeIsFollowedByItsMigDevicesWhichRunTheTrials) {
  nvml_.Write(MigNode());
  auto gpus = NewNvmlDiscovery(FakeNvmlLibrary())->Discover();
  ASSERT_TRUE(gpus.ok()) << gpus.status();
  ASSERT_EQ(gpus->size(), 5u);
  const Gpu& card = (*gpus)[1];
  EXPECT_TRUE(card.mig_enabled);
  EXPECT_FALSE(card.runs_trials());
  const Gpu& slice = (*gpus)[3];
  EXPECT_EQ(slice.uuid, "MIG-bbbb");
  EXPECT_EQ(slice.name, "NVIDIA A100-SXM4-40GB MIG 1g.5gb");
  EXPECT_EQ(slice.memory_mib, 4864) << "the slice's own memory";
  EXPECT_EQ(slice.index, 1) << "its card's index";
  EXPECT_EQ(slice.mig_index, 3);
  EXPECT_EQ(slice.parent_uuid, "GPU-mig-card");
  EXPECT_EQ(slice.CudaName(), "MIG-bbbb") << "what CUDA_VISIBLE_DEVICES takes";

  auto all = SelectGpus(*gpus, "all");
  ASSERT_TRUE(all.ok());
  std::vector<std::string> uuids;
  for (const Gpu& g : *all) uuids.push_back(g.uuid);
  EXPECT_EQ(uuids, (std::vector<std::string>{"GPU-fake-0", "MIG-aaaa", "MIG-bbbb", "GPU-fake-2"}));
}

TEST_F(GpuTest, SelectsByIndexCardUuidOrMigUuidAndNamesWhatTheNodeHasWhenAsked) {
  nvml_.Write(MigNode());
  auto gpus = *NewNvmlDiscovery(FakeNvmlLibrary())->Discover();
  auto some = SelectGpus(gpus, "2,MIG-bbbb,GPU-fake-0,2");
  ASSERT_TRUE(some.ok()) << some.status();
  ASSERT_EQ(some->size(), 3u);
  EXPECT_EQ((*some)[0].uuid, "GPU-fake-2");
  EXPECT_EQ((*some)[1].uuid, "MIG-bbbb");
  EXPECT_EQ(SelectGpus(gpus, "1")->size(), 2u) << "a card in MIG mode: its MIG devices";

  auto five = SelectGpus(gpus, "5");
  EXPECT_EQ(five.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(std::string(five.status().message()), "this node has no GPU 5 (it has 3: 0, 1, 2)");
  auto mig = SelectGpus(gpus, "MIG-nope");
  EXPECT_EQ(mig.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(std::string(mig.status().message()),
            "this node has no MIG device MIG-nope (it has MIG-aaaa (NVIDIA A100-SXM4-40GB MIG "
            "3g.20gb), MIG-bbbb (NVIDIA A100-SXM4-40GB MIG 1g.5gb))");
  EXPECT_EQ(SelectGpus(gpus, "GPU-nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(SelectGpus(gpus, "one").status().code(), absl::StatusCode::kInvalidArgument);

  Json empty = MigNode();
  empty["gpus"][1]["mig"] = Json::array();
  nvml_.Write(empty);
  gpus = *NewNvmlDiscovery(FakeNvmlLibrary())->Discover();
  auto none = SelectGpus(gpus, "1");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(none.status().message(), HasSubstr("GPU 1 (GPU-mig-card) is in MIG mode but has "
                                                 "no MIG devices"));
  EXPECT_EQ(SelectGpus(gpus, "all")->size(), 2u) << "the others still run trials";
}

TEST_F(GpuTest, NoNvmlMeansNoGpuWithTheLoadersReasonAndAHint) {
  auto gpus = NewNvmlDiscovery("/nonexistent/libnvidia-ml.so.1")->Discover();
  EXPECT_EQ(gpus.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(gpus.status().message(),
              HasSubstr("NVML could not be loaded (cannot load /nonexistent/libnvidia-ml.so.1: "
                        "/nonexistent/libnvidia-ml.so.1: cannot open shared object file"));
  EXPECT_THAT(gpus.status().message(), HasSubstr("--cpus N"));
  auto probe = NewNvmlProbe("/nonexistent/libnvidia-ml.so.1")->Read({"GPU-fake-0"});
  EXPECT_EQ(probe.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(GpuTest, NvmlTooOldNamesTheFunctionItLacks) {
  nvml_.Write(FakeCards(1));
  auto gpus =
      NewNvmlDiscovery(::sweep::testing::OldFakeNvmlDir() + "/libnvidia-ml.so.1")->Discover();
  EXPECT_EQ(gpus.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(gpus.status().message(), HasSubstr("is too old for sweep: it has no "
                                                 "nvmlDeviceGetComputeRunningProcesses_v3"));
}

TEST_F(GpuTest, DriverThatDoesNotStartIsFailedPreconditionInNvmlsWords) {
  Json c = FakeCards(1);
  c["init_error"] = "DRIVER_NOT_LOADED";
  nvml_.Write(c);
  // Another name for the same file: a library that opened once stays open.
  auto gpus = NewNvmlDiscovery(::sweep::testing::FakeNvmlDir() + "/./libnvidia-ml.so.1")
                  ->Discover();
  EXPECT_EQ(gpus.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(gpus.status().message(), HasSubstr("could not start: Driver Not Loaded (NVML "
                                                 "error 9)"));
}

TEST_F(GpuTest, ProbeReadsMemoryUtilizationPowerEnergyAndProcesses) {
  nvml_.Write(FakeCards(2, 16384, apps()));
  pid_t pid = Hold("GPU-fake-1", 700);
  auto probe = NewNvmlProbe(FakeNvmlLibrary());
  auto r = probe->Read({"GPU-fake-1", "GPU-fake-0"});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->gpus.size(), 2u);
  const GpuSample& g = r->gpus[0];
  EXPECT_EQ(g.uuid, "GPU-fake-1");
  EXPECT_EQ(g.error, "");
  EXPECT_EQ(g.memory_used_mib, 700);
  EXPECT_EQ(g.memory_total_mib, 16384);
  EXPECT_EQ(g.utilization, 50);
  EXPECT_EQ(g.power_watts, 100);
  EXPECT_TRUE(g.energy_joules.has_value());
  EXPECT_EQ(r->gpus[1].memory_used_mib, 0);
  ASSERT_EQ(r->processes.size(), 1u);
  EXPECT_EQ(r->processes[0].pid, pid);
  EXPECT_EQ(r->processes[0].uuid, "GPU-fake-1");
  EXPECT_EQ(r->processes[0].used_mib, 700);
  StopHolders();
  r = probe->Read({"GPU-fake-1"});
  EXPECT_TRUE(r->processes.empty()) << "its process is gone";

  auto unknown = probe->Read({"GPU-nope"});
  ASSERT_TRUE(unknown.ok());
  EXPECT_THAT(unknown->gpus[0].error, HasSubstr("does not list this device"));
}

TEST_F(GpuTest, PowerAndEnergyTheCardDoesNotSupportAreNoneNotErrors) {
  Json c = FakeCards(1);
  c["gpus"][0]["power_error"] = "NOT_SUPPORTED";
  c["gpus"][0]["energy_error"] = "NOT_SUPPORTED";
  nvml_.Write(c);
  auto r = NewNvmlProbe(FakeNvmlLibrary())->Read({"GPU-fake-0"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->gpus[0].error, "");
  EXPECT_FALSE(r->gpus[0].power_watts.has_value());
  EXPECT_FALSE(r->gpus[0].energy_joules.has_value());
  EXPECT_EQ(r->gpus[0].memory_total_mib, 16384);
}

TEST_F(GpuTest, MigDeviceReadsItsOwnMemoryAndProcessesAndHasNoPowerOfItsOwn) {
  Json c = MigNode();
  c["processes_file"] = apps();
  nvml_.Write(c);
  pid_t pid = Hold("MIG-bbbb", 1000);
  auto r = NewNvmlProbe(FakeNvmlLibrary())->Read({"MIG-bbbb", "MIG-aaaa"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->gpus[0].error, "");
  EXPECT_EQ(r->gpus[0].memory_total_mib, 4864);
  EXPECT_EQ(r->gpus[0].memory_used_mib, 1000);
  EXPECT_EQ(r->gpus[1].memory_used_mib, 0);
  EXPECT_FALSE(r->gpus[0].power_watts.has_value());
  EXPECT_FALSE(r->gpus[0].utilization.has_value());
  ASSERT_EQ(r->processes.size(), 1u);
  EXPECT_EQ(r->processes[0].pid, pid);
  EXPECT_EQ(r->processes[0].uuid, "MIG-bbbb");
}

TEST_F(GpuTest, GpuLostMidRunIsReportedForThatDeviceAlone) {
  nvml_.Write(FakeCards(2));
  auto probe = NewNvmlProbe(FakeNvmlLibrary());
  ASSERT_EQ(probe->Read({"GPU-fake-0", "GPU-fake-1"})->gpus[1].error, "");
  nvml_.config()["gpus"][1]["lost"] = true;
  nvml_.Write();
  auto r = probe->Read({"GPU-fake-0", "GPU-fake-1"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->gpus[0].error, "");
  EXPECT_FALSE(r->gpus[0].lost);
  EXPECT_TRUE(r->gpus[1].lost);
  EXPECT_EQ(r->gpus[1].error, "GPU is lost (NVML error 15)");
}

TEST_F(GpuTest, ProbeHandsOutEachXidOnceForTheCardItHit) {
  nvml_.Write(FakeCards(2));
  auto probe = NewNvmlProbe(FakeNvmlLibrary());
  auto r = probe->Read({"GPU-fake-0"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->faults.empty());
  nvml_.config()["gpus"][1]["xids"] = Json::array({79, 31});
  nvml_.Write();
  r = probe->Read({"GPU-fake-0"});  // an Xid of any card of the node comes back
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->faults.size(), 2u);
  EXPECT_EQ(r->faults[0].uuid, "GPU-fake-1");
  EXPECT_EQ(r->faults[0].xid, 79);
  EXPECT_EQ(r->faults[1].xid, 31);
  r = probe->Read({"GPU-fake-0"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->faults.empty()) << "each Xid once";
}

TEST_F(GpuTest, XidOfAGpuInstanceHitsItsMigDeviceAndOneOfTheWholeCardHitsEach) {
  Json c = MigNode();
  c["gpus"][1]["mig"][1]["gpu_instance"] = 9;  // MIG-bbbb
  nvml_.Write(c);
  auto probe = NewNvmlProbe(FakeNvmlLibrary());
  ASSERT_TRUE(probe->Read({"MIG-aaaa"}).ok());
  c["gpus"][1]["xids"] = Json::array({{{"xid", 94}, {"gpu_instance", 9}}, 48});
  nvml_.Write(c);
  auto r = probe->Read({"MIG-aaaa"});
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<std::pair<std::string, int64_t>> got;
  for (const GpuFault& f : r->faults) got.emplace_back(f.uuid, f.xid);
  EXPECT_EQ(got, (std::vector<std::pair<std::string, int64_t>>{{"MIG-bbbb", 94},
                                                               {"GPU-mig-card", 48},
                                                               {"MIG-aaaa", 48},
                                                               {"MIG-bbbb", 48}}));
}

TEST(XidTest, KindsFollowNvidiasCatalogueAndAnUnknownXidIsNotTakenForABrokenCard) {
  for (int64_t xid : {48, 64, 74, 79, 95, 119, 120}) {
    EXPECT_EQ(ClassifyXid(xid), XidKind::kDevice) << xid;
  }
  EXPECT_EQ(ClassifyXid(94), XidKind::kTrial);
  for (int64_t xid : {13, 31, 43, 45, 63, 12345}) {
    EXPECT_EQ(ClassifyXid(xid), XidKind::kApplication) << xid;
  }
  EXPECT_EQ(XidText(79), "Xid 79 (GPU has fallen off the bus)");
  EXPECT_EQ(XidText(12345), "Xid 12345");
}

// ---- the monitor ------------------------------------------------------------

// A "trial": a process of its own (a leader of its own process group).
ChildProcess Leader() {
  SpawnOptions o;
  o.argv = {"sleep", "60"};
  return *ChildProcess::Spawn(o);
}

TEST_F(GpuTest, MonitorSplitsEnergyBetweenTrialsSharingAGpuAndKeepsEachOnesPeak) {
  nvml_.Write(FakeCards(2, 16384, apps()));
  auto probe = std::shared_ptr<GpuProbe>(NewNvmlProbe(FakeNvmlLibrary()));
  GpuMonitor monitor(probe, {"GPU-fake-0"}, absl::Milliseconds(50));
  ChildProcess a = Leader(), b = Leader();
  absl::Time start = absl::Now();
  monitor.Begin("t-a", a.pid(), {"GPU-fake-0"}, 0);
  monitor.Begin("t-b", b.pid(), {"GPU-fake-0"}, 0);
  WriteFile(apps(), absl::StrCat(a.pid(), ", GPU-fake-0, 700\n", b.pid(), ", GPU-fake-0, 1200\n"));
  Hold("GPU-fake-0", 50);  // no trial's
  ASSERT_TRUE(monitor.WaitForSample(absl::Now(), absl::Now() + absl::Seconds(10)));
  absl::SleepFor(absl::Milliseconds(300));  // energy accrues over time
  ASSERT_TRUE(monitor.WaitForSample(absl::Now(), absl::Now() + absl::Seconds(10)));
  double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
  EXPECT_EQ(monitor.Foreign("GPU-fake-0").size(), 1u) << "one process is no trial's";
  TrialGpuUse ua = monitor.Usage("t-a"), ub = monitor.Usage("t-b");
  EXPECT_TRUE(ua.seen_on_gpu);
  EXPECT_EQ(ua.peak_mib, 700);
  EXPECT_EQ(ub.peak_mib, 1200);
  EXPECT_DOUBLE_EQ(ua.MeanUtilization(), 50);
  EXPECT_GT(ua.energy_joules, 0);
  EXPECT_NEAR(ua.energy_joules, ub.energy_joules, 0.01 * ua.energy_joules) << "an even split";
  EXPECT_LE(ua.energy_joules + ub.energy_joules, 100 * elapsed * 1.05)
      << "never more than the GPU drew (the counter is read a moment after a round begins)";
  EXPECT_TRUE(monitor.Shared("GPU-fake-0", "t-a"));
  monitor.End("t-a");
  EXPECT_FALSE(monitor.Shared("GPU-fake-0", "t-b")) << "t-b alone now";
  monitor.End("t-b");
  a.Stop(absl::Seconds(1));
  b.Stop(absl::Seconds(1));
}

TEST_F(GpuTest, EnergyComesFromTheCardsCounterWhereItHasOneElseFromPowerOverTime) {
  Json c = FakeCards(2);  // both draw 100 W by their power reading
  c["gpus"][0]["energy_j_per_read"] = 600;  // the counter: 600 J more at each sample
  c["gpus"][1]["energy_error"] = "NOT_SUPPORTED";
  nvml_.Write(c);
  auto probe = std::shared_ptr<GpuProbe>(NewNvmlProbe(FakeNvmlLibrary()));
  // Samples only when asked, timed by a clock that moves only when told.
  FakeClock clock;
  const absl::Time t0 = clock.Now();
  GpuMonitor monitor(probe, {"GPU-fake-0", "GPU-fake-1"}, absl::Hours(1), &clock);
  ASSERT_TRUE(monitor.WaitForSample(t0, t0 + absl::Hours(2)));
  ChildProcess a = Leader(), b = Leader();
  monitor.Begin("counter", a.pid(), {"GPU-fake-0"}, -1);
  monitor.Begin("power", b.pid(), {"GPU-fake-1"}, -1);
  clock.Advance(absl::Seconds(2));
  // Whether the sample Begin asked for came at t0 or now, one counter step and two
  // seconds of 100 W lie between the last sample at t0 and this one.
  ASSERT_TRUE(monitor.WaitForSample(clock.Now(), clock.Now() + absl::Hours(2)));
  EXPECT_DOUBLE_EQ(monitor.End("counter").energy_joules, 600) << "the counter, not 100 W";
  EXPECT_DOUBLE_EQ(monitor.End("power").energy_joules, 200) << "100 W for 2 s";
  a.Stop(absl::Seconds(1));
  b.Stop(absl::Seconds(1));
}

TEST_F(GpuTest, MonitorWaitsForASampleAfterAnEventToSayWhetherMemoryIsReleased) {
  nvml_.Write(FakeCards(1, 16384, apps()));
  auto probe = std::shared_ptr<GpuProbe>(NewNvmlProbe(FakeNvmlLibrary()));
  GpuMonitor monitor(probe, {"GPU-fake-0"}, absl::Hours(1));  // samples only when asked
  ChildProcess t = Leader();
  monitor.Begin("t", t.pid(), {"GPU-fake-0"}, 0);
  WriteFile(apps(), absl::StrCat(t.pid(), ", GPU-fake-0, 900\n"));
  ASSERT_TRUE(monitor.WaitForSample(absl::Now(), absl::Now() + absl::Seconds(10)));
  TrialGpuUse use = monitor.End("t");
  EXPECT_EQ(use.peak_mib, 900);
  std::string held;
  EXPECT_EQ(monitor.CheckReleased("GPU-fake-0", use, 0, true, absl::Now(),
                                  absl::Now() + absl::Seconds(10), &held),
            GpuMonitor::Release::kHeld);
  EXPECT_EQ(held, absl::StrCat("900 MiB still held by process ", t.pid(), " of the trial"));
  t.Stop(absl::Seconds(1));
  EXPECT_EQ(monitor.CheckReleased("GPU-fake-0", use, 0, true, absl::Now(),
                                  absl::Now() + absl::Seconds(10), &held),
            GpuMonitor::Release::kReleased);
}

TEST_F(GpuTest, WhenNoProcessIsVisibleButMemoryGrowsNothingIsAttributed) {
  // Inside a container without the host's PID namespace NVML lists no process.
  Json c = FakeCards(1);
  c["gpus"][0]["used_mib"] = 1000;
  nvml_.Write(c);
  auto probe = std::shared_ptr<GpuProbe>(NewNvmlProbe(FakeNvmlLibrary()));
  GpuMonitor monitor(probe, {"GPU-fake-0"}, absl::Hours(1));
  monitor.Begin("t", getpid(), {"GPU-fake-0"}, 1000);
  nvml_.config()["gpus"][0]["used_mib"] = 9000;
  nvml_.Write();
  ASSERT_TRUE(monitor.WaitForSample(absl::Now(), absl::Now() + absl::Seconds(10)));
  TrialGpuUse u = monitor.End("t");
  EXPECT_FALSE(u.seen_on_gpu);
  EXPECT_FALSE(u.attributable) << "so the no-silent-CPU check does not flag it";
}

TEST_F(GpuTest, MonitorReportsAGpuLostMidRun) {
  nvml_.Write(FakeCards(1));
  auto probe = std::shared_ptr<GpuProbe>(NewNvmlProbe(FakeNvmlLibrary()));
  GpuMonitor monitor(probe, {"GPU-fake-0"}, absl::Milliseconds(50));
  ASSERT_TRUE(monitor.WaitForSample(absl::Now(), absl::Now() + absl::Seconds(10)));
  std::string why;
  EXPECT_FALSE(monitor.Broken("GPU-fake-0", &why));
  nvml_.config()["gpus"][0]["lost"] = true;
  nvml_.Write();
  ASSERT_TRUE(monitor.WaitForSample(absl::Now(), absl::Now() + absl::Seconds(10)));
  EXPECT_TRUE(monitor.Broken("GPU-fake-0", &why));
  EXPECT_EQ(why, "is lost: GPU is lost (NVML error 15)");
}

TEST_F(GpuTest, ADeviceXidTakesTheDeviceOutForGoodAndOtherXidsAreOnlyRecorded) {
  nvml_.Write(FakeCards(2));
  auto probe = std::shared_ptr<GpuProbe>(NewNvmlProbe(FakeNvmlLibrary()));
  GpuMonitor monitor(probe, {"GPU-fake-0", "GPU-fake-1"}, absl::Milliseconds(50));
  ASSERT_TRUE(monitor.WaitForSample(absl::Now(), absl::Now() + absl::Seconds(10)));
  absl::Time before = absl::Now();
  nvml_.config()["gpus"][0]["xids"] = Json::array({31});
  nvml_.config()["gpus"][1]["xids"] = Json::array({79});
  nvml_.Write();
  ASSERT_TRUE(WaitFor([&] { return !monitor.XidsSince("GPU-fake-1", before).empty(); },
                      absl::Seconds(10)));
  ASSERT_TRUE(WaitFor([&] { return !monitor.XidsSince("GPU-fake-0", before).empty(); },
                      absl::Seconds(10)));
  std::string why;
  EXPECT_FALSE(monitor.Broken("GPU-fake-0", &why)) << "Xid 31 is the program's own";
  EXPECT_EQ(monitor.XidsSince("GPU-fake-0", before), std::vector<int64_t>{31});
  ASSERT_TRUE(monitor.Broken("GPU-fake-1", &why));
  EXPECT_EQ(why, "reported Xid 79 (GPU has fallen off the bus)");
  // Later samples answer normally, yet the card stays out until it is reset.
  ASSERT_TRUE(monitor.WaitForSample(absl::Now(), absl::Now() + absl::Seconds(10)));
  EXPECT_TRUE(monitor.Broken("GPU-fake-1", &why));
  EXPECT_TRUE(monitor.XidsSince("GPU-fake-1", absl::Now()).empty());
}

TEST_F(GpuTest, ADriverThatTakesSecondsPerCallDelaysNoCallerOfTheMonitor) {
  nvml_.Write(FakeCards(1, 16384, apps()));
  auto probe = std::shared_ptr<GpuProbe>(NewNvmlProbe(FakeNvmlLibrary()));
  absl::Time built;
  {
    GpuMonitor monitor(probe, {"GPU-fake-0"}, absl::Milliseconds(50));
    ASSERT_TRUE(monitor.WaitForSample(absl::Now(), absl::Now() + absl::Seconds(10)));
    nvml_.config()["delay_s"] = 2;
    nvml_.Write();
    monitor.RequestSample();
    // The sampler is now in calls that take 2 s each.
    ASSERT_TRUE(WaitFor([&] { return monitor.ReadDuration() > absl::Milliseconds(50); },
                        absl::Seconds(10)));
    ChildProcess t = Leader();
    absl::Time start = absl::Now();
    monitor.Begin("t", t.pid(), {"GPU-fake-0"}, -1);
    monitor.Usage("t");
    monitor.Reading("GPU-fake-0");
    monitor.Shared("GPU-fake-0", "t");
    monitor.Foreign("GPU-fake-0");
    std::string why;
    monitor.Broken("GPU-fake-0", &why);
    monitor.XidsSince("GPU-fake-0", absl::InfinitePast());
    TrialGpuUse use = monitor.End("t");
    // Any wait on the driver would take its 2 s; the bounds leave a loaded machine
    // room below that.
    EXPECT_LT(absl::Now() - start, absl::Seconds(1));
    std::string held;
    start = absl::Now();
    EXPECT_EQ(monitor.CheckReleased("GPU-fake-0", use, -1, true, absl::Now(),
                                    absl::Now() + absl::Milliseconds(200), &held),
              GpuMonitor::Release::kUnknown);
    EXPECT_LT(absl::Now() - start, absl::Milliseconds(1900))
        << "bounded by its 200 ms deadline, not by the driver";
    t.Stop(absl::Seconds(1));
    built = absl::Now();
  }
  EXPECT_LT(absl::Now() - built, absl::Milliseconds(1900))
      << "destruction waits 1 s at most, not for the driver";
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
