#include "trainer/metrics.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace sweep::trainer {

absl::StatusOr<MetricsWriter> MetricsWriter::Open(const std::string& path) {
  if (path.empty()) return MetricsWriter(stdout, false);
  FILE* f = std::fopen(path.c_str(), "a");
  if (f == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot open metrics file ", path, ": ", std::strerror(errno)));
  }
  return MetricsWriter(f, true);
}

MetricsWriter::MetricsWriter(MetricsWriter&& other) noexcept
    : file_(other.file_), owned_(other.owned_) {
  other.file_ = nullptr;
  other.owned_ = false;
}

MetricsWriter::~MetricsWriter() {
  if (owned_ && file_ != nullptr) std::fclose(file_);
}

absl::Status MetricsWriter::Write(const nlohmann::json& line) {
  std::string text = line.dump() + "\n";  // nlohmann writes NaN and Inf as null
  if (std::fwrite(text.data(), 1, text.size(), file_) != text.size() ||
      std::fflush(file_) != 0) {
    return absl::InternalError(
        absl::StrCat("writing metrics: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace sweep::trainer
