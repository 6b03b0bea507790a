// The status dashboard: an HTTP server, run inside `sweep scheduler` (and
// `sweep run`), that serves the web app (its files are compiled into the binary)
// and a JSON API under /api/ (docs/dashboard.md). It only reads: it opens the
// scheduler's SQLite file with its own read-only connection.
//
// Security: on a loopback address no token is needed, but requests must name a
// loopback host in their Host header (no DNS rebinding). On any other address
// every request needs the dashboard's token: `?token=` (which also sets a
// cookie), the `X-Sweep-Token` header, `Authorization: Bearer`, or the cookie.
// Requests without one get 401, with a wrong one 403.
//
// Thread safety: Start() and Stop() from one thread; requests are served on the
// server's own thread pool. Lifecycle: Start() binds and serves; Stop() (or the
// destructor) stops serving and waits for in-flight requests.
#ifndef SWEEP_DASHBOARD_DASHBOARD_H_
#define SWEEP_DASHBOARD_DASHBOARD_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/clock.h"

namespace httplib {
class Server;
}

namespace sweep {

namespace dashboard_internal {
class DbReader;
}

struct DashboardOptions {
  // host:port to serve on; port 0 picks a free one. "[::1]:8080" for IPv6.
  std::string address = "127.0.0.1:8080";
  // The scheduler's database; it must exist (the scheduler creates it first).
  std::string db_path = "sweeps.db";
  // The token required off loopback. Empty: a random one is drawn. Ignored (no
  // token) on loopback addresses.
  std::string token;
  const Clock* clock = SystemClock::Get();  // not owned
};

struct HostPort {
  std::string host;  // without brackets: "::1"
  int port = 0;
};

// Parses "HOST:PORT", "[V6]:PORT" or a bare "PORT" (on 127.0.0.1). Returns
// InvalidArgument (naming the text and the expected form) for anything else.
absl::StatusOr<HostPort> ParseHttpAddress(absl::string_view address);

// Returns whether `host` names this machine's loopback interface only
// ("localhost", 127.0.0.0/8, "::1").
bool IsLoopbackHost(absl::string_view host);

class Dashboard {
 public:
  // Opens the database read-only and starts serving. Returns InvalidArgument for
  // a malformed address, Unavailable when the database cannot be opened or the
  // address cannot be bound (the message names it and says what to do).
  static absl::StatusOr<std::unique_ptr<Dashboard>> Start(const DashboardOptions& o);
  ~Dashboard();
  Dashboard(const Dashboard&) = delete;
  Dashboard& operator=(const Dashboard&) = delete;

  // "127.0.0.1:8080": the bound address, with the real port when 0 was asked for.
  std::string address() const;
  int port() const { return port_; }
  // The token requests need; empty when none is needed (loopback).
  const std::string& token() const { return token_; }
  // The URL to open: "http://127.0.0.1:8080/", with "?token=..." when needed. For
  // a wildcard address (0.0.0.0, ::) it names this machine's host name.
  std::string url() const;
  // Stops serving and waits for in-flight requests; idempotent.
  void Stop();

 private:
  Dashboard() = default;
  void Route();

  std::unique_ptr<dashboard_internal::DbReader> reader_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::string host_;
  int port_ = 0;
  std::string token_;
  bool stopped_ = false;
};

}  // namespace sweep

#endif  // SWEEP_DASHBOARD_DASHBOARD_H_
