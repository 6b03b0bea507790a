// SweepClient: the CLI's connection to a scheduler's SweepService.
//
// Every call returns the scheduler's error as an absl::Status (InvalidArgument,
// NotFound, ... as the core chose them); a scheduler that cannot be reached is
// Unavailable with a message that names the address and says what to do.
// Thread-compatible.
#ifndef SWEEP_CLI_CLIENT_H_
#define SWEEP_CLI_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "sweep/v1/sweep.grpc.pb.h"

namespace sweep {

// Returns --scheduler's default: $SWEEP_SCHEDULER, else 127.0.0.1:50051.
std::string DefaultSchedulerAddress();

class SweepClient {
 public:
  explicit SweepClient(std::string address);

  absl::StatusOr<v1::SubmitSweepResponse> Submit(const v1::SubmitSweepRequest& req);
  absl::StatusOr<v1::GetStatusResponse> Status(const std::string& sweep_id);
  // `metric`: also fetch each trial's last value of that metric ("" for none).
  absl::StatusOr<v1::ListTrialsResponse> Trials(const std::string& sweep_id,
                                                const std::string& metric = "");
  absl::StatusOr<v1::CancelSweepResponse> Cancel(const std::string& sweep_id);
  absl::StatusOr<v1::GetTrialResponse> Trial(const std::string& trial_id);

 private:
  absl::Status Convert(const grpc::Status& st) const;

  std::string address_;
  std::unique_ptr<v1::SweepService::Stub> stub_;
};

}  // namespace sweep

#endif  // SWEEP_CLI_CLIENT_H_
