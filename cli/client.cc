#include "cli/client.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "common/address.h"
#include "common/rpc.h"

namespace sweep {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(30);

}  // namespace

std::unique_ptr<grpc::ClientContext> SweepClient::Context() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + kTimeout));
  Authorize(ctx.get(), security_);
  return ctx;
}

std::string DefaultSchedulerAddress() {
  const char* env = std::getenv("SWEEP_SCHEDULER");
  return env && *env ? env : kDefaultSchedulerAddress;
}

SweepClient::SweepClient(std::string address, RpcSecurity security)
    : address_(std::move(address)), security_(std::move(security)) {
  stub_ = v1::SweepService::NewStub(MakeChannel(address_, security_));
}

absl::StatusOr<SweepClient> SweepClient::Connect(const ClientOptions& o) {
  absl::StatusOr<RpcSecurity> sec = LoadRpcSecurity(o.token_file, o.tls_ca);
  if (!sec.ok()) return sec.status();
  return SweepClient(o.address, *std::move(sec));
}

absl::Status SweepClient::Convert(const grpc::Status& st) const {
  if (st.error_code() == grpc::StatusCode::UNAVAILABLE ||
      st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::UnavailableError(absl::StrCat(
        "cannot reach the scheduler at ", address_, " (", st.error_message(),
        "); start one with `sweep scheduler`, or point --scheduler / $SWEEP_SCHEDULER "
        "at it"));
  }
  return FromGrpcStatus(st);
}

#define SWEEP_CLIENT_CALL(Rpc, Resp, ...)                  \
  {                                                        \
    Resp resp;                                             \
    auto ctx = Context();                                  \
    grpc::Status st = stub_->Rpc(ctx.get(), __VA_ARGS__, &resp); \
    if (!st.ok()) return Convert(st);                      \
    return resp;                                           \
  }

absl::StatusOr<v1::SubmitSweepResponse> SweepClient::Submit(
    const v1::SubmitSweepRequest& req) {
  SWEEP_CLIENT_CALL(SubmitSweep, v1::SubmitSweepResponse, req)
}

absl::StatusOr<v1::GetStatusResponse> SweepClient::Status(const std::string& sweep_id) {
  v1::GetStatusRequest req;
  req.set_sweep_id(sweep_id);
  SWEEP_CLIENT_CALL(GetStatus, v1::GetStatusResponse, req)
}

absl::StatusOr<v1::ListTrialsResponse> SweepClient::Trials(const std::string& sweep_id,
                                                         const std::string& metric) {
  v1::ListTrialsRequest req;
  req.set_sweep_id(sweep_id);
  req.set_metric(metric);
  SWEEP_CLIENT_CALL(ListTrials, v1::ListTrialsResponse, req)
}

absl::StatusOr<v1::CancelSweepResponse> SweepClient::Cancel(const std::string& sweep_id) {
  v1::CancelSweepRequest req;
  req.set_sweep_id(sweep_id);
  SWEEP_CLIENT_CALL(CancelSweep, v1::CancelSweepResponse, req)
}

absl::StatusOr<v1::GetTrialResponse> SweepClient::Trial(const std::string& trial_id) {
  v1::GetTrialRequest req;
  req.set_trial_id(trial_id);
  SWEEP_CLIENT_CALL(GetTrial, v1::GetTrialResponse, req)
}

#undef SWEEP_CLIENT_CALL

}  // namespace sweep
