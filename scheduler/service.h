// gRPC adapters: WorkerService and SweepService over the Scheduler core.
//
// Each RPC checks the caller's token (when the scheduler has one) and the size of
// its request (MessageLimits), forwards to the core and converts its absl::Status
// to a grpc::Status (ToGrpcStatus, common/rpc.h). Thread-safe, as the core is.
#ifndef SWEEP_SCHEDULER_SERVICE_H_
#define SWEEP_SCHEDULER_SERVICE_H_

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "scheduler/scheduler.h"
#include "sweep/v1/sweep.grpc.pb.h"

namespace sweep {

// The most bytes a request of each RPC may have (docs/security.md). gRPC refuses
// a request beyond Largest() as it arrives (ServerBuilder::SetMaxReceiveMessageSize,
// RESOURCE_EXHAUSTED); the services refuse one beyond its RPC's limit the same way
// before the core sees it.
struct MessageLimits {
  // Register, LeaseTrial and the client calls but SubmitSweep: ids and a few numbers.
  int64_t small = 64 << 10;
  // Heartbeat: the slot's running trials and their GPU telemetry.
  int64_t heartbeat = 1 << 20;
  // ReportMetrics (a worker sends at most 10,000 points at once) and FinishTrial
  // (log tails of a worker that does not cut them are cut by the core).
  int64_t report = 16 << 20;
  // SubmitSweep: the spec (whose own limit, SchedulerOptions::max_spec_bytes, the
  // core checks first, with a message that names it) and its file's paths.
  int64_t submit = 16 << 20;

  // The limits for a scheduler that takes specs of `max_spec_bytes`.
  static MessageLimits ForSpecsOf(int64_t max_spec_bytes);
  int64_t Largest() const;
};

class WorkerServiceImpl final : public v1::WorkerService::Service {
 public:
  // `token`: the shared token every call must carry; empty: none required.
  WorkerServiceImpl(Scheduler* core, std::string token, MessageLimits limits = {})
      : core_(core), token_(std::move(token)), limits_(limits) {}
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
  MessageLimits limits_;
};

class SweepServiceImpl final : public v1::SweepService::Service {
 public:
  SweepServiceImpl(Scheduler* core, std::string token, MessageLimits limits = {})
      : core_(core), token_(std::move(token)), limits_(limits) {}
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
  MessageLimits limits_;
};

}  // namespace sweep

#endif  // SWEEP_SCHEDULER_SERVICE_H_
