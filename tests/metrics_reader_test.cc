#include "worker/metrics_reader.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing.h"

namespace sweep {
namespace {

using ::sweep::testing::TempDir;
using ::testing::HasSubstr;

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

// ---- a file the trial may turn into anything (docs/security.md) ----------------

std::string Lines(int from, int n) {
  std::string out;
  for (int i = from; i < from + n; ++i) out += absl::StrCat("{\"step\": ", i, ", \"loss\": 1}\n");
  return out;
}

std::string AllNotices(MetricsReader& r) { return absl::StrJoin(r.TakeNotices(), " | "); }

TEST(MetricsReaderTest, ANumberBeyondADoubleLosesOnlyItselfAndIsSaidOnce) {
  TempDir dir;
  std::string path = dir / "metrics.jsonl";
  MetricsReader reader(path);
  Append(path, "{\"step\": 1, \"loss\": 1e400, \"acc\": 0.5, \"lr\": -2e999}\n"
               "{\"step\": 2, \"loss\": 1e400, \"acc\": 0.6}\n");
  auto points = reader.ReadNew(0);
  ASSERT_EQ(points.size(), 2u);
  EXPECT_EQ(points[0].name, "acc");
  EXPECT_EQ(points[1].step, 2);
  EXPECT_EQ(reader.bad_lines(), 0);
  std::vector<std::string> notes = reader.TakeNotices();
  ASSERT_EQ(notes.size(), 1u) << "once per trial";
  EXPECT_THAT(notes[0], HasSubstr("line 1 of the metrics file has values beyond a double's "
                                  "range: 1e400, -2e999"));
}

TEST(MetricsReaderTest, AFifoIsNeitherWaitedOnNorRead) {
  TempDir dir;
  std::string path = dir / "metrics.jsonl";
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  MetricsReader reader(path);
  EXPECT_TRUE(reader.ReadNew(0).empty()) << "returns: a blocking open would hang here";
  EXPECT_THAT(AllNotices(reader), HasSubstr("the metrics file is a FIFO"));
}

TEST(MetricsReaderTest, ALinkToAnotherFileIsNotFollowed) {
  TempDir dir;
  std::string secret = dir / "secret";
  Append(secret, Lines(0, 3));  // readable by the worker, and valid metric lines
  for (const std::string& target : {secret, std::string("/dev/zero")}) {
    std::string path = dir / "metrics.jsonl";
    std::filesystem::remove(path);
    std::filesystem::create_symlink(target, path);
    MetricsReader reader(path);
    EXPECT_TRUE(reader.ReadNew(0).empty()) << target;
    EXPECT_EQ(reader.lines_read(), 0) << target;
    EXPECT_THAT(AllNotices(reader), HasSubstr("a symbolic link")) << target;
  }
}

TEST(MetricsReaderTest, AFileSwappedForALinkMidRunIsReadNoFurther) {
  TempDir dir;
  std::string path = dir / "metrics.jsonl";
  Append(path, Lines(0, 2));
  MetricsReader reader(path);
  EXPECT_EQ(reader.ReadNew(0).size(), 2u);
  std::filesystem::remove(path);
  std::filesystem::create_symlink("/dev/zero", path);
  EXPECT_TRUE(reader.ReadNew(0).empty());
  EXPECT_THAT(AllNotices(reader), HasSubstr("a symbolic link"));
}

TEST(MetricsReaderTest, AFileOfAnotherUserIsNotRead) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give a file to another user";
  TempDir dir;
  std::string path = dir / "metrics.jsonl";
  Append(path, Lines(0, 2));
  ASSERT_EQ(chown(path.c_str(), 65534, 65534), 0);
  MetricsReader reader(path);
  EXPECT_TRUE(reader.ReadNew(0).empty());
  EXPECT_THAT(AllNotices(reader), HasSubstr("belongs to another user"));
}

TEST(MetricsReaderTest, AReplacedFileIsReadFromItsStartAfterTheOldOnesLastLines) {
  TempDir dir;
  std::string path = dir / "metrics.jsonl";
  Append(path, Lines(0, 2));
  MetricsReader reader(path);
  EXPECT_EQ(reader.ReadNew(0).size(), 2u);
  // The old file gets one more line, then is deleted and written anew, shorter:
  // the old offset would skip the new file's first lines.
  Append(path, Lines(2, 1));
  std::string moved = dir / "old";
  std::filesystem::rename(path, moved);
  Append(path, Lines(10, 1));
  auto points = reader.ReadNew(0);
  ASSERT_EQ(points.size(), 2u);
  EXPECT_EQ(points[0].step, 2) << "the old file's last line";
  EXPECT_EQ(points[1].step, 10) << "the new file's first";
  EXPECT_THAT(AllNotices(reader), HasSubstr("replaced"));
}

TEST(MetricsReaderTest, ATruncatedFileIsReadAgainFromItsStart) {
  TempDir dir;
  std::string path = dir / "metrics.jsonl";
  Append(path, Lines(0, 5));
  MetricsReader reader(path);
  EXPECT_EQ(reader.ReadNew(0).size(), 5u);
  std::filesystem::resize_file(path, 0);
  Append(path, Lines(20, 1));
  auto points = reader.ReadNew(0);
  ASSERT_EQ(points.size(), 1u);
  EXPECT_EQ(points[0].step, 20);
  EXPECT_THAT(AllNotices(reader), HasSubstr("truncated"));
}

TEST(MetricsReaderTest, EachReadTakesABoundedNumberOfLinesAndTheRestLater) {
  TempDir dir;
  std::string path = dir / "metrics.jsonl";
  Append(path, Lines(0, 2500));
  MetricsLimits limits;
  limits.max_lines_per_read = 1000;
  MetricsReader reader(path, limits);
  EXPECT_EQ(reader.ReadNew(0).size(), 1000u);
  EXPECT_FALSE(reader.caught_up());
  EXPECT_EQ(reader.ReadNew(0).size(), 1000u);
  auto last = reader.ReadNew(0);
  ASSERT_EQ(last.size(), 500u);
  EXPECT_EQ(last.back().step, 2499);
  EXPECT_TRUE(reader.caught_up());
  EXPECT_TRUE(reader.flooded().empty());
}

TEST(MetricsReaderTest, PointsPerSecondAreHeldToTheBoundAndTheThrottleIsSaidOnce) {
  TempDir dir;
  std::string path = dir / "metrics.jsonl";
  Append(path, Lines(0, 350));
  MetricsLimits limits;
  limits.max_points_per_second = 100;
  MetricsReader reader(path, limits);
  EXPECT_EQ(reader.ReadNew(1000.0).size(), 100u) << "one second's worth at once";
  EXPECT_TRUE(reader.ReadNew(1000.0).empty()) << "no time passed";
  EXPECT_EQ(reader.ReadNew(1000.5).size(), 50u);
  EXPECT_EQ(reader.ReadNew(1010.0).size(), 100u) << "never more than one second's worth";
  std::vector<std::string> notes = reader.TakeNotices();
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_THAT(notes[0], HasSubstr("more than 100 metric points a second"));
  EXPECT_EQ(reader.ReadNew(1020.0).size(), 100u);
  EXPECT_TRUE(reader.caught_up());
}

TEST(MetricsReaderTest, ABacklogBeyondItsBoundSaysTheTrialFloods) {
  TempDir dir;
  std::string path = dir / "metrics.jsonl";
  Append(path, Lines(0, 2000));  // about 60 KB
  MetricsLimits limits;
  limits.max_lines_per_read = 10;
  limits.max_backlog_bytes = 1000;
  MetricsReader reader(path, limits);
  EXPECT_EQ(reader.ReadNew(0).size(), 10u);
  EXPECT_THAT(reader.flooded(), HasSubstr("faster than they can be taken"));
}

TEST(MetricsReaderTest, MetricNamesBeyondTheBoundAreDroppedAndSaid) {
  TempDir dir;
  std::string path = dir / "metrics.jsonl";
  Append(path, "{\"a\": 1, \"b\": 2, \"c\": 3}\n{\"a\": 4, \"d\": 5, \"" +
                   std::string(300, 'x') + "\": 6}\n");
  MetricsLimits limits;
  limits.max_names = 3;
  MetricsReader reader(path, limits);
  std::vector<std::string> names;
  for (const MetricPointData& p : reader.ReadNew(0)) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "c", "a"}));
  std::string notes = AllNotices(reader);
  EXPECT_THAT(notes, HasSubstr("more than 3 metric names"));
  EXPECT_THAT(notes, HasSubstr("longer than 256 bytes"));
}

}  // namespace
}  // namespace sweep
