#include "worker/gpu.h"

#include <stdlib.h>
#include <sys/stat.h>

#include "gtest/gtest.h"
#include "tests/testing.h"

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

}  // namespace
}  // namespace sweep
