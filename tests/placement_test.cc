#include "scheduler/placement.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sweep {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kH200 = 143771;  // MiB, as NVML reports an H200

GpuLoad Gpu(const std::string& host, int index, int64_t memory = kH200, int slots = 4) {
  return GpuLoad{.host = host,
                 .uuid = host + "-GPU-" + std::to_string(index),
                 .index = index,
                 .name = "NVIDIA H200",
                 .memory_mib = memory,
                 .slots = slots};
}

TEST(PlacementTest, ByDefaultAGpuRunsOneTrial) {
  GpuNeed need{.gpus = 1};
  GpuLoad g = Gpu("a", 0);
  EXPECT_TRUE(FitsNow(need, g));
  AddTrial(need, g);
  std::string why;
  EXPECT_FALSE(FitsNow(need, g, &why));
  EXPECT_EQ(why, "1 trial already run there (at most 1 share a GPU)");
}

TEST(PlacementTest, TrialsPerGpuPacksByCount) {
  GpuNeed need{.gpus = 1, .trials_per_gpu = 3};
  GpuLoad g = Gpu("a", 0);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(FitsNow(need, g)) << i;
    AddTrial(need, g);
  }
  EXPECT_FALSE(FitsNow(need, g));
}

TEST(PlacementTest, MemoryPacksWithHeadroomAndNoCountLimit) {
  // 10 GiB trials on an 80 GiB card with 2% headroom: 7 fit, not 8.
  GpuNeed need{.gpus = 1, .memory_mib = 10 * 1024};
  GpuLoad g = Gpu("a", 0, 80 * 1024, /*slots=*/16);
  int placed = 0;
  while (FitsNow(need, g)) {
    AddTrial(need, g);
    ++placed;
  }
  EXPECT_EQ(placed, 7);
  std::string why;
  EXPECT_FALSE(FitsNow(need, g, &why));
  EXPECT_EQ(why, "its trials hold 70.0 GiB of 80.0 GiB; 10.0 GiB more does not fit");
  EXPECT_EQ(CountCapacity(need, {Gpu("a", 0, 80 * 1024, 16)}).total, 7);
}

TEST(PlacementTest, ASweepThatSharesDoesNotJoinATrialThatWantsItsGpuAlone) {
  GpuNeed alone{.gpus = 1};
  GpuNeed shared{.gpus = 1, .trials_per_gpu = 4};
  GpuLoad g = Gpu("a", 0);
  AddTrial(alone, g);
  EXPECT_FALSE(FitsNow(shared, g));
  GpuLoad h = Gpu("a", 1);
  AddTrial(shared, h);
  EXPECT_FALSE(FitsNow(alone, h));
  EXPECT_TRUE(FitsNow(shared, h));
}

TEST(PlacementTest, ACpuTrialOnAGpuSlotTakesTheGpuAlone) {
  GpuNeed cpu{};
  GpuLoad g = Gpu("a", 0);
  EXPECT_TRUE(FitsNow(cpu, g));
  AddTrial(cpu, g);
  EXPECT_FALSE(FitsNow(cpu, g));
}

TEST(PlacementTest, HeldGpuTakesNothing) {
  GpuLoad g = Gpu("a", 0);
  g.held = true;
  std::string why;
  EXPECT_FALSE(FitsNow(GpuNeed{.gpus = 1, .trials_per_gpu = 8}, g, &why));
  EXPECT_EQ(why, "held by a trial of several GPUs");
}

TEST(PlacementTest, MultiGpuTrialTakesEmptyGpusOfItsOwnHostLowestIndexFirst) {
  GpuNeed need{.gpus = 3};
  std::vector<GpuLoad> gpus = {Gpu("a", 0), Gpu("a", 3), Gpu("a", 1), Gpu("b", 2),
                               Gpu("a", 2)};
  gpus[2].trials = 1;  // a:1 is busy
  auto extra = PickExtraGpus(need, gpus, 0);
  ASSERT_TRUE(extra.has_value());
  ASSERT_EQ(extra->size(), 2u);
  EXPECT_EQ(gpus[(*extra)[0]].index, 2);
  EXPECT_EQ(gpus[(*extra)[1]].index, 3);
  gpus[4].held = true;  // a:2 now held by another trial
  EXPECT_FALSE(PickExtraGpus(need, gpus, 0).has_value());
  // Its own GPU must be empty too.
  GpuLoad busy = Gpu("a", 0);
  busy.trials = 1;
  EXPECT_FALSE(FitsNow(need, busy));
}

TEST(PlacementTest, CapacityCountsUsableParallelismNotSlots) {
  std::vector<GpuLoad> gpus = {Gpu("a", 0, kH200, 4), Gpu("a", 1, kH200, 4)};
  EXPECT_EQ(CountCapacity(GpuNeed{.gpus = 1}, gpus).total, 2);
  EXPECT_EQ(CountCapacity(GpuNeed{.gpus = 1, .trials_per_gpu = 8}, gpus).total, 8)
      << "bounded by the slots on each GPU";
  EXPECT_EQ(CountCapacity(GpuNeed{.gpus = 2}, gpus).total, 1);
  AddTrial(GpuNeed{.gpus = 1, .trials_per_gpu = 3}, gpus[0]);
  Capacity c = CountCapacity(GpuNeed{.gpus = 1, .trials_per_gpu = 3}, gpus);
  EXPECT_EQ(c.total, 6);
  EXPECT_EQ(c.free, 5);
  EXPECT_EQ(CountCapacity(GpuNeed{.gpus = 2}, gpus).free, 0);
}

TEST(PlacementTest, NeverPlaceableNamesTheNeedAndTheLargestCapacity) {
  std::vector<GpuLoad> gpus = {Gpu("node1", 0, 81559), Gpu("node1", 1, 81559),
                               Gpu("node2", 0, 81559)};
  EXPECT_EQ(NeverPlaceable(GpuNeed{.gpus = 2}, gpus), "");
  EXPECT_EQ(NeverPlaceable(GpuNeed{.gpus = 3}, gpus),
            "resources.gpus_per_trial: a trial needs 3 GPUs on one node, but the most any "
            "connected node has is 2 (node1)");
  EXPECT_EQ(NeverPlaceable(GpuNeed{.gpus = 1, .memory_mib = 100 * 1024}, gpus),
            "resources.gpu_memory: a trial needs 100.0 GiB of GPU memory (plus 1.6 GiB "
            "headroom), but the largest connected GPU has 79.6 GiB (NVIDIA H200 on node1)");
  EXPECT_EQ(NeverPlaceable(GpuNeed{.gpus = 1, .memory_mib = 79 * 1024}, gpus),
            "resources.gpu_memory: a trial needs 79.0 GiB of GPU memory (plus 1.6 GiB "
            "headroom), but the largest connected GPU has 79.6 GiB (NVIDIA H200 on node1)");
  EXPECT_EQ(NeverPlaceable(GpuNeed{.gpus = 1, .memory_mib = 70 * 1024}, gpus), "");
  EXPECT_EQ(NeverPlaceable(GpuNeed{.gpus = 0}, {}), "");
  EXPECT_EQ(NeverPlaceable(GpuNeed{.gpus = 8}, {}), "") << "no GPU worker yet: accept";
}

TEST(PlacementTest, MigDevicesRunTrialsOfOneGpuButAreNeverOneOfSeveral) {
  // One card in MIG mode (two slices) and one whole card on the same node.
  GpuLoad slice_a = Gpu("a", 0, 19968), slice_b = Gpu("a", 0, 4864), whole = Gpu("a", 1);
  slice_a.uuid = "MIG-aaaa";
  slice_b.uuid = "MIG-bbbb";
  std::vector<GpuLoad> gpus = {slice_a, slice_b, whole};
  EXPECT_TRUE(FitsNow(GpuNeed{.gpus = 1}, slice_b));
  EXPECT_EQ(CountCapacity(GpuNeed{.gpus = 1}, gpus).total, 3);
  std::string why;
  EXPECT_FALSE(FitsNow(GpuNeed{.gpus = 2}, slice_a, &why));
  EXPECT_THAT(why, HasSubstr("MIG device"));
  EXPECT_FALSE(PickExtraGpus(GpuNeed{.gpus = 2}, gpus, 2).has_value())
      << "the whole card's only other devices are slices";
  EXPECT_EQ(CountCapacity(GpuNeed{.gpus = 2}, gpus).total, 0);
  EXPECT_THAT(NeverPlaceable(GpuNeed{.gpus = 2}, gpus),
              HasSubstr("the most any connected node has is 1 (a); MIG devices do not count"));
  EXPECT_THAT(NeverPlaceable(GpuNeed{.gpus = 2}, {slice_a, slice_b}),
              HasSubstr("every connected GPU is a MIG device"));
  gpus.push_back(Gpu("a", 2));
  EXPECT_EQ(NeverPlaceable(GpuNeed{.gpus = 2}, gpus), "");
  auto extra = PickExtraGpus(GpuNeed{.gpus = 2}, gpus, 2);
  ASSERT_TRUE(extra.has_value());
  EXPECT_EQ(gpus[(*extra)[0]].uuid, "a-GPU-2");
}

TEST(PlacementTest, NeedOfSpecDefaults) {
  spec::Resources r;
  r.gpus_per_trial = 1;
  EXPECT_EQ(NeedOf(r).ShareLimit(), 1);
  r.gpu_memory_mib = 800;
  EXPECT_GT(NeedOf(r).ShareLimit(), 1000);
  r.trials_per_gpu = 4;
  EXPECT_EQ(NeedOf(r).ShareLimit(), 4);
  EXPECT_THAT(FormatMib(800), HasSubstr("800 MiB"));
}

}  // namespace
}  // namespace sweep
