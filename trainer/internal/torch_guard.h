// The LibTorch adapter boundary: the one place in sweep-train that catches what
// LibTorch throws (c10::Error and the std::exception family) and turns it into
// an absl::Status. Every call into LibTorch that can fail for a reason the user
// should see (reading a checkpoint, loading weights, the training run as a
// whole) goes through TorchCall; nothing else in trainer/ has a try or a
// catch.
//
// Thread-safe: stateless.
#ifndef SWEEP_TRAINER_INTERNAL_TORCH_GUARD_H_
#define SWEEP_TRAINER_INTERNAL_TORCH_GUARD_H_

#include <c10/util/Exception.h>

#include <exception>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace sweep::trainer::internal {

// The first line of a LibTorch message (the rest is a C++ stack trace).
inline std::string FirstLine(const std::string& what) {
  std::string s = what.substr(0, what.find('\n'));
  return s.size() > 600 ? s.substr(0, 600) + "..." : s;
}

// Runs `f` (returning void or absl::Status). Returns its status, or, if it
// threw, `code` with "`what`: <LibTorch's message>"; an exception that says the
// device ran out of memory becomes ResourceExhausted whatever `code` is.
template <typename F>
absl::Status TorchCall(const std::string& what, absl::StatusCode code, F&& f) {
  std::string message;
  try {
    if constexpr (std::is_same_v<std::invoke_result_t<F>, void>) {
      std::forward<F>(f)();
      return absl::OkStatus();
    } else {
      return std::forward<F>(f)();
    }
  } catch (const c10::Error& e) {
    message = FirstLine(e.what_without_backtrace());
  } catch (const std::exception& e) {
    message = FirstLine(e.what());
  }
  if (absl::StrContains(message, "out of memory") ||
      absl::StrContains(message,
                        "DefaultCPUAllocator: can't allocate memory") ||
      absl::StrContains(message, "std::bad_alloc")) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, ": out of memory: ", message));
  }
  return absl::Status(code, absl::StrCat(what, ": ", message));
}

}  // namespace sweep::trainer::internal

#endif  // SWEEP_TRAINER_INTERNAL_TORCH_GUARD_H_
