// DbSource: the read commands' view of a scheduler's database file (`--db FILE`),
// for reading a sweep when no scheduler runs on it, or beside one that does.
//
// It opens the file read-only (Store::OpenReadOnly: WAL, so it never blocks the
// scheduler and cannot write) and answers with the scheduler's own read model
// (scheduler/read_model.h), each call from one consistent snapshot. What only a
// running scheduler knows is absent: the waiting reason and estimate of a running
// sweep, and the telemetry of running trials; the workers are those whose stored
// row is recent (SweepRecords::Status).
//
// Thread-compatible. Lifecycle: Open(), use, destroy (closes the file).
#ifndef SWEEP_CLI_DB_SOURCE_H_
#define SWEEP_CLI_DB_SOURCE_H_

#include <memory>
#include <string>

#include "cli/client.h"
#include "scheduler/store.h"

namespace sweep {

class DbSource : public SweepSource {
 public:
  // Returns Store::OpenReadOnly's errors: NotFound (no such file), InvalidArgument
  // (not a sweep database), FailedPrecondition (another schema version),
  // Unavailable.
  static absl::StatusOr<std::unique_ptr<DbSource>> Open(const std::string& path);

  absl::StatusOr<v1::GetStatusResponse> Status(const std::string& sweep_id) override;
  absl::StatusOr<v1::ListTrialsResponse> Trials(const std::string& sweep_id,
                                                const std::string& metric = "") override;
  absl::StatusOr<v1::GetTrialResponse> Trial(const std::string& trial_id) override;

 private:
  explicit DbSource(std::unique_ptr<Store> store) : store_(std::move(store)) {}
  // Runs `read` (returning a StatusOr) in one read transaction.
  template <typename Fn>
  auto Snapshot(Fn read) -> decltype(read());

  std::unique_ptr<Store> store_;
};

// The source the read commands use: the database file when `o.db` is set, else a
// connection to the scheduler (SweepClient::Connect's errors).
absl::StatusOr<std::unique_ptr<SweepSource>> OpenSource(const ClientOptions& o);

}  // namespace sweep

#endif  // SWEEP_CLI_DB_SOURCE_H_
