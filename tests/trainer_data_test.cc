// sweep-train's data: IDX (plain and gzipped) and CSV readers, the fixed
// validation split, normalization, and the errors for missing and corrupt
// files.
#include <cmath>
#include <numeric>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing.h"
#include "tests/trainer_testdata.h"
#include "trainer/data.h"

namespace sweep::trainer {
namespace {

using ::sweep::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(TrainerDataTest, GzippedAndPlainIdxFilesReadTheSame) {
  TempDir plain, gz;
  testing::WriteIdxDataset(plain.path().string(), 50, 20, 4, /*gzip=*/false);
  testing::WriteIdxDataset(gz.path().string(), 50, 20, 4, /*gzip=*/true);
  auto a = ReadIdx(plain / "train-images-idx3-ubyte");
  auto b = ReadIdx(gz / "train-images-idx3-ubyte.gz");
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_THAT(a->dims, ElementsAre(50, 28, 28));
  EXPECT_EQ(a->bytes.size(), 50u * 784);
  EXPECT_EQ(a->bytes, b->bytes);
}

TEST(TrainerDataTest, LoadsAnIdxDatasetSplitAndNormalized) {
  TempDir dir;
  testing::WriteIdxDataset(dir.path().string(), 200, 60, 4);
  auto d = LoadData({.dataset = "idx",
                     .data_dir = dir.path().string(),
                     .val_fraction = 0.25});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->images);
  EXPECT_THAT(d->sample_shape, ElementsAre(1, 28, 28));
  EXPECT_EQ(d->num_classes, 4);
  EXPECT_EQ(d->train.size(), 150);
  EXPECT_EQ(d->val.size(), 50);
  EXPECT_EQ(d->test.size(), 60);
  EXPECT_EQ(d->train.x.size(), 150u * 784);
  // Standardized with the training split's statistics.
  double mean = std::accumulate(d->train.x.begin(), d->train.x.end(), 0.0) /
                d->train.x.size();
  double sq = 0;
  for (float v : d->train.x) sq += (v - mean) * (v - mean);
  EXPECT_NEAR(mean, 0, 1e-4);
  EXPECT_NEAR(std::sqrt(sq / d->train.x.size()), 1, 1e-3);
  EXPECT_LT(d->background, -0.5) << "a black pixel lies below the mean";
}

TEST(TrainerDataTest,
     ValidationSplitIsTheSameOnEveryLoadAndTrainLimitOnlyShrinksTrain) {
  TempDir dir;
  testing::WriteIdxDataset(dir.path().string(), 100, 10, 4);
  DataOptions o{
      .dataset = "idx", .data_dir = dir.path().string(), .val_fraction = 0.2};
  auto a = LoadData(o);
  o.train_limit = 30;
  auto b = LoadData(o);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->val.y, b->val.y);
  EXPECT_EQ(b->train.size(), 30);
  EXPECT_EQ(std::vector<int64_t>(a->train.y.begin(), a->train.y.begin() + 30),
            b->train.y);
}

TEST(TrainerDataTest, LoadsCsvWithAHeaderAndStandardizesEachColumn) {
  TempDir dir;
  testing::WriteCsvDataset(dir.path().string(), 100, 40);
  auto d = LoadData(
      {.dataset = "csv", .data_dir = dir.path().string(), .val_fraction = 0.1});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_FALSE(d->images);
  EXPECT_THAT(d->sample_shape, ElementsAre(2));
  EXPECT_EQ(d->num_classes, 2);
  EXPECT_EQ(d->train.size(), 90);
  EXPECT_EQ(d->test.size(), 40);
  for (int f = 0; f < 2; ++f) {
    double m = 0;
    for (int64_t i = 0; i < d->train.size(); ++i) m += d->train.x[i * 2 + f];
    EXPECT_NEAR(m / d->train.size(), 0, 1e-5) << "column " << f;
  }
}

TEST(TrainerDataTest, MissingFilesAreNotFoundAndSayWhereTheyWereLookedFor) {
  TempDir dir;
  auto d =
      LoadData({.dataset = "fashion-mnist", .data_dir = dir.path().string()});
  EXPECT_EQ(d.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(d.status().message(),
              HasSubstr("train-images-idx3-ubyte[.gz] not found in"));
  EXPECT_THAT(d.status().message(), HasSubstr("dataset-fashion-mnist"));
  auto c = LoadData({.dataset = "csv", .data_dir = dir.path().string()});
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(c.status().message(), HasSubstr("train.csv: no such file"));
}

TEST(TrainerDataTest, TruncatedGzipIsDataLoss) {
  TempDir dir;
  testing::WriteIdxDataset(dir.path().string(), 50, 10, 4, /*gzip=*/true);
  std::string path = dir / "train-images-idx3-ubyte.gz";
  std::string bytes = testing::ReadFile(path);
  testing::WriteFile(path, bytes.substr(0, bytes.size() / 2));
  auto a = ReadIdx(path);
  EXPECT_EQ(a.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(a.status().message(), HasSubstr(path));
}

TEST(TrainerDataTest, GarbageInsideAGzipStreamIsDataLoss) {
  TempDir dir;
  testing::WriteIdxDataset(dir.path().string(), 50, 10, 4, /*gzip=*/true);
  std::string path = dir / "train-images-idx3-ubyte.gz";
  std::string bytes = testing::ReadFile(path);
  for (size_t i = 40; i < 200; ++i)
    bytes[i] = static_cast<char>(bytes[i] ^ 0x5a);
  testing::WriteFile(path, bytes);
  EXPECT_EQ(ReadIdx(path).status().code(), absl::StatusCode::kDataLoss);
}

TEST(TrainerDataTest, BadMagicWrongTypeAndShortDataAreDataLoss) {
  TempDir dir;
  testing::WriteFile(dir / "a", "hello, not an idx file");
  EXPECT_THAT(ReadIdx(dir / "a").status().message(),
              HasSubstr("bad magic number"));
  testing::WriteFile(dir / "b",
                     std::string("\0\0\x0d\x01\0\0\0\x01\0\0\0\0", 12));
  EXPECT_THAT(ReadIdx(dir / "b").status().message(),
              HasSubstr("only unsigned bytes"));
  testing::WriteFile(
      dir / "c", testing::IdxBytes({10, 28, 28}, std::vector<uint8_t>(700)));
  auto c = ReadIdx(dir / "c");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(
      c.status().message(),
      HasSubstr("header says 7840 bytes of data, file has 700 (truncated)"));
}

TEST(TrainerDataTest, ImagesAndLabelsOfDifferentCountsAreDataLoss) {
  TempDir dir;
  testing::WriteIdxDataset(dir.path().string(), 50, 10, 4, /*gzip=*/false);
  testing::WriteFile(dir / "train-labels-idx1-ubyte",
                     testing::IdxBytes({49}, std::vector<uint8_t>(49, 1)));
  auto d = LoadData({.dataset = "idx", .data_dir = dir.path().string()});
  EXPECT_EQ(d.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(d.status().message(), HasSubstr("holds 50 images but"));
}

TEST(TrainerDataTest, MalformedCsvNamesFileLineAndColumn) {
  TempDir dir;
  testing::WriteFile(dir / "x.csv", "label,a,b\n1,0.5,0.25\n0,oops,1\n");
  int64_t features = -1;
  auto a = ReadCsv(dir / "x.csv", &features);
  EXPECT_EQ(a.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(a.status().message(),
              HasSubstr("x.csv:3: column 2: not a number: 'oops'"));
  testing::WriteFile(dir / "y.csv", "1,0.5,0.25\n0,1\n");
  features = -1;
  EXPECT_THAT(ReadCsv(dir / "y.csv", &features).status().message(),
              HasSubstr("y.csv:2: expected 3 columns"));
  testing::WriteFile(dir / "z.csv", "1.5,0.5\n");
  features = -1;
  EXPECT_THAT(ReadCsv(dir / "z.csv", &features).status().message(),
              HasSubstr("the label must be an integer >= 0, got '1.5'"));
}

TEST(TrainerDataTest, TooFewSamplesForAValidationSplitIsDataLoss) {
  TempDir dir;
  testing::WriteCsvDataset(dir.path().string(), 3, 3);
  auto d = LoadData(
      {.dataset = "csv", .data_dir = dir.path().string(), .val_fraction = 0.1});
  EXPECT_EQ(d.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(d.status().message(), HasSubstr("too few for val_fraction"));
}

}  // namespace
}  // namespace sweep::trainer
