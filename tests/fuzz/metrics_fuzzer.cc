// libFuzzer target: the metric-line parser and the metrics file follower. The
// invariants are in metrics_check.h.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tests/fuzz/metrics_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string error = sweep::fuzz::CheckMetricsInput(
      std::string_view(reinterpret_cast<const char*>(data), size));
  if (!error.empty()) {
    std::fprintf(stderr, "metrics_fuzzer: invariant broken: %s\n", error.c_str());
    std::abort();
  }
  return 0;
}
