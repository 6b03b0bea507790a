// gRPC adapters: WorkerService and SweepService over the Scheduler core.
//
// Each RPC checks the caller's token (when the scheduler has one), forwards to the
// core and converts its absl::Status to a grpc::Status in one place (ToGrpcStatus).
// Thread-safe, as the core is.
#ifndef SWEEP_SCHEDULER_SERVICE_H_
#define SWEEP_SCHEDULER_SERVICE_H_

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "scheduler/scheduler.h"
#include "sweep/v1/sweep.grpc.pb.h"

namespace sweep {

// Maps absl status codes one to one onto gRPC's (they share their numbering).
grpc::Status ToGrpcStatus(const absl::Status& status);
// The inverse, used by clients.
absl::Status FromGrpcStatus(const grpc::Status& status);

class WorkerServiceImpl final : public v1::WorkerService::Service {
 public:
  // `token`: the shared token every call must carry; empty: none required.
  WorkerServiceImpl(Scheduler* core, std::string token)
      : core_(core), token_(std::move(token)) {}
  grpc::Status Register(grpc::ServerContext*, const v1::RegisterRequest* req,
                        v1::RegisterResponse* resp) override;
  grpc::Status LeaseTrial(grpc::ServerContext*, const v1::LeaseTrialRequest* req,
                          v1::LeaseTrialResponse* resp) override;
  grpc::Status Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest* req,
                         v1::HeartbeatResponse* resp) override;
  grpc::Status ReportMetrics(grpc::ServerContext*, const v1::ReportMetricsRequest* req,
                             v1::ReportMetricsResponse* resp) override;
  grpc::Status FinishTrial(grpc::ServerContext*, const v1::FinishTrialRequest* req,
                           v1::FinishTrialResponse* resp) override;

 private:
  Scheduler* core_;
  std::string token_;
};

class SweepServiceImpl final : public v1::SweepService::Service {
 public:
  SweepServiceImpl(Scheduler* core, std::string token)
      : core_(core), token_(std::move(token)) {}
  grpc::Status SubmitSweep(grpc::ServerContext*, const v1::SubmitSweepRequest* req,
                           v1::SubmitSweepResponse* resp) override;
  grpc::Status GetStatus(grpc::ServerContext*, const v1::GetStatusRequest* req,
                         v1::GetStatusResponse* resp) override;
  grpc::Status ListTrials(grpc::ServerContext*, const v1::ListTrialsRequest* req,
                          v1::ListTrialsResponse* resp) override;
  grpc::Status CancelSweep(grpc::ServerContext*, const v1::CancelSweepRequest* req,
                           v1::CancelSweepResponse* resp) override;
  grpc::Status GetTrial(grpc::ServerContext*, const v1::GetTrialRequest* req,
                        v1::GetTrialResponse* resp) override;

 private:
  Scheduler* core_;
  std::string token_;
};

}  // namespace sweep

#endif  // SWEEP_SCHEDULER_SERVICE_H_
