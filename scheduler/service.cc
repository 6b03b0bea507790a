#include "scheduler/service.h"

#include <string>

#include "common/rpc.h"

namespace sweep {
namespace {

// Checks the token, runs `call` and stores its value in `*out`, or returns the error.
template <typename Resp, typename Call>
grpc::Status Forward(grpc::ServerContext* ctx, const std::string& token, Resp* out,
                     Call call) {
  if (grpc::Status auth = CheckToken(ctx, token); !auth.ok()) return auth;
  absl::StatusOr<Resp> r = call();
  if (!r.ok()) return ToGrpcStatus(r.status());
  *out = std::move(*r);
  return grpc::Status::OK;
}

}  // namespace

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

#define SWEEP_FORWARD(Service, Rpc, Req, Resp)                                    \
  grpc::Status Service::Rpc(grpc::ServerContext* ctx, const v1::Req* req,        \
                            v1::Resp* resp) {                                     \
    return Forward(ctx, token_, resp, [&] { return core_->Rpc(*req); });          \
  }

SWEEP_FORWARD(WorkerServiceImpl, Register, RegisterRequest, RegisterResponse)
SWEEP_FORWARD(WorkerServiceImpl, LeaseTrial, LeaseTrialRequest, LeaseTrialResponse)
SWEEP_FORWARD(WorkerServiceImpl, Heartbeat, HeartbeatRequest, HeartbeatResponse)
SWEEP_FORWARD(WorkerServiceImpl, ReportMetrics, ReportMetricsRequest, ReportMetricsResponse)
SWEEP_FORWARD(WorkerServiceImpl, FinishTrial, FinishTrialRequest, FinishTrialResponse)
SWEEP_FORWARD(SweepServiceImpl, SubmitSweep, SubmitSweepRequest, SubmitSweepResponse)
SWEEP_FORWARD(SweepServiceImpl, GetStatus, GetStatusRequest, GetStatusResponse)
SWEEP_FORWARD(SweepServiceImpl, ListTrials, ListTrialsRequest, ListTrialsResponse)
SWEEP_FORWARD(SweepServiceImpl, CancelSweep, CancelSweepRequest, CancelSweepResponse)
SWEEP_FORWARD(SweepServiceImpl, GetTrial, GetTrialRequest, GetTrialResponse)

#undef SWEEP_FORWARD

}  // namespace sweep
