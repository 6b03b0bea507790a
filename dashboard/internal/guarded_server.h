// GuardedServer: an httplib::Server whose connections are admitted, read and timed
// by sweep instead of by httplib's thread-per-connection loop, so that slow or idle
// clients cannot take the threads that answer everyone else.
//
// Why: cpp-httplib 0.11.4 (Debian 12) hands each accepted connection to a pool
// thread for the connection's whole life (at least 8 threads; further connections
// queue without bound), and its read timeout applies to each recv, not to a request: a
// client that sends a header line every half second holds a thread for as long as
// it likes. Eight such clients, or enough idle connections, left every later
// request queued. httplib has no total header deadline, no connection
// limit and no way to take a thread back from a waiting connection, and raising
// the pool size only raises the number of attackers needed.
//
// How: httplib still binds, accepts and stops (its listen_after_bind()/stop()
// contract is unchanged), but process_and_close_socket(), which it calls for each
// accepted socket, only admits the socket to a waiting room: one thread that reads
// with epoll from every connection whose request head (request line and headers,
// up to the blank line) has not fully arrived. A connection goes to one of
// `threads` worker threads only once its head is complete; the worker runs
// httplib's own request processing (Server::process_request) over a stream that
// first serves the bytes already read and bounds the rest of the exchange by
// `response_timeout`. A kept-alive connection then goes back to the waiting room.
// A thread is thus never spent waiting for a client to send a request; a client
// that reads its answer slowly holds one for at most `response_timeout`.
// HttpLimits (dashboard/dashboard.h) says what happens at each bound.
//
// Do not replace the post-routing handler: the server uses it to close a
// connection whose response says "Connection: close" (set it on a refusal).
//
// Thread safety: stats() from any thread. Lifecycle: construct, add handlers and
// bind as an httplib::Server, run listen_after_bind() on a thread; to stop, call
// stop(), join that thread, then Shutdown() (the destructor calls it too).
#ifndef SWEEP_DASHBOARD_INTERNAL_GUARDED_SERVER_H_
#define SWEEP_DASHBOARD_INTERNAL_GUARDED_SERVER_H_

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "dashboard/dashboard.h"
#include "httplib.h"

namespace sweep::dashboard_internal {

class GuardedServer : public httplib::Server {
 public:
  explicit GuardedServer(const HttpLimits& limits);
  ~GuardedServer() override;
  GuardedServer(const GuardedServer&) = delete;
  GuardedServer& operator=(const GuardedServer&) = delete;

  // Starts the waiting room and the worker threads, and lengthens the listen
  // backlog (httplib's is 5). Call after a successful bind, before
  // listen_after_bind().
  void StartThreads();

  // Closes every connection (requests being answered fail at their next read or
  // write) and joins the threads. Call after stop() returned and the thread that
  // ran listen_after_bind() was joined, so that no socket is admitted afterwards;
  // one that is, is closed at once. Idempotent.
  void Shutdown();

  // A snapshot of the counters (HttpStats::handled and ::refused stay 0: those
  // are counted by the routes).
  HttpStats stats() const;

 private:
  using SteadyTime = std::chrono::steady_clock::time_point;
  enum class ConnState {
    kIdle,   // waiting for the first byte of a request (in the waiting room)
    kHead,   // some bytes of a request head arrived, not all (in the waiting room)
    kReady,  // its head arrived; queued for a worker
    kBusy,   // a worker is answering it; only that worker touches it
  };
  struct Conn {
    int fd = -1;
    std::string peer;  // numeric address, no port
    int peer_port = 0;
    ConnState state = ConnState::kIdle;
    SteadyTime opened;
    SteadyTime deadline;  // of the current wait (idle, head or response)
    std::string buffer;   // read, not yet consumed by a request
    size_t scanned = 0;   // bytes of `buffer` already searched for the head's end
    int requests = 0;
    bool watched = false;  // in the epoll set (the waiting room reads it)
    bool peer_done = false;  // the client shut down its sending side
  };
  class ConnStream;

  // httplib calls this on its accept thread for every accepted socket (through
  // the inline task queue this class installs). Admits the socket to the waiting
  // room or, at max_connections with no waiting connection to close, answers 503
  // and closes it. Returns true.
  bool process_and_close_socket(socket_t sock) override;

  void WaitingRoomLoop();
  void WorkerLoop();
  // Answers one request of `c` (state kBusy) on the calling worker thread.
  void Answer(Conn* c);
  // Reads what `c` has sent; dispatches it, closes it, or leaves it waiting.
  void OnReadable(Conn* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves a connection whose buffer holds a complete head to the worker queue;
  // returns false when the head is not complete.
  bool DispatchIfComplete(Conn* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExpireDeadlines(SteadyTime now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Closes the waiting connection that has to make room for a new one; returns
  // false when every open connection is being answered.
  bool EvictOne() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Logs that the connection limit was reached, at most once a minute.
  void WarnAtLimit(const std::string& what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Best-effort status line on a non-blocking socket, then closes and forgets `c`.
  void CloseWith(Conn* c, const char* response) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Forget(Conn* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Watch(Conn* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unwatch(Conn* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const HttpLimits limits_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: Shutdown() wakes the waiting room
  std::thread waiting_room_;
  std::vector<std::thread> workers_;

  mutable absl::Mutex mu_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  std::unordered_map<int, std::unique_ptr<Conn>> conns_ ABSL_GUARDED_BY(mu_);  // by fd
  std::unordered_map<std::string, int> per_peer_ ABSL_GUARDED_BY(mu_);  // open, by peer
  std::deque<Conn*> ready_ ABSL_GUARDED_BY(mu_);  // complete heads, oldest first
  HttpStats stats_ ABSL_GUARDED_BY(mu_);
  // When the connection limit was last logged: at most once a minute.
  std::chrono::steady_clock::time_point last_limit_warning_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sweep::dashboard_internal

#endif  // SWEEP_DASHBOARD_INTERNAL_GUARDED_SERVER_H_
