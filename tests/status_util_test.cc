// Tests of common/status_util.h: the CLI's exit code for each status.
#include "common/status_util.h"

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace sweep {
namespace {

TEST(StatusUtilTest, OkIsZero) { EXPECT_EQ(ExitCodeFor(absl::OkStatus()), kExitOk); }

TEST(StatusUtilTest, WhatTheUserFixesInTheirInputIsTwo) {
  for (absl::StatusCode code :
       {absl::StatusCode::kInvalidArgument, absl::StatusCode::kNotFound,
        absl::StatusCode::kOutOfRange, absl::StatusCode::kAlreadyExists,
        absl::StatusCode::kFailedPrecondition, absl::StatusCode::kUnauthenticated,
        absl::StatusCode::kPermissionDenied}) {
    EXPECT_EQ(ExitCodeFor(absl::Status(code, "x")), kExitBadInput)
        << absl::StatusCodeToString(code);
  }
}

TEST(StatusUtilTest, EverythingElseIsOne) {
  for (absl::StatusCode code :
       {absl::StatusCode::kUnavailable, absl::StatusCode::kInternal,
        absl::StatusCode::kDeadlineExceeded, absl::StatusCode::kResourceExhausted,
        absl::StatusCode::kAborted, absl::StatusCode::kDataLoss, absl::StatusCode::kUnknown,
        absl::StatusCode::kCancelled, absl::StatusCode::kUnimplemented}) {
    EXPECT_EQ(ExitCodeFor(absl::Status(code, "x")), kExitFailure)
        << absl::StatusCodeToString(code);
  }
}

}  // namespace
}  // namespace sweep
