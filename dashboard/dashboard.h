// The status dashboard: an HTTP server, run inside `sweep scheduler` (and
// `sweep run`), that serves the web app (its files are compiled into the binary)
// and a JSON API under /api/ (docs/dashboard.md). It only reads: it opens the
// scheduler's SQLite file with its own read-only connection.
//
// Security: on a loopback address no token is needed, but requests must name a
// loopback host in their Host header (no DNS rebinding). On any other address
// every request needs the dashboard's token: `?token=` (which also sets a
// cookie), the `X-Sweep-Token` header, `Authorization: Bearer`, or the cookie.
// Requests without one get 401, with a wrong one 403. Every request is checked
// (method, body, Host or token) before any handler runs or any body byte is read.
//
// Hostile clients: no client can keep the dashboard from answering others. A
// connection holds a request thread only once its whole request head has arrived,
// and every wait has a deadline (HttpLimits below; docs/security.md lists them).
//
// Thread safety: Start() and Stop() from one thread, stats() from any; requests
// are served on the dashboard's own threads. Lifecycle: Start() binds and serves;
// Stop() (or the destructor) stops serving, closes every connection and waits for
// the requests being handled.
#ifndef SWEEP_DASHBOARD_DASHBOARD_H_
#define SWEEP_DASHBOARD_DASHBOARD_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/address.h"
#include "common/clock.h"

namespace sweep {

namespace dashboard_internal {
class DbReader;
class GuardedServer;
}  // namespace dashboard_internal

// The bounds on what one HTTP client can hold, and what happens at each. Deadlines
// are on the real monotonic clock (the sockets' own), not the injected Clock.
struct HttpLimits {
  // A request's head (request line and headers) must have arrived in full this
  // long after the connection opened, or after the first byte of a later request
  // on a kept-alive connection: a total, not a per-read timeout. At it: "408
  // Request Timeout" and the connection is closed.
  absl::Duration header_timeout = absl::Seconds(10);
  // A kept-alive connection on which no byte of a next request arrives for this
  // long is closed.
  absl::Duration idle_timeout = absl::Seconds(5);
  // From a complete head to the last byte of the response. A client that reads
  // its response slower than that is cut off.
  absl::Duration response_timeout = absl::Seconds(30);
  // Connections open at once. A new connection beyond it closes the oldest
  // connection that is waiting for a request (idle, or its head still arriving),
  // taken from the peer address that holds the most connections; when none is
  // waiting (every one is being answered), the new one gets "503" and is closed.
  int max_connections = 256;
  // Bytes of one request head. Beyond it: "431" and the connection is closed.
  int max_head_bytes = 16 * 1024;
  // Threads that answer requests whose head has arrived. Waiting connections take
  // none.
  int threads = 8;
  // Requests answered on one connection; the last answer closes it.
  int max_requests_per_connection = 100;
};

// What the HTTP server did since it started, for operators and tests.
struct HttpStats {
  int64_t open = 0;       // connections open now
  int64_t accepted = 0;   // connections accepted
  int64_t requests = 0;   // requests whose head arrived (each went to a thread)
  int64_t handled = 0;    // requests that reached a handler past the checks
  int64_t refused = 0;    // requests refused by the checks (method, body, Host, token)
  int64_t header_timeouts = 0;    // closed at header_timeout
  int64_t idle_closed = 0;        // closed at idle_timeout
  int64_t response_timeouts = 0;  // cut off at response_timeout
  int64_t head_too_large = 0;     // closed at max_head_bytes
  int64_t evicted = 0;            // waiting connections closed for a new one
  int64_t refused_full = 0;       // new connections refused at max_connections
};

struct DashboardOptions {
  // host:port to serve on; port 0 picks a free one. "[::1]:8080" for IPv6.
  std::string address = kDefaultDashboardAddress;
  // The scheduler's database; it must exist (the scheduler creates it first).
  std::string db_path = "sweeps.db";
  // The token required off loopback. Empty: a random one is drawn. Ignored (no
  // token) on loopback addresses.
  std::string token;
  const Clock* clock = SystemClock::Get();  // not owned
  HttpLimits limits;
};

struct HostPort {
  std::string host;  // without brackets: "::1"
  int port = 0;
};

// Parses "HOST:PORT", "[V6]:PORT" or a bare "PORT" (on 127.0.0.1). Returns
// InvalidArgument (naming the text and the expected form) for anything else.
absl::StatusOr<HostPort> ParseHttpAddress(absl::string_view address);

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
  // Stops serving, closes every connection and waits for the requests being
  // handled (each at most limits.response_timeout); idempotent.
  void Stop();
  // A snapshot of the server's counters.
  HttpStats stats() const;

 private:
  Dashboard() = default;
  void Route();

  std::unique_ptr<dashboard_internal::DbReader> reader_;
  std::unique_ptr<dashboard_internal::GuardedServer> server_;
  std::thread thread_;
  std::string host_;
  int port_ = 0;
  std::string token_;
  bool stopped_ = false;
  std::atomic<int64_t> handled_{0};  // requests past the checks
  std::atomic<int64_t> refused_{0};  // requests the checks refused
};

}  // namespace sweep

#endif  // SWEEP_DASHBOARD_DASHBOARD_H_
