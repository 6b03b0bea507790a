#include "common/rpc.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace sweep {
namespace {

constexpr char kAuthKey[] = "authorization";
constexpr char kBearer[] = "Bearer ";

}  // namespace

absl::StatusOr<RpcSecurity> LoadRpcSecurity(const std::string& token_file,
                                            const std::string& tls_ca_file) {
  RpcSecurity sec;
  if (!token_file.empty()) {
    absl::StatusOr<std::string> t = ReadSecretFile(token_file, "--token-file");
    if (!t.ok()) return t.status();
    sec.token = *t;
  }
  if (!tls_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadSecretFile(tls_ca_file, "--tls-ca");
    if (!ca.ok()) return ca.status();
    sec.tls_ca = *ca + "\n";
  }
  return sec;
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address, const RpcSecurity& sec,
                                           const grpc::ChannelArguments& args) {
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (sec.tls_ca.empty()) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = sec.tls_ca;
    creds = grpc::SslCredentials(o);
  }
  grpc::ChannelArguments with_limits = args;
  // Listings of large sweeps exceed gRPC's default 4 MB reply limit.
  with_limits.SetMaxReceiveMessageSize(-1);
  return grpc::CreateCustomChannel(address, creds, with_limits);
}

void Authorize(grpc::ClientContext* ctx, const RpcSecurity& sec) {
  if (!sec.token.empty()) ctx->AddMetadata(kAuthKey, absl::StrCat(kBearer, sec.token));
}

grpc::Status CheckToken(const grpc::ServerContext* ctx, const std::string& expected) {
  if (expected.empty()) return grpc::Status::OK;
  const auto& md = ctx->client_metadata();
  auto it = md.find(kAuthKey);
  std::string_view presented;
  if (it != md.end()) presented = std::string_view(it->second.data(), it->second.size());
  std::string want = absl::StrCat(kBearer, expected);
  if (it != md.end() && ConstantTimeEquals(presented, want)) return grpc::Status::OK;
  spdlog::warn("refused a call from {}: {}", ctx->peer(),
               it == md.end() ? "no token" : "wrong token");
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      it == md.end() ? "this scheduler requires a token: pass --token-file "
                                       "(or set SWEEP_TOKEN_FILE)"
                                     : "wrong token");
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

}  // namespace sweep
