// Secrets shared by the scheduler's gRPC services, its dashboard and their clients:
// reading a token or PEM file, and comparing a token presented by a caller with the
// expected one. Thread-safe (pure, or reads a file).
#ifndef SWEEP_COMMON_SECRET_H_
#define SWEEP_COMMON_SECRET_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace sweep {

// Reads a secret (token) or PEM file: its contents with surrounding whitespace
// trimmed. NotFound when it cannot be read, InvalidArgument when it is empty (or
// only whitespace). `what` names the flag in messages ("--token-file").
absl::StatusOr<std::string> ReadSecretFile(const std::string& path, std::string_view what);

// Returns whether `a` and `b` are equal, in time that depends only on their lengths
// (not on where they first differ), so that a caller cannot guess a token byte by
// byte from how long a refusal takes.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace sweep

#endif  // SWEEP_COMMON_SECRET_H_
