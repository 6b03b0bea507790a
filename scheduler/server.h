// The `sweep scheduler` daemon's lifecycle: open the database, rebuild the core,
// serve gRPC, expire leases in the background, stop cleanly.
//
// Thread safety: Start() and Stop() from one thread; the server runs on its own.
#ifndef SWEEP_SCHEDULER_SERVER_H_
#define SWEEP_SCHEDULER_SERVER_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "scheduler/scheduler.h"
#include "scheduler/service.h"

namespace sweep {

struct ServerOptions {
  std::string listen = "127.0.0.1:50051";  // host:port; port 0 picks a free one
  std::string db_path = "sweeps.db";
  SchedulerOptions scheduler;
};

class SchedulerServer {
 public:
  // Opens the database and starts serving. Returns the store's error
  // (Unavailable, FailedPrecondition) or Unavailable when the address cannot be
  // bound (the message names it).
  static absl::StatusOr<std::unique_ptr<SchedulerServer>> Start(const ServerOptions& o);
  // Stops serving and waits for in-flight calls.
  ~SchedulerServer();

  // "127.0.0.1:50051": the bound address, with the real port when 0 was asked for.
  const std::string& address() const { return address_; }
  // Stops the server; idempotent.
  void Stop();

 private:
  SchedulerServer() = default;

  std::unique_ptr<Store> store_;
  std::unique_ptr<Scheduler> core_;
  std::unique_ptr<WorkerServiceImpl> worker_service_;
  std::unique_ptr<SweepServiceImpl> sweep_service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  absl::Notification stop_;
  std::thread ticker_;
  bool stopped_ = false;
};

}  // namespace sweep

#endif  // SWEEP_SCHEDULER_SERVER_H_
