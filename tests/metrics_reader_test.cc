#include "worker/metrics_reader.h"

#include <fstream>

#include "gtest/gtest.h"
#include "tests/testing.h"

namespace sweep {
namespace {

using ::sweep::testing::TempDir;

void Append(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::app | std::ios::binary) << text;
}

TEST(MetricsReaderTest, EachNumericMemberOfALineIsAPointAtItsStep) {
  std::vector<MetricPointData> out;
  ASSERT_TRUE(MetricsReader::ParseLine(
      R"({"step": 3, "val_loss": 0.41, "val_acc": 0.87, "note": "x", "time": 12.5})", 0, 99,
      &out));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].name, "val_acc");  // members come in key order
  EXPECT_EQ(out[0].step, 3);
  EXPECT_DOUBLE_EQ(out[0].value, 0.87);
  EXPECT_DOUBLE_EQ(out[0].time, 12.5);
  EXPECT_EQ(out[1].name, "val_loss");
}

TEST(MetricsReaderTest, StepAndTimeDefaultToLineNumberAndReadTime) {
  std::vector<MetricPointData> out;
  ASSERT_TRUE(MetricsReader::ParseLine(R"({"loss": 1})", 7, 50.0, &out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].step, 7);
  EXPECT_DOUBLE_EQ(out[0].time, 50.0);
}

TEST(MetricsReaderTest, PythonNanAndInfinityAreDroppedNotTheLine) {
  std::vector<MetricPointData> out;
  ASSERT_TRUE(MetricsReader::ParseLine(R"({"step": 1, "loss": NaN, "acc": 0.5, "g": -Infinity})",
                                       0, 0, &out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].name, "acc");
}

TEST(MetricsReaderTest, MalformedLinesAreCountedAndSkipped) {
  std::vector<MetricPointData> out;
  EXPECT_FALSE(MetricsReader::ParseLine("loss=0.3", 0, 0, &out));
  EXPECT_FALSE(MetricsReader::ParseLine("[1, 2]", 0, 0, &out));
  EXPECT_TRUE(out.empty());
}

TEST(MetricsReaderTest, FollowsAGrowingFileAndWaitsForCompleteLines) {
  TempDir dir;
  std::string path = dir / "metrics.jsonl";
  MetricsReader reader(path);
  EXPECT_TRUE(reader.ReadNew(0).empty());  // no file yet
  Append(path, "{\"step\": 1, \"loss\": 0.9}\n{\"step\": 2, \"lo");
  auto first = reader.ReadNew(0);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].step, 1);
  Append(path, "ss\": 0.8}\r\nnot json\n{\"step\": 3, \"loss\": 0.7}\n");
  auto second = reader.ReadNew(0);
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(second[0].step, 2);
  EXPECT_DOUBLE_EQ(second[0].value, 0.8);
  EXPECT_EQ(second[1].step, 3);
  EXPECT_EQ(reader.lines_read(), 4);
  EXPECT_EQ(reader.bad_lines(), 1);
  EXPECT_EQ(reader.last_error(), "line 3 is not a JSON object: not json");
  EXPECT_TRUE(reader.ReadNew(0).empty());
}

}  // namespace
}  // namespace sweep
