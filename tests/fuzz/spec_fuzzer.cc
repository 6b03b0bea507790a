// libFuzzer target: the sweep spec parser and everything that reads an accepted
// spec (grid, samplers, command building). The invariants are in spec_check.h.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tests/fuzz/spec_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string error = sweep::fuzz::CheckSpecInput(
      std::string_view(reinterpret_cast<const char*>(data), size));
  if (!error.empty()) {
    std::fprintf(stderr, "spec_fuzzer: invariant broken: %s\n", error.c_str());
    std::abort();
  }
  return 0;
}
