#include "trainer/data.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_util.h"

namespace sweep::trainer {
namespace {

namespace fs = std::filesystem;

// The split permutation's seed: fixed, so every trial validates on the same
// samples.
constexpr uint64_t kSplitSeed = 20240601;

// Reads a whole file, inflating it when it is gzipped (zlib reads plain files
// as is).
absl::StatusOr<std::vector<uint8_t>> ReadMaybeGzip(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  }
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr)
    return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::vector<uint8_t> out;
  std::vector<uint8_t> buf(1 << 20);
  while (true) {
    int n = gzread(f, buf.data(), static_cast<unsigned>(buf.size()));
    if (n < 0) {
      int errnum = 0;
      std::string msg = gzerror(f, &errnum);
      gzclose(f);
      return absl::DataLossError(
          absl::StrCat(path, ": corrupt gzip data (", msg, ")"));
    }
    if (n == 0) break;
    out.insert(out.end(), buf.begin(), buf.begin() + n);
  }
  // gzread may end a truncated stream quietly; gzclose then reports
  // Z_BUF_ERROR.
  int rc = gzclose(f);
  if (rc == Z_BUF_ERROR)
    return absl::DataLossError(absl::StrCat(path, ": truncated gzip data"));
  if (rc != Z_OK) {
    return absl::DataLossError(
        absl::StrCat(path, ": corrupt gzip data (zlib code ", rc, ")"));
  }
  return out;
}

// Fisher-Yates with the raw output of mt19937_64, so the permutation is the
// same with every standard library.
std::vector<int64_t> Permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(n);
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  std::mt19937_64 rng(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    int64_t j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
    std::swap(p[i], p[j]);
  }
  return p;
}

Split Take(const Split& from, const std::vector<int64_t>& idx, int64_t begin,
           int64_t end, int64_t features) {
  Split out;
  out.x.resize((end - begin) * features);
  out.y.resize(end - begin);
  for (int64_t k = begin; k < end; ++k) {
    int64_t i = idx[k];
    std::copy_n(from.x.begin() + i * features, features,
                out.x.begin() + (k - begin) * features);
    out.y[k - begin] = from.y[i];
  }
  return out;
}

absl::StatusOr<std::string> FindIdx(const std::string& dir,
                                    const std::string& name) {
  for (const std::string& candidate : {name, name + ".gz"}) {
    std::string path = (fs::path(dir) / candidate).string();
    std::error_code ec;
    if (fs::is_regular_file(path, ec)) return path;
  }
  return absl::NotFoundError(
      absl::StrCat("data file ", name, "[.gz] not found in ", dir,
                   " (for Fashion-MNIST: apt-get install "
                   "dataset-fashion-mnist, or set data_dir)"));
}

absl::StatusOr<Split> LoadIdxPair(const std::string& dir,
                                  const std::string& prefix,
                                  std::vector<int64_t>* shape) {
  SWEEP_ASSIGN_OR_RETURN(std::string images_path,
                         FindIdx(dir, prefix + "-images-idx3-ubyte"));
  SWEEP_ASSIGN_OR_RETURN(std::string labels_path,
                         FindIdx(dir, prefix + "-labels-idx1-ubyte"));
  SWEEP_ASSIGN_OR_RETURN(IdxArray images, ReadIdx(images_path));
  SWEEP_ASSIGN_OR_RETURN(IdxArray labels, ReadIdx(labels_path));
  if (images.dims.size() != 3) {
    return absl::DataLossError(
        absl::StrCat(images_path,
                     ": expected 3 dimensions (count, rows, "
                     "columns), got ",
                     images.dims.size()));
  }
  if (labels.dims.size() != 1) {
    return absl::DataLossError(absl::StrCat(
        labels_path, ": expected 1 dimension, got ", labels.dims.size()));
  }
  if (images.dims[0] != labels.dims[0]) {
    return absl::DataLossError(
        absl::StrCat(images_path, " holds ", images.dims[0], " images but ",
                     labels_path, " holds ", labels.dims[0], " labels"));
  }
  std::vector<int64_t> s = {1, images.dims[1], images.dims[2]};
  if (!shape->empty() && *shape != s) {
    return absl::DataLossError(absl::StrCat(images_path, ": images are ", s[1],
                                            "x", s[2],
                                            ", unlike the training images"));
  }
  *shape = s;
  Split out;
  out.x.resize(images.bytes.size());
  for (size_t i = 0; i < images.bytes.size(); ++i)
    out.x[i] = images.bytes[i] / 255.0f;
  out.y.assign(labels.bytes.begin(), labels.bytes.end());
  return out;
}

// The split sizes LoadData makes of `n` training-file samples: the last
// val_fraction held out, the rest (at most train_limit) trained on.
struct SplitSizes {
  int64_t train = 0, val = 0;
};

absl::StatusOr<SplitSizes> SizesOf(int64_t n, const DataOptions& o) {
  int64_t n_val = static_cast<int64_t>(std::llround(n * o.val_fraction));
  if (n_val < 1 || n - n_val < 1) {
    return absl::DataLossError(absl::StrCat(
        "data in ", o.data_dir, ": ", n,
        " training samples are too few for val_fraction ", o.val_fraction));
  }
  SplitSizes s{.train = n - n_val, .val = n_val};
  if (o.train_limit > 0) s.train = std::min(s.train, o.train_limit);
  return s;
}

absl::StatusOr<int64_t> ClassesOf(int64_t max_label, const DataOptions& o) {
  if (max_label + 1 < 2) {
    return absl::DataLossError(
        absl::StrCat("data in ", o.data_dir,
                     ": labels hold a single class; need at least 2"));
  }
  return max_label + 1;
}

// Reads the header of an IDX file (gzipped or not): its dimensions.
absl::StatusOr<std::vector<int64_t>> ReadIdxDims(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr)
    return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  uint8_t head[4 + 4 * 4];
  int n = gzread(f, head, 4);
  int ndims = n == 4 ? head[3] : 0;
  bool ok = n == 4 && head[0] == 0 && head[1] == 0 && head[2] == 0x08 &&
            ndims >= 1 && ndims <= 4 &&
            gzread(f, head + 4, 4 * ndims) == 4 * ndims;
  gzclose(f);
  if (!ok) {
    return absl::DataLossError(
        absl::StrCat(path, ": not an IDX file of unsigned bytes (bad header)"));
  }
  std::vector<int64_t> dims;
  for (int d = 0; d < ndims; ++d) {
    const uint8_t* b = head + 4 + 4 * d;
    dims.push_back((int64_t{b[0]} << 24) | (int64_t{b[1]} << 16) |
                   (int64_t{b[2]} << 8) | b[3]);
  }
  return dims;
}

// One IDX pair's sample count and image shape, and the largest label.
absl::Status IdxPairShape(const std::string& dir, const std::string& prefix,
                          int64_t* count, std::vector<int64_t>* shape,
                          int64_t* max_label) {
  SWEEP_ASSIGN_OR_RETURN(std::string images_path,
                         FindIdx(dir, prefix + "-images-idx3-ubyte"));
  SWEEP_ASSIGN_OR_RETURN(std::string labels_path,
                         FindIdx(dir, prefix + "-labels-idx1-ubyte"));
  SWEEP_ASSIGN_OR_RETURN(std::vector<int64_t> dims, ReadIdxDims(images_path));
  SWEEP_ASSIGN_OR_RETURN(IdxArray labels, ReadIdx(labels_path));
  if (dims.size() != 3) {
    return absl::DataLossError(
        absl::StrCat(images_path,
                     ": expected 3 dimensions (count, rows, "
                     "columns), got ",
                     dims.size()));
  }
  if (labels.dims.size() != 1) {
    return absl::DataLossError(absl::StrCat(
        labels_path, ": expected 1 dimension, got ", labels.dims.size()));
  }
  if (dims[0] != labels.dims[0]) {
    return absl::DataLossError(
        absl::StrCat(images_path, " holds ", dims[0], " images but ",
                     labels_path, " holds ", labels.dims[0], " labels"));
  }
  std::vector<int64_t> s = {1, dims[1], dims[2]};
  if (!shape->empty() && *shape != s) {
    return absl::DataLossError(absl::StrCat(images_path, ": images are ", s[1],
                                            "x", s[2],
                                            ", unlike the training images"));
  }
  *shape = s;
  *count = dims[0];
  for (uint8_t l : labels.bytes) *max_label = std::max<int64_t>(*max_label, l);
  return absl::OkStatus();
}

// One CSV file's row count, feature count and largest label, checked as
// ReadCsv checks the label column and the column count (feature cells are not
// parsed).
absl::Status CsvShape(const std::string& path, int64_t* rows, int64_t* features,
                      int64_t* max_label) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  }
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::string line;
  int64_t line_no = 0, columns = -1;
  *rows = 0;
  while (std::getline(in, line)) {
    ++line_no;
    absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty()) continue;
    int64_t cells = 1 + std::count(text.begin(), text.end(), ',');
    absl::string_view first = text.substr(0, text.find(','));
    double label;
    bool numeric = absl::SimpleAtod(absl::StripAsciiWhitespace(first), &label);
    if (!numeric && columns < 0 && *rows == 0) {  // a header row
      columns = cells;
      continue;
    }
    if (columns < 0) columns = cells;
    if (cells != columns || columns < 2) {
      return absl::DataLossError(
          absl::StrCat(path, ":", line_no, ": expected ", columns,
                       " columns (label, then features), got ", cells));
    }
    if (!numeric || label < 0 || label != std::floor(label) || label > 1e6) {
      return absl::DataLossError(absl::StrCat(
          path, ":", line_no,
          ": column 1: the label must be an integer >= 0, got '", first, "'"));
    }
    *max_label = std::max(*max_label, static_cast<int64_t>(label));
    ++*rows;
  }
  if (*rows == 0)
    return absl::DataLossError(absl::StrCat(path, ": no data rows"));
  if (*features >= 0 && *features != columns - 1) {
    return absl::DataLossError(
        absl::StrCat(path, ": rows have ", columns - 1,
                     " features, unlike the training file's ", *features));
  }
  *features = columns - 1;
  return absl::OkStatus();
}

}  // namespace

int64_t DataShape::features() const {
  int64_t n = 1;
  for (int64_t d : sample_shape) n *= d;
  return n;
}

absl::StatusOr<DataShape> ReadDataShape(const DataOptions& o) {
  DataShape shape;
  int64_t n = 0, max_label = 0;
  shape.source = "files";
  if (o.dataset == "csv") {
    int64_t features = -1;
    SWEEP_RETURN_IF_ERROR(
        CsvShape((fs::path(o.data_dir) / "train.csv").string(), &n, &features,
                 &max_label));
    SWEEP_RETURN_IF_ERROR(CsvShape((fs::path(o.data_dir) / "test.csv").string(),
                                   &shape.test, &features, &max_label));
    shape.sample_shape = {features};
  } else {
    shape.images = true;
    absl::Status st =
        IdxPairShape(o.data_dir, "train", &n, &shape.sample_shape, &max_label);
    if (st.ok()) {
      st = IdxPairShape(o.data_dir, "t10k", &shape.test, &shape.sample_shape,
                        &max_label);
    }
    if (absl::IsNotFound(st) &&
        (o.dataset == "fashion-mnist" || o.dataset == "mnist")) {
      n = 60000;  // the published shape of both
      shape.test = 10000;
      shape.sample_shape = {1, 28, 28};
      max_label = 9;
      shape.source = "known";
    } else if (!st.ok()) {
      return st;
    }
  }
  SWEEP_ASSIGN_OR_RETURN(shape.num_classes, ClassesOf(max_label, o));
  SWEEP_ASSIGN_OR_RETURN(SplitSizes sizes, SizesOf(n, o));
  shape.train = sizes.train;
  shape.val = sizes.val;
  return shape;
}

int64_t Data::features() const {
  int64_t n = 1;
  for (int64_t d : sample_shape) n *= d;
  return n;
}

absl::StatusOr<IdxArray> ReadIdx(const std::string& path) {
  SWEEP_ASSIGN_OR_RETURN(std::vector<uint8_t> raw, ReadMaybeGzip(path));
  if (raw.size() < 4 || raw[0] != 0 || raw[1] != 0) {
    return absl::DataLossError(
        absl::StrCat(path, ": not an IDX file (bad magic number)"));
  }
  if (raw[2] != 0x08) {
    return absl::DataLossError(
        absl::StrCat(path, ": IDX type 0x", absl::Hex(raw[2]),
                     " is not supported (only unsigned bytes, 0x08)"));
  }
  int ndims = raw[3];
  if (ndims < 1 || ndims > 4 ||
      raw.size() < 4 + 4 * static_cast<size_t>(ndims)) {
    return absl::DataLossError(
        absl::StrCat(path, ": bad IDX header (", ndims, " dimensions)"));
  }
  IdxArray out;
  uint64_t total = 1;
  for (int d = 0; d < ndims; ++d) {
    const uint8_t* b = raw.data() + 4 + 4 * d;
    uint32_t v = (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) |
                 (uint32_t{b[2]} << 8) | b[3];
    out.dims.push_back(v);
    total *= v;
    if (total > (uint64_t{1} << 34)) {
      return absl::DataLossError(
          absl::StrCat(path, ": IDX header claims an absurd size"));
    }
  }
  size_t header = 4 + 4 * static_cast<size_t>(ndims);
  if (raw.size() - header != total) {
    return absl::DataLossError(
        absl::StrCat(path, ": header says ", total, " bytes of data, file has ",
                     raw.size() - header,
                     raw.size() - header < total ? " (truncated)" : ""));
  }
  out.bytes.assign(raw.begin() + header, raw.end());
  return out;
}

absl::StatusOr<Split> ReadCsv(const std::string& path, int64_t* features) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  }
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  Split out;
  std::string line;
  int64_t line_no = 0;
  int64_t columns = -1;
  while (std::getline(in, line)) {
    ++line_no;
    absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty()) continue;
    std::vector<absl::string_view> cells = absl::StrSplit(text, ',');
    double label;
    bool first_numeric =
        absl::SimpleAtod(absl::StripAsciiWhitespace(cells[0]), &label);
    if (!first_numeric && columns < 0 && out.y.empty()) {  // a header row
      columns = static_cast<int64_t>(cells.size());
      continue;
    }
    if (columns < 0) columns = static_cast<int64_t>(cells.size());
    if (static_cast<int64_t>(cells.size()) != columns || columns < 2) {
      return absl::DataLossError(
          absl::StrCat(path, ":", line_no, ": expected ", columns,
                       " columns (label, then features), got ", cells.size()));
    }
    if (!first_numeric || label < 0 || label != std::floor(label) ||
        label > 1e6) {
      return absl::DataLossError(
          absl::StrCat(path, ":", line_no,
                       ": column 1: the label must be an integer >= 0, got '",
                       cells[0], "'"));
    }
    out.y.push_back(static_cast<int64_t>(label));
    for (size_t c = 1; c < cells.size(); ++c) {
      double v;
      if (!absl::SimpleAtod(absl::StripAsciiWhitespace(cells[c]), &v) ||
          !std::isfinite(v)) {
        return absl::DataLossError(absl::StrCat(path, ":", line_no, ": column ",
                                                c + 1, ": not a number: '",
                                                cells[c], "'"));
      }
      out.x.push_back(static_cast<float>(v));
    }
  }
  if (out.y.empty())
    return absl::DataLossError(absl::StrCat(path, ": no data rows"));
  if (*features >= 0 && *features != columns - 1) {
    return absl::DataLossError(
        absl::StrCat(path, ": rows have ", columns - 1,
                     " features, unlike the training file's ", *features));
  }
  *features = columns - 1;
  return out;
}

absl::StatusOr<Data> LoadData(const DataOptions& o) {
  Data data;
  Split full_train;
  if (o.dataset == "csv") {
    int64_t features = -1;
    SWEEP_ASSIGN_OR_RETURN(
        full_train,
        ReadCsv((fs::path(o.data_dir) / "train.csv").string(), &features));
    SWEEP_ASSIGN_OR_RETURN(
        data.test,
        ReadCsv((fs::path(o.data_dir) / "test.csv").string(), &features));
    data.sample_shape = {features};
  } else {
    SWEEP_ASSIGN_OR_RETURN(
        full_train, LoadIdxPair(o.data_dir, "train", &data.sample_shape));
    SWEEP_ASSIGN_OR_RETURN(data.test,
                           LoadIdxPair(o.data_dir, "t10k", &data.sample_shape));
    data.images = true;
  }
  int64_t max_label = 0;
  for (int64_t l : full_train.y) max_label = std::max(max_label, l);
  for (int64_t l : data.test.y) max_label = std::max(max_label, l);
  SWEEP_ASSIGN_OR_RETURN(data.num_classes, ClassesOf(max_label, o));

  int64_t n = full_train.size();
  SWEEP_ASSIGN_OR_RETURN(SplitSizes sizes, SizesOf(n, o));
  int64_t features = data.features();
  std::vector<int64_t> perm = Permutation(n, kSplitSeed);
  data.val = Take(full_train, perm, n - sizes.val, n, features);
  int64_t n_train = sizes.train;
  data.train = Take(full_train, perm, 0, n_train, features);

  // Normalize with statistics of the training split.
  std::vector<double> mean, stddev;
  if (data.images) {
    double sum = 0, sq = 0;
    for (float v : data.train.x) {
      sum += v;
      sq += double{v} * v;
    }
    double cnt = static_cast<double>(data.train.x.size());
    double m = sum / cnt;
    double s = std::sqrt(std::max(1e-12, sq / cnt - m * m));
    mean.assign(features, m);
    stddev.assign(features, s);
    data.background = -m / s;
  } else {
    mean.assign(features, 0);
    stddev.assign(features, 0);
    for (int64_t i = 0; i < n_train; ++i) {
      for (int64_t f = 0; f < features; ++f)
        mean[f] += data.train.x[i * features + f];
    }
    for (auto& m : mean) m /= n_train;
    for (int64_t i = 0; i < n_train; ++i) {
      for (int64_t f = 0; f < features; ++f) {
        double d = data.train.x[i * features + f] - mean[f];
        stddev[f] += d * d;
      }
    }
    for (auto& s : stddev) {
      s = std::sqrt(s / n_train);
      if (s < 1e-8) s = 1;
    }
  }
  for (Split* split : {&data.train, &data.val, &data.test}) {
    for (size_t i = 0; i < split->x.size(); ++i) {
      size_t f = i % features;
      split->x[i] = static_cast<float>((split->x[i] - mean[f]) / stddev[f]);
    }
  }
  return data;
}

}  // namespace sweep::trainer
