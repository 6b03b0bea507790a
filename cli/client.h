// SweepClient: the CLI's connection to a scheduler's SweepService.
//
// Every call returns the scheduler's error as an absl::Status (InvalidArgument,
// NotFound, ... as the core chose them); a scheduler that cannot be reached is
// Unavailable with a message that names the address and says what to do, and a
// missing or wrong token is Unauthenticated.
// Thread-compatible.
#ifndef SWEEP_CLI_CLIENT_H_
#define SWEEP_CLI_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/rpc.h"
#include "sweep/v1/sweep.grpc.pb.h"

namespace sweep {

// Returns --scheduler's default: $SWEEP_SCHEDULER, else 127.0.0.1:50051.
std::string DefaultSchedulerAddress();

// Where and how to reach the scheduler (flags shared by every client command).
struct ClientOptions {
  std::string address = DefaultSchedulerAddress();
  std::string token_file;  // --token-file, default $SWEEP_TOKEN_FILE
  std::string tls_ca;      // --tls-ca, default $SWEEP_TLS_CA
  // --db: the read commands read this database file instead of asking a scheduler.
  std::string db;
};

// Where the read commands (status, trials, best, export, logs) get the record of
// a sweep: a scheduler (SweepClient) or its database file (DbSource, cli/db_source.h).
// Both answer with the same messages; errors are the scheduler's (NotFound for an
// unknown sweep or trial, ...).
class SweepSource {
 public:
  virtual ~SweepSource() = default;
  virtual absl::StatusOr<v1::GetStatusResponse> Status(const std::string& sweep_id) = 0;
  // `metric`: also fetch each trial's last value of that metric ("" for none).
  virtual absl::StatusOr<v1::ListTrialsResponse> Trials(const std::string& sweep_id,
                                                        const std::string& metric = "") = 0;
  virtual absl::StatusOr<v1::GetTrialResponse> Trial(const std::string& trial_id) = 0;
};

class SweepClient : public SweepSource {
 public:
  SweepClient(std::string address, RpcSecurity security);
  // Reads the token and CA files of `o`. NotFound or InvalidArgument for an
  // unreadable or empty file.
  static absl::StatusOr<SweepClient> Connect(const ClientOptions& o);

  absl::StatusOr<v1::SubmitSweepResponse> Submit(const v1::SubmitSweepRequest& req);
  absl::StatusOr<v1::GetStatusResponse> Status(const std::string& sweep_id) override;
  absl::StatusOr<v1::ListTrialsResponse> Trials(const std::string& sweep_id,
                                                const std::string& metric = "") override;
  absl::StatusOr<v1::CancelSweepResponse> Cancel(const std::string& sweep_id);
  absl::StatusOr<v1::GetTrialResponse> Trial(const std::string& trial_id) override;

 private:
  absl::Status Convert(const grpc::Status& st) const;

  std::unique_ptr<grpc::ClientContext> Context() const;

  std::string address_;
  RpcSecurity security_;
  std::unique_ptr<v1::SweepService::Stub> stub_;
};

}  // namespace sweep

#endif  // SWEEP_CLI_CLIENT_H_
