#include "worker/log_cap.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace sweep {
namespace {

// The line that says what was cut has this fixed width, so that a later cut
// rewrites it in place.
constexpr int64_t kLine = 160;

bool WriteAll(int fd, const char* data, size_t size, off_t at) {
  while (size > 0) {
    ssize_t n = pwrite(fd, data, size, at);
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
    at += n;
  }
  return true;
}

}  // namespace

bool LogCap::Poll() {
  if (max_ <= 2 * kLine) return false;
  // Nearly every poll finds the file within its bound: one lstat, nothing opened.
  struct stat at {};
  if (lstat(path_.c_str(), &at) != 0 || !S_ISREG(at.st_mode) || at.st_size <= max_) {
    return false;
  }
  // The trial may have replaced the file with anything since: never follow a link
  // or wait on a FIFO, and cut only a regular file of ours.
  int fd = open(path_.c_str(), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
      st.st_size <= max_) {
    close(fd);
    return false;
  }
  const bool first = head_end_ < 0;
  // Where the cut line goes: after the kept head (half the bound), or over the
  // cut line of the previous cut.
  const int64_t base = first ? max_ / 2 : head_end_ - kLine;
  const int64_t tail = max_ - base - kLine;
  std::string kept(static_cast<size_t>(tail), '\0');
  if (pread(fd, kept.data(), kept.size(), st.st_size - tail) != tail) {
    close(fd);
    return false;
  }
  cut_ += st.st_size - base - tail - (first ? 0 : kLine);
  std::string line = absl::StrCat("\n[sweep: ", cut_, " bytes of this log were cut here; a "
                                  "trial's log keeps its first and last bytes, ", max_,
                                  " in all (worker flag --max-log-mib)]");
  line.resize(kLine - 1, ' ');
  line.push_back('\n');
  bool ok = ftruncate(fd, base) == 0 && WriteAll(fd, line.data(), line.size(), base) &&
            WriteAll(fd, kept.data(), kept.size(), base + kLine);
  close(fd);
  head_end_ = base + kLine;
  return ok && first;
}

}  // namespace sweep
