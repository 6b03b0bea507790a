#include "worker/grpc_scheduler_link.h"

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "sweep/v1/sweep.grpc.pb.h"

namespace sweep {
namespace {

constexpr absl::Duration kRpcTimeout = absl::Seconds(10);

class GrpcSchedulerLink final : public SchedulerLink {
 public:
  GrpcSchedulerLink(std::string address, RpcSecurity security)
      : address_(std::move(address)), security_(std::move(security)) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
    stub_ = v1::WorkerService::NewStub(MakeChannel(address_, security_, args));
  }

  absl::StatusOr<v1::RegisterResponse> Register(const v1::RegisterRequest& req) override {
    return Call(&v1::WorkerService::Stub::Register, req, kRpcTimeout);
  }
  absl::StatusOr<v1::LeaseTrialResponse> LeaseTrial(const v1::LeaseTrialRequest& req) override {
    return Call(&v1::WorkerService::Stub::LeaseTrial, req,
                absl::Milliseconds(req.wait_ms()) + kRpcTimeout);
  }
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& req) override {
    return Call(&v1::WorkerService::Stub::Heartbeat, req, kRpcTimeout);
  }
  absl::StatusOr<v1::ReportMetricsResponse> ReportMetrics(
      const v1::ReportMetricsRequest& req) override {
    return Call(&v1::WorkerService::Stub::ReportMetrics, req, kRpcTimeout);
  }
  absl::StatusOr<v1::FinishTrialResponse> FinishTrial(
      const v1::FinishTrialRequest& req) override {
    return Call(&v1::WorkerService::Stub::FinishTrial, req, kRpcTimeout);
  }
  std::string Address() const override { return address_; }

 private:
  template <typename Req, typename Resp>
  absl::StatusOr<Resp> Call(grpc::Status (v1::WorkerService::Stub::*method)(
                                grpc::ClientContext*, const Req&, Resp*),
                            const Req& req, absl::Duration timeout) {
    grpc::ClientContext ctx;
    // gRPC deadlines are real time: they bound a network call, not a decision of
    // the slot's.
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    Authorize(&ctx, security_);
    Resp resp;
    grpc::Status st = (stub_.get()->*method)(&ctx, req, &resp);
    if (st.ok()) return resp;
    return ToAbsl(st);
  }

  // FromGrpcStatus, but a call that ran out of time is Unavailable (retry).
  static absl::Status ToAbsl(const grpc::Status& st) {
    if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      return absl::UnavailableError(
          absl::StrCat("the scheduler did not answer in time: ", st.error_message()));
    }
    return FromGrpcStatus(st);
  }

  const std::string address_;
  const RpcSecurity security_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;
};

}  // namespace

std::unique_ptr<SchedulerLink> NewGrpcSchedulerLink(const std::string& address,
                                                    const RpcSecurity& security) {
  return std::make_unique<GrpcSchedulerLink>(address, security);
}

}  // namespace sweep
