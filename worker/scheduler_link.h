// SchedulerLink: a worker slot's connection to the scheduler's WorkerService, the
// five calls a slot makes, with sweep.v1 messages in and out and absl::Status
// errors. The gRPC implementation is worker/grpc_scheduler_link.h; slot tests give
// a slot an in-memory fake.
//
// Errors, by what the slot does next:
//   Unavailable: the scheduler cannot be reached, or did not answer in time (a call
//     past its deadline is Unavailable too): retry later; a retried report or
//     outcome is harmless (reports carry a sequence number, outcomes an epoch).
//   FailedPrecondition: the lease is stale (the trial was given to someone else):
//     drop the trial, report nothing more about it.
//   NotFound: the scheduler does not know this worker id: register again.
//   Unauthenticated: a missing or wrong token.
//   anything else: the scheduler refused the request (InvalidArgument, ...).
//
// Thread safety: implementations are thread-safe; the slots of one worker process
// share one link.
#ifndef SWEEP_WORKER_SCHEDULER_LINK_H_
#define SWEEP_WORKER_SCHEDULER_LINK_H_

#include <string>

#include "absl/status/statusor.h"
#include "sweep/v1/sweep.pb.h"

namespace sweep {

class SchedulerLink {
 public:
  virtual ~SchedulerLink() = default;

  // Registers one slot; the response has its worker id and heartbeat interval.
  virtual absl::StatusOr<v1::RegisterResponse> Register(const v1::RegisterRequest& req) = 0;
  // Asks for a trial, waiting on the scheduler up to req.wait_ms(); a response
  // without a trial means none was runnable (or, with drain(), that the scheduler
  // is shutting down).
  virtual absl::StatusOr<v1::LeaseTrialResponse> LeaseTrial(
      const v1::LeaseTrialRequest& req) = 0;
  // Says the slot is alive (with its running trials); the response may order
  // trials stopped or the slot to register again.
  virtual absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& req) = 0;
  // Sends one batch of metric points (identified by req.seq()).
  virtual absl::StatusOr<v1::ReportMetricsResponse> ReportMetrics(
      const v1::ReportMetricsRequest& req) = 0;
  // Reports a trial's outcome; the response may carry the slot's next trial.
  virtual absl::StatusOr<v1::FinishTrialResponse> FinishTrial(
      const v1::FinishTrialRequest& req) = 0;

  // Where the scheduler is, for messages ("127.0.0.1:50051").
  virtual std::string Address() const = 0;
};

}  // namespace sweep

#endif  // SWEEP_WORKER_SCHEDULER_LINK_H_
