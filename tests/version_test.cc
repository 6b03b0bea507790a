// Tests of common/version.h (cli_test checks that `sweep --version` prints it).
#include "common/version.h"

#include <cstdio>
#include <string>

#include "gtest/gtest.h"

namespace sweep {
namespace {

TEST(VersionTest, TheVersionIsMajorMinorPatch) {
  const std::string v(Version());
  int major = -1, minor = -1, patch = -1;
  char end = 0;
  EXPECT_EQ(std::sscanf(v.c_str(), "%d.%d.%d%c", &major, &minor, &patch, &end), 3) << v;
  EXPECT_GE(major, 0);
  EXPECT_GE(minor, 0);
  EXPECT_GE(patch, 0);
}

}  // namespace
}  // namespace sweep
