// Connecting to the scheduler's gRPC services, and checking who connects.
//
// Clients (workers, the CLI) dial with a channel that is TLS when a CA is given and
// plaintext otherwise, and send the shared token, when there is one, as
// `authorization: Bearer TOKEN` metadata on every call. The scheduler accepts a call
// only when its token matches (constant-time comparison). See docs/security.md.
//
// Thread safety: all functions are thread-safe; RpcSecurity is a plain value.
#ifndef SWEEP_COMMON_RPC_H_
#define SWEEP_COMMON_RPC_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/secret.h"
#include "grpcpp/grpcpp.h"

namespace sweep {

struct RpcSecurity {
  std::string token;   // the shared token; empty: send none
  std::string tls_ca;  // PEM of the CA that signed the scheduler's certificate;
                       // empty: plaintext
};

// Builds RpcSecurity from the paths of a token file and a CA file (either may be
// empty). Errors as ReadSecretFile (common/secret.h).
absl::StatusOr<RpcSecurity> LoadRpcSecurity(const std::string& token_file,
                                            const std::string& tls_ca_file);

// A channel to `address` with TLS when `sec.tls_ca` is set.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address, const RpcSecurity& sec,
                                           const grpc::ChannelArguments& args = {});

// Adds the token (if any) to an outgoing call.
void Authorize(grpc::ClientContext* ctx, const RpcSecurity& sec);

// Returns OK when `expected` is empty (no token required) or the call carries it;
// UNAUTHENTICATED otherwise.
grpc::Status CheckToken(const grpc::ServerContext* ctx, const std::string& expected);

// The one conversion between absl and gRPC statuses: codes map one to one (they
// share their numbering) and the message is kept. ToGrpcStatus returns
// grpc::Status::OK for an OK status; FromGrpcStatus returns absl::OkStatus() for
// an OK one. The services answer with ToGrpcStatus; clients (the CLI, the worker)
// read answers with FromGrpcStatus.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace sweep

#endif  // SWEEP_COMMON_RPC_H_
