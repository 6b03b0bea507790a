// Replays the fuzzers' seed corpus (tests/fuzz/corpus/<target>/) through the same
// checks the libFuzzer targets make, with the normal build: every corpus file is a
// regression test, and a rejected spec must say where (FILE:LINE:COL:).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "sweeps/spec.h"
#include "tests/fuzz/metrics_check.h"
#include "tests/fuzz/spec_check.h"

namespace sweep::fuzz {
namespace {

namespace fs = std::filesystem;

fs::path CorpusDir(const std::string& target) {
  const char* env = getenv("SWEEP_FUZZ_CORPUS");
  return fs::path(env && *env ? env : SWEEP_FUZZ_CORPUS_DEFAULT) / target;
}

std::vector<fs::path> Files(const std::string& target) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(CorpusDir(target))) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string Read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(FuzzCorpusTest, EverySpecCorpusFileKeepsTheInvariants) {
  const std::vector<fs::path> files = Files("spec");
  ASSERT_GE(files.size(), 20u) << "the spec corpus is missing: " << CorpusDir("spec");
  for (const fs::path& file : files) {
    EXPECT_EQ(CheckSpecInput(Read(file)), "") << file;
  }
}

TEST(FuzzCorpusTest, EveryRejectedSpecSaysFileLineAndColumn) {
  int rejected = 0;
  for (const fs::path& file : Files("spec")) {
    absl::StatusOr<spec::SweepSpec> parsed = spec::ParseSpec(Read(file), "x.yaml");
    if (parsed.ok()) continue;
    ++rejected;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << file;
    // "x.yaml:LINE:COL: ", both numbers from 1.
    const std::string m(parsed.status().message());
    EXPECT_TRUE(absl::StartsWith(m, "x.yaml:")) << file << ": " << m;
    int line = 0, col = 0;
    EXPECT_EQ(std::sscanf(m.c_str(), "x.yaml:%d:%d: ", &line, &col), 2) << file << ": " << m;
    EXPECT_GE(line, 1) << file << ": " << m;
    EXPECT_GE(col, 1) << file << ": " << m;
  }
  EXPECT_GE(rejected, 10) << "the corpus should hold plenty of bad specs";
}

TEST(FuzzCorpusTest, EveryMetricsCorpusFileKeepsTheInvariants) {
  const std::vector<fs::path> files = Files("metrics");
  ASSERT_GE(files.size(), 10u) << "the metrics corpus is missing: " << CorpusDir("metrics");
  for (const fs::path& file : files) {
    EXPECT_EQ(CheckMetricsInput(Read(file)), "") << file;
  }
}

}  // namespace
}  // namespace sweep::fuzz
