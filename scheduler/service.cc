#include "scheduler/service.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/rpc.h"
#include "spdlog/spdlog.h"

namespace sweep {
namespace {

// Checks the token and that `req` is at most `limit` bytes, runs `call` and stores
// its value in `*out`, or returns the error.
template <typename Req, typename Resp, typename Call>
grpc::Status Forward(grpc::ServerContext* ctx, const std::string& token, const char* rpc,
                     const Req& req, int64_t limit, Resp* out, Call call) {
  if (grpc::Status auth = CheckToken(ctx, token); !auth.ok()) return auth;
  if (const size_t size = req.ByteSizeLong(); static_cast<int64_t>(size) > limit) {
    spdlog::warn("refused a {} request of {} bytes from {} (the limit is {})", rpc, size,
                 ctx->peer(), limit);
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        absl::StrCat("a ", rpc, " request of ", size,
                                     " bytes is more than the ", limit,
                                     " this scheduler takes; nothing was done"));
  }
  absl::StatusOr<Resp> r = call();
  if (!r.ok()) return ToGrpcStatus(r.status());
  *out = std::move(*r);
  return grpc::Status::OK;
}

}  // namespace

MessageLimits MessageLimits::ForSpecsOf(int64_t max_spec_bytes) {
  MessageLimits limits;
  limits.submit = std::max(limits.submit, max_spec_bytes + (64 << 10));
  return limits;
}

int64_t MessageLimits::Largest() const {
  return std::max({small, heartbeat, report, submit});
}

#define SWEEP_FORWARD(Service, Rpc, Req, Resp, limit)                                      \
  grpc::Status Service::Rpc(grpc::ServerContext* ctx, const v1::Req* req,                 \
                            v1::Resp* resp) {                                              \
    return Forward(ctx, token_, #Rpc, *req, limits_.limit, resp,                           \
                   [&] { return core_->Rpc(*req); });                                      \
  }

SWEEP_FORWARD(WorkerServiceImpl, Register, RegisterRequest, RegisterResponse, small)
SWEEP_FORWARD(WorkerServiceImpl, LeaseTrial, LeaseTrialRequest, LeaseTrialResponse, small)
SWEEP_FORWARD(WorkerServiceImpl, Heartbeat, HeartbeatRequest, HeartbeatResponse, heartbeat)
SWEEP_FORWARD(WorkerServiceImpl, ReportMetrics, ReportMetricsRequest, ReportMetricsResponse,
              report)
SWEEP_FORWARD(WorkerServiceImpl, FinishTrial, FinishTrialRequest, FinishTrialResponse, report)
SWEEP_FORWARD(SweepServiceImpl, SubmitSweep, SubmitSweepRequest, SubmitSweepResponse, submit)
SWEEP_FORWARD(SweepServiceImpl, GetStatus, GetStatusRequest, GetStatusResponse, small)
SWEEP_FORWARD(SweepServiceImpl, ListTrials, ListTrialsRequest, ListTrialsResponse, small)
SWEEP_FORWARD(SweepServiceImpl, CancelSweep, CancelSweepRequest, CancelSweepResponse, small)
SWEEP_FORWARD(SweepServiceImpl, GetTrial, GetTrialRequest, GetTrialResponse, small)

#undef SWEEP_FORWARD

}  // namespace sweep
