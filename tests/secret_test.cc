// Tests of common/secret.h: reading token and PEM files, comparing tokens.
#include "common/secret.h"

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing.h"

namespace sweep::testing {
namespace {

using ::testing::HasSubstr;

TEST(SecretTest, ConstantTimeEqualsComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("Bearer abc", "Bearer abc"));
  EXPECT_FALSE(ConstantTimeEquals("Bearer abc", "Bearer abd"));
  EXPECT_FALSE(ConstantTimeEquals("Bearer abc", "Bearer ab"));
  EXPECT_FALSE(ConstantTimeEquals("", "x"));
}

TEST(SecretTest, ConstantTimeEqualsSeesEveryByteAndTheLength) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals("xbc", "abc"));  // the first byte
  EXPECT_FALSE(ConstantTimeEquals(std::string("abc", 3), std::string("abc\0", 4)));
  EXPECT_FALSE(ConstantTimeEquals("ab", "abc"));
  EXPECT_TRUE(ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0b", 3)));
}

class SecretFileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    WriteFile(dir_ / name, text);
    return dir_ / name;
  }
  TempDir dir_;
};

TEST_F(SecretFileTest, ReadsTheFileWithSurroundingWhitespaceTrimmed) {
  absl::StatusOr<std::string> s = ReadSecretFile(Write("t", "  s3cret token\n\n"), "--token-file");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(*s, "s3cret token");
}

TEST_F(SecretFileTest, AMissingFileIsNotFoundAndNamesTheFlagAndPath) {
  const std::string path = dir_ / "absent";
  absl::StatusOr<std::string> s = ReadSecretFile(path, "--token-file");
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("--token-file: cannot read " + path));
}

TEST_F(SecretFileTest, AnEmptyOrBlankFileIsInvalidArgument) {
  for (const char* text : {"", " \n\t\n"}) {
    const std::string path = Write("blank", text);
    absl::StatusOr<std::string> s = ReadSecretFile(path, "--tls-ca");
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(std::string(s.status().message()), "--tls-ca: " + path + " is empty");
  }
}

}  // namespace
}  // namespace sweep::testing
