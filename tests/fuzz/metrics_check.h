// The invariants the metrics fuzzer checks on one input (a metrics file's
// bytes), shared by the libFuzzer target (tests/fuzz/metrics_fuzzer.cc) and the
// corpus replay test (tests/fuzz/corpus_test.cc).
//
// For any bytes:
// - MetricsReader::ParseLine returns, never throws, appends nothing when it
//   returns false, and every point it appends has a finite value and time and
//   a name that is valid UTF-8 (a protobuf string field) and not step or time;
// - MetricsReader::ReadNew, following the file while it is appended to in
//   pieces of any size (partial lines, CRLF, binary), yields exactly the points,
//   line count and bad-line count of one read of the whole file; and a line is
//   read only once its newline is there.
//
// Thread-compatible: uses one temporary file per process.
#ifndef SWEEP_TESTS_FUZZ_METRICS_CHECK_H_
#define SWEEP_TESTS_FUZZ_METRICS_CHECK_H_

#include <string>
#include <string_view>

namespace sweep::fuzz {

// Returns "" when `data` keeps every invariant above, else what broke.
std::string CheckMetricsInput(std::string_view data);

}  // namespace sweep::fuzz

#endif  // SWEEP_TESTS_FUZZ_METRICS_CHECK_H_
