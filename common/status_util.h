// Status helpers shared by every part: exit codes for the CLI and small macros.
//
// Exit codes are part of the CLI contract: 0 success, 2 bad input, 1 anything else.
#ifndef SWEEP_COMMON_STATUS_UTIL_H_
#define SWEEP_COMMON_STATUS_UTIL_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sweep {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitBadInput = 2;

// Returns the CLI exit code for `status`: 0 for OK, 2 for errors the user fixes
// by changing their input or flags (InvalidArgument, NotFound, OutOfRange,
// AlreadyExists, FailedPrecondition, Unauthenticated, PermissionDenied), 1
// otherwise (Unavailable, Internal, ...).
int ExitCodeFor(const absl::Status& status);

}  // namespace sweep

#define SWEEP_CONCAT_INNER_(a, b) a##b
#define SWEEP_CONCAT_(a, b) SWEEP_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define SWEEP_RETURN_IF_ERROR(expr)               \
  do {                                            \
    if (absl::Status _st = (expr); !_st.ok()) {   \
      return _st;                                 \
    }                                             \
  } while (0)

#define SWEEP_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                 \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(*tmp)

// `lhs = value of rexpr` (an absl::StatusOr), or returns its error.
#define SWEEP_ASSIGN_OR_RETURN(lhs, rexpr) \
  SWEEP_ASSIGN_OR_RETURN_IMPL_(SWEEP_CONCAT_(_statusor_, __LINE__), lhs, rexpr)

#endif  // SWEEP_COMMON_STATUS_UTIL_H_
