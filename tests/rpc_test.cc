// Tests of common/rpc.h without a server: the conversion between absl and gRPC
// statuses, and reading the client's security settings. The token check and TLS on
// a real connection are in security_test.
#include "common/rpc.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/testing.h"

namespace sweep::testing {
namespace {

// Every code but OK, as both libraries number them.
constexpr absl::StatusCode kErrorCodes[] = {
    absl::StatusCode::kCancelled,          absl::StatusCode::kUnknown,
    absl::StatusCode::kInvalidArgument,    absl::StatusCode::kDeadlineExceeded,
    absl::StatusCode::kNotFound,           absl::StatusCode::kAlreadyExists,
    absl::StatusCode::kPermissionDenied,   absl::StatusCode::kResourceExhausted,
    absl::StatusCode::kFailedPrecondition, absl::StatusCode::kAborted,
    absl::StatusCode::kOutOfRange,         absl::StatusCode::kUnimplemented,
    absl::StatusCode::kInternal,           absl::StatusCode::kUnavailable,
    absl::StatusCode::kDataLoss,           absl::StatusCode::kUnauthenticated,
};

TEST(RpcStatusTest, OkConvertsToOkBothWays) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

TEST(RpcStatusTest, EveryErrorCodeAndItsMessageSurviveTheRoundTrip) {
  for (absl::StatusCode code : kErrorCodes) {
    const absl::Status in(code, "what to do next");
    const grpc::Status wire = ToGrpcStatus(in);
    EXPECT_FALSE(wire.ok());
    EXPECT_EQ(static_cast<int>(wire.error_code()), static_cast<int>(code));
    EXPECT_EQ(wire.error_message(), "what to do next");
    EXPECT_EQ(FromGrpcStatus(wire), in) << absl::StatusCodeToString(code);
  }
}

TEST(RpcStatusTest, GrpcCodesMapOntoTheAbslCodesOfTheSameMeaning) {
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::UNAVAILABLE, "down")),
            absl::UnavailableError("down"));
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "token")),
            absl::UnauthenticatedError("token"));
  EXPECT_EQ(ToGrpcStatus(absl::FailedPreconditionError("fix it")).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ToGrpcStatus(absl::ResourceExhaustedError("big")).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
}

class RpcSecurityTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    WriteFile(dir_ / name, text);
    return dir_ / name;
  }
  TempDir dir_;
};

TEST_F(RpcSecurityTest, NoFilesMeanNoTokenAndPlaintext) {
  absl::StatusOr<RpcSecurity> sec = LoadRpcSecurity("", "");
  ASSERT_TRUE(sec.ok()) << sec.status();
  EXPECT_EQ(sec->token, "");
  EXPECT_EQ(sec->tls_ca, "");
}

TEST_F(RpcSecurityTest, TheTokenIsTrimmedAndTheCaEndsInANewline) {
  absl::StatusOr<RpcSecurity> sec =
      LoadRpcSecurity(Write("token", "abc\n"), Write("ca.pem", "-----BEGIN-----\nx\n\n"));
  ASSERT_TRUE(sec.ok()) << sec.status();
  EXPECT_EQ(sec->token, "abc");
  EXPECT_EQ(sec->tls_ca, "-----BEGIN-----\nx\n");
}

TEST_F(RpcSecurityTest, AnUnreadableOrEmptyFileIsRefusedNamingItsFlag) {
  absl::StatusOr<RpcSecurity> sec = LoadRpcSecurity(dir_ / "absent", "");
  EXPECT_EQ(sec.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StartsWith(sec.status().message(), "--token-file: ")) << sec.status();
  sec = LoadRpcSecurity("", Write("empty.pem", "\n"));
  EXPECT_EQ(sec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(sec.status().message(), "--tls-ca: ")) << sec.status();
}

}  // namespace
}  // namespace sweep::testing
