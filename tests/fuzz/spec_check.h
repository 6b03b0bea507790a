// The invariants the spec fuzzer checks on one input, shared by the libFuzzer
// target (tests/fuzz/spec_fuzzer.cc, built with clang and sanitizers) and the
// corpus replay test (tests/fuzz/corpus_test.cc, built with the normal build).
//
// For any bytes:
// - ParseSpec returns, never throws, and a rejection is InvalidArgument whose
//   message is one line that starts "FILE:LINE:COL: " (both 1-based);
// - on an accepted spec, warnings carry a position too, and GridSize,
//   TrialBudget, GridPoint, SamplePoint, Suggest (random, sobol, bayes with a
//   made-up history) and BuildCommand run without throwing;
// - every parameter set is a JSON object that serializes strictly (valid UTF-8:
//   the scheduler stores it with json::dump());
// - BuildCommand gives each parameter exactly one argument: the expanded argv
//   has exactly as many items as the command's macros call for, and every
//   ${args} item starts "--KEY=" for the parameter's key, so no value can add,
//   split or drop an argument.
//
// Thread safety: pure function.
#ifndef SWEEP_TESTS_FUZZ_SPEC_CHECK_H_
#define SWEEP_TESTS_FUZZ_SPEC_CHECK_H_

#include <string>
#include <string_view>

namespace sweep::fuzz {

inline constexpr char kSpecFileName[] = "fuzz.yaml";

// Returns "" when `data` keeps every invariant above, else what broke.
std::string CheckSpecInput(std::string_view data);

}  // namespace sweep::fuzz

#endif  // SWEEP_TESTS_FUZZ_SPEC_CHECK_H_
