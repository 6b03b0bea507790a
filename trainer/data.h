// Datasets for sweep-train: MNIST-format IDX files (gzipped or not) and CSV,
// read into plain float arrays, split into train / validation / test and
// normalized.
//
// IDX (dataset fashion-mnist, mnist or idx): `data_dir` holds
// train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
// t10k-labels-idx1-ubyte, each optionally with `.gz`. CSV (dataset csv):
// `data_dir` holds train.csv and test.csv, one sample per row, the integer
// class label (0..K-1) in the first column and numeric features after it; a
// first row that is not numeric is a header and skipped.
//
// The validation split is the last `val_fraction` of a fixed permutation of the
// training file (the same for every seed, so trials of a sweep are compared on
// the same samples). Normalization statistics come from the training split
// only: images are scaled to [0, 1] and standardized by the pixel mean and
// standard deviation; CSV features are standardized per column.
//
// No LibTorch here: the adapter copies the arrays to the training device once.
// Thread-safe: pure functions of the files they read.
#ifndef SWEEP_TRAINER_DATA_H_
#define SWEEP_TRAINER_DATA_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sweep::trainer {

// Samples as a dense row-major array.
struct Split {
  std::vector<float> x;    // size() * features() values
  std::vector<int64_t> y;  // labels in [0, num_classes)
  int64_t size() const { return static_cast<int64_t>(y.size()); }
};

struct Data {
  Split train, val, test;
  std::vector<int64_t>
      sample_shape;  // {1, rows, cols} for images, {features} for CSV
  int64_t num_classes = 0;
  bool images = false;
  double background = 0;  // images: the normalized value of a black (0) pixel
  int64_t features() const;  // product of sample_shape
};

struct DataOptions {
  std::string dataset;  // fashion-mnist | mnist | idx | csv
  std::string data_dir;
  double val_fraction = 0.1;
  int64_t train_limit = 0;  // 0: all
};

// One IDX file's contents: dims (e.g. {60000, 28, 28}) and unsigned bytes.
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> bytes;
};

// Reads an IDX file of unsigned bytes (type 0x08), gzipped or not. Returns
// NotFound when it does not exist, DataLoss when it is corrupt (bad gzip
// stream, bad magic, unsupported type, size not matching its header), each
// naming the file.
absl::StatusOr<IdxArray> ReadIdx(const std::string& path);

// Reads a CSV file of "label,feature,feature,..." rows. Returns NotFound, or
// DataLoss naming the file, line and column of the first malformed row (not a
// number, wrong column count, label not a non-negative integer).
absl::StatusOr<Split> ReadCsv(const std::string& path, int64_t* features);

// Loads, validates, splits and normalizes a dataset. Returns the errors of the
// readers above, plus DataLoss for images and labels of different counts,
// labels out of range, or a split too small to hold one validation sample.
absl::StatusOr<Data> LoadData(const DataOptions& options);

// What LoadData would produce, without the samples: split sizes, sample shape
// and class count, for the memory estimate.
struct DataShape {
  int64_t train = 0, val = 0,
          test = 0;                   // samples per split, as LoadData splits
  std::vector<int64_t> sample_shape;  // as Data::sample_shape
  int64_t num_classes = 0;
  bool images = false;
  // How the shape was found: "files" (headers and labels read), or "known"
  // (fashion-mnist or mnist whose files are not there: the published shape).
  std::string source;
  int64_t features() const;  // product of sample_shape
};

// Reads only what the shape needs: IDX image headers and the label files (one
// byte per sample), or one pass over the CSV files that parses the label
// column and counts the columns of the first row. For fashion-mnist and mnist
// whose files are missing, returns their published shape (60000 + 10000
// samples of 28x28, 10 classes) with source "known". Returns NotFound for a
// missing idx or csv file and DataLoss for the corruption LoadData would
// report (bad headers, images and labels of different counts, a single class,
// too few samples for val_fraction).
absl::StatusOr<DataShape> ReadDataShape(const DataOptions& options);

}  // namespace sweep::trainer

#endif  // SWEEP_TRAINER_DATA_H_
