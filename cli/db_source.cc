#include "cli/db_source.h"

#include <optional>

#include "absl/time/clock.h"
#include "common/clock.h"
#include "scheduler/read_model.h"

namespace sweep {

absl::StatusOr<std::unique_ptr<DbSource>> DbSource::Open(const std::string& path) {
  absl::StatusOr<std::unique_ptr<Store>> store = Store::OpenReadOnly(path);
  if (!store.ok()) return store.status();
  return std::unique_ptr<DbSource>(new DbSource(*std::move(store)));
}

template <typename Fn>
auto DbSource::Snapshot(Fn read) -> decltype(read()) {
  std::optional<decltype(read())> out;
  absl::Status st = store_->InTransaction([&] {
    out.emplace(read());
    return out->status();
  });
  if (!st.ok()) return st;
  return *std::move(out);
}

absl::StatusOr<v1::GetStatusResponse> DbSource::Status(const std::string& sweep_id) {
  double now = ToUnixSecondsDouble(absl::Now());
  return Snapshot([&] { return SweepRecords(store_.get(), nullptr).Status(sweep_id, now); });
}

absl::StatusOr<v1::ListTrialsResponse> DbSource::Trials(const std::string& sweep_id,
                                                        const std::string& metric) {
  return Snapshot([&] { return SweepRecords(store_.get(), nullptr).Trials(sweep_id, metric); });
}

absl::StatusOr<v1::GetTrialResponse> DbSource::Trial(const std::string& trial_id) {
  return Snapshot([&] { return SweepRecords(store_.get(), nullptr).Trial(trial_id); });
}

absl::StatusOr<std::unique_ptr<SweepSource>> OpenSource(const ClientOptions& o) {
  if (!o.db.empty()) {
    absl::StatusOr<std::unique_ptr<DbSource>> db = DbSource::Open(o.db);
    if (!db.ok()) return db.status();
    return std::unique_ptr<SweepSource>(*std::move(db));
  }
  absl::StatusOr<SweepClient> client = SweepClient::Connect(o);
  if (!client.ok()) return client.status();
  return std::unique_ptr<SweepSource>(std::make_unique<SweepClient>(*std::move(client)));
}

}  // namespace sweep
