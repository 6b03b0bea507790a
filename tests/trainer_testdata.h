// Small learnable datasets that the sweep-train tests write at run time:
// MNIST-format IDX files (plain or gzipped) and CSV files. Nothing is
// downloaded.
//
// Images: 28x28, class c in [0, classes) has a bright 8x8 square at a position
// that depends on c (classes <= 9), over noise; a linear model learns it in one
// epoch. CSV: two features; the label is 1 when x0 + x1 > 0, else 0.
#ifndef SWEEP_TESTS_TRAINER_TESTDATA_H_
#define SWEEP_TESTS_TRAINER_TESTDATA_H_

#include <zlib.h>

#include <cstdint>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace sweep::testing {

inline std::string IdxBytes(const std::vector<uint32_t>& dims,
                            const std::vector<uint8_t>& data) {
  std::string out = {0, 0, 0x08, static_cast<char>(dims.size())};
  for (uint32_t d : dims) {
    out += static_cast<char>(d >> 24);
    out += static_cast<char>(d >> 16);
    out += static_cast<char>(d >> 8);
    out += static_cast<char>(d);
  }
  out.append(data.begin(), data.end());
  return out;
}

inline void WriteBytes(const std::string& path, const std::string& bytes,
                       bool gzip) {
  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
  } else {
    std::ofstream(path, std::ios::binary) << bytes;
  }
}

// Writes `n` images and labels as `prefix`-images-idx3-ubyte /
// -labels-idx1-ubyte (with .gz when `gzip`) into `dir`.
inline void WriteIdxSet(const std::string& dir, const std::string& prefix,
                        int n, int classes, uint64_t seed, bool gzip) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> images(static_cast<size_t>(n) * 28 * 28), labels(n);
  for (int i = 0; i < n; ++i) {
    int c = static_cast<int>(rng() % classes);
    labels[i] = static_cast<uint8_t>(c);
    uint8_t* img = images.data() + static_cast<size_t>(i) * 784;
    for (int p = 0; p < 784; ++p) img[p] = static_cast<uint8_t>(rng() % 90);
    int top = 2 + (c / 3) * 8, left = 2 + (c % 3) * 8;
    for (int r = top; r < top + 8; ++r) {
      for (int col = left; col < left + 8; ++col) img[r * 28 + col] = 230;
    }
  }
  std::string ext = gzip ? ".gz" : "";
  WriteBytes(absl::StrCat(dir, "/", prefix, "-images-idx3-ubyte", ext),
             IdxBytes({static_cast<uint32_t>(n), 28, 28}, images), gzip);
  WriteBytes(absl::StrCat(dir, "/", prefix, "-labels-idx1-ubyte", ext),
             IdxBytes({static_cast<uint32_t>(n)}, labels), gzip);
}

// A full IDX dataset (train and t10k) in `dir`.
inline void WriteIdxDataset(const std::string& dir, int train, int test,
                            int classes = 4, bool gzip = true) {
  WriteIdxSet(dir, "train", train, classes, 1, gzip);
  WriteIdxSet(dir, "t10k", test, classes, 2, gzip);
}

inline void WriteCsvSet(const std::string& path, int n, uint64_t seed,
                        bool header) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::ofstream out(path);
  if (header) out << "label,x0,x1\n";
  for (int i = 0; i < n; ++i) {
    double x0 = normal(rng), x1 = normal(rng);
    out << (x0 + x1 > 0 ? 1 : 0) << "," << x0 << "," << x1 << "\n";
  }
}

// train.csv and test.csv in `dir`.
inline void WriteCsvDataset(const std::string& dir, int train, int test) {
  WriteCsvSet(dir + "/train.csv", train, 3, true);
  WriteCsvSet(dir + "/test.csv", test, 4, false);
}

}  // namespace sweep::testing

#endif  // SWEEP_TESTS_TRAINER_TESTDATA_H_
