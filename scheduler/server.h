// The `sweep scheduler` daemon's lifecycle: open the database, rebuild the core,
// serve gRPC and the HTTP dashboard, expire leases in the background, stop cleanly.
//
// Thread safety: Start() and Stop() from one thread; the server runs on its own.
#ifndef SWEEP_SCHEDULER_SERVER_H_
#define SWEEP_SCHEDULER_SERVER_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "common/address.h"
#include "dashboard/dashboard.h"
#include "scheduler/scheduler.h"
#include "scheduler/service.h"

namespace sweep {

struct ServerOptions {
  std::string listen = kDefaultSchedulerAddress;  // host:port; port 0 picks a free one
  std::string db_path = "sweeps.db";
  SchedulerOptions scheduler;
  // The dashboard's HTTP address (port 0 picks a free one), or "off".
  std::string http = kDefaultDashboardAddress;
  // The token the dashboard requires off loopback; empty: the gRPC token when there
  // is one, else a random one.
  std::string http_token;
  // The dashboard's bounds on its HTTP clients (dashboard/dashboard.h).
  HttpLimits http_limits;
  // The shared token every gRPC call must carry (docs/security.md); empty: none.
  // Listening beyond loopback without one is refused unless `insecure`.
  std::string token;
  bool insecure = false;
  // PEM certificate chain and private key: serve gRPC over TLS. Both or neither.
  std::string tls_cert;
  std::string tls_key;
  // When `http` cannot be bound, serve on a free port of the same host instead
  // (with a warning) rather than fail. `sweep run` sets it.
  bool http_fallback = false;
};

class SchedulerServer {
 public:
  // Opens the database and starts serving gRPC and (unless `http` is "off") the
  // dashboard. Returns InvalidArgument for a non-loopback `listen` without a token
  // (and not `insecure`), for half a TLS pair or a malformed `http` address; the
  // store's error (Unavailable, FailedPrecondition); Unavailable when an address
  // cannot be bound (the message names it).
  static absl::StatusOr<std::unique_ptr<SchedulerServer>> Start(const ServerOptions& o);
  // Stops serving and waits for in-flight calls.
  ~SchedulerServer();

  // "127.0.0.1:50051": the bound address, with the real port when 0 was asked for.
  const std::string& address() const { return address_; }
  // The dashboard, or nullptr when it is off.
  const Dashboard* dashboard() const { return dashboard_.get(); }
  // Stops the server; idempotent.
  void Stop();

 private:
  SchedulerServer() = default;

  std::unique_ptr<Store> store_;
  std::unique_ptr<Scheduler> core_;
  std::unique_ptr<WorkerServiceImpl> worker_service_;
  std::unique_ptr<SweepServiceImpl> sweep_service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Dashboard> dashboard_;
  std::string address_;
  absl::Notification stop_;
  std::thread ticker_;
  bool stopped_ = false;
};

}  // namespace sweep

#endif  // SWEEP_SCHEDULER_SERVER_H_
