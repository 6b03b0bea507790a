#include "dashboard/internal/guarded_server.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace sweep::dashboard_internal {
namespace {

using Clock = std::chrono::steady_clock;

// Set by the post-routing handler when the response being written closes the
// connection (the handler runs on the worker thread that answers the request).
thread_local bool tls_close_after_response = false;

// httplib's accept loop hands each socket to its task queue; this one runs the
// task (process_and_close_socket, which only admits the socket) right there on
// the accept thread, so no pool thread is ever tied to a connection.
class InlineTaskQueue : public httplib::TaskQueue {
 public:
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override {}
};

std::chrono::nanoseconds ToChrono(absl::Duration d) { return absl::ToChronoNanoseconds(d); }

// Milliseconds from now to `deadline`, rounded up, at least 0.
int MillisUntil(Clock::time_point deadline, Clock::time_point now) {
  if (deadline <= now) return 0;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
  return static_cast<int>(std::min<int64_t>(ms, 1 << 30));
}

void NumericAddress(const sockaddr_storage& addr, socklen_t len, std::string* host,
                    int* port) {
  char h[NI_MAXHOST] = {}, s[NI_MAXSERV] = {};
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&addr), len, h, sizeof(h), s, sizeof(s),
                  NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
    *host = h;
    *port = atoi(s);
  }
}

// Answers of the waiting room, which it sends without waiting (a client that does
// not read them simply does not get them) before closing.
constexpr char k408[] =
    "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\n"
    "Content-Length: 45\r\n\r\nthe request head did not arrive in time; bye\n";
constexpr char k431[] =
    "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n"
    "Content-Type: text/plain\r\nContent-Length: 27\r\n\r\nthe request head is too big\n";
constexpr char k503[] =
    "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n"
    "Content-Type: text/plain\r\nContent-Length: 47\r\n\r\nthe dashboard has too many connections; retry\n";

}  // namespace

// The stream httplib's request processing reads and writes through: it serves the
// bytes the waiting room already read (the whole head) before reading the socket,
// and every wait ends at the connection's response deadline. Bytes read past the
// request (a pipelined next request) stay in the connection's buffer.
class GuardedServer::ConnStream : public httplib::Stream {
 public:
  ConnStream(Conn* c, Clock::time_point deadline) : c_(c), deadline_(deadline) {}

  bool is_readable() const override {
    return pos_ < c_->buffer.size() || WaitFor(POLLIN);
  }
  bool is_writable() const override { return WaitFor(POLLOUT); }

  ssize_t read(char* ptr, size_t size) override {
    if (pos_ >= c_->buffer.size() && !Fill()) return failed_ ? -1 : 0;
    size_t n = std::min(size, c_->buffer.size() - pos_);
    memcpy(ptr, c_->buffer.data() + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    size_t sent = 0;
    while (sent < size) {
      ssize_t r = send(c_->fd, ptr + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (r > 0) {
        sent += static_cast<size_t>(r);
      } else if (r < 0 && errno == EINTR) {
        continue;
      } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && WaitFor(POLLOUT)) {
        continue;
      } else {
        failed_ = true;
        return -1;
      }
    }
    return static_cast<ssize_t>(size);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = c_->peer;
    port = c_->peer_port;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    if (getsockname(c_->fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      NumericAddress(addr, len, &ip, &port);
    }
  }
  socket_t socket() const override { return c_->fd; }

  // Drops the bytes the request used from the connection's buffer.
  void ConsumeRead() {
    c_->buffer.erase(0, pos_);
    pos_ = 0;
  }
  bool failed() const { return failed_ || timed_out_; }
  bool timed_out() const { return timed_out_; }

 private:
  // Reads more into the (consumed) buffer. Returns false at end of stream, on an
  // error or at the deadline (then failed_ or timed_out_ is set).
  bool Fill() {
    ConsumeRead();
    char chunk[16 * 1024];
    for (;;) {
      ssize_t r = recv(c_->fd, chunk, sizeof(chunk), MSG_DONTWAIT);
      if (r > 0) {
        c_->buffer.append(chunk, static_cast<size_t>(r));
        return true;
      }
      if (r == 0) return false;
      if (errno == EINTR) continue;
      if ((errno == EAGAIN || errno == EWOULDBLOCK) && WaitFor(POLLIN)) continue;
      failed_ = true;
      return false;
    }
  }

  // Waits until the socket is ready for `events` (or has an error, which the next
  // call reports) or the deadline passes. Returns false at the deadline.
  bool WaitFor(short events) const {
    for (;;) {
      Clock::time_point now = Clock::now();
      if (now >= deadline_) {
        timed_out_ = true;
        return false;
      }
      pollfd p{c_->fd, events, 0};
      int r = poll(&p, 1, MillisUntil(deadline_, now));
      if (r > 0) return true;
      if (r < 0 && errno != EINTR) {
        failed_ = true;
        return false;
      }
    }
  }

  Conn* c_;
  const Clock::time_point deadline_;
  size_t pos_ = 0;  // next unread byte of c_->buffer
  mutable bool failed_ = false;
  mutable bool timed_out_ = false;
};

GuardedServer::GuardedServer(const HttpLimits& limits) : limits_(limits) {
  new_task_queue = [] { return new InlineTaskQueue(); };
  // What the Keep-Alive response header announces.
  set_keep_alive_timeout(std::max<time_t>(1, absl::ToInt64Seconds(limits_.idle_timeout)));
  set_keep_alive_max_count(static_cast<size_t>(std::max(1, limits_.max_requests_per_connection)));
  set_post_routing_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.get_header_value("Connection") == "close") {
      res.headers.erase("Keep-Alive");
      tls_close_after_response = true;
    }
  });
}

GuardedServer::~GuardedServer() { Shutdown(); }

void GuardedServer::StartThreads() {
  absl::MutexLock lock(&mu_);
  if (started_ || shutting_down_) return;
  started_ = true;
  // httplib listens with a backlog of 5: a burst of connections would see SYNs
  // dropped (and retried a second later) while the accept loop, which only
  // admits, keeps up easily. Calling listen() again on Linux only resizes it.
  ::listen(svr_sock_, SOMAXCONN);
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  waiting_room_ = std::thread([this] { WaitingRoomLoop(); });
  for (int i = 0; i < std::max(1, limits_.threads); ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
}

void GuardedServer::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return;
    shutting_down_ = true;
    std::vector<Conn*> waiting;
    for (auto& [fd, c] : conns_) {
      // A request being answered fails at its next read or write; its worker
      // closes it.
      if (c->state == ConnState::kBusy) {
        ::shutdown(fd, SHUT_RDWR);
      } else {
        waiting.push_back(c.get());
      }
    }
    ready_.clear();
    for (Conn* c : waiting) CloseWith(c, nullptr);
  }
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof(one));
  }
  if (waiting_room_.joinable()) waiting_room_.join();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
  epoll_fd_ = wake_fd_ = -1;
}

HttpStats GuardedServer::stats() const {
  absl::MutexLock lock(&mu_);
  HttpStats s = stats_;
  s.open = static_cast<int64_t>(conns_.size());
  return s;
}

bool GuardedServer::process_and_close_socket(socket_t sock) {
  int flags = fcntl(sock, F_GETFL);
  fcntl(sock, F_SETFL, flags | O_NONBLOCK);
  fcntl(sock, F_SETFD, FD_CLOEXEC);
  int yes = 1;
  setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
  auto c = std::make_unique<Conn>();
  c->fd = sock;
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getpeername(sock, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    NumericAddress(addr, len, &c->peer, &c->peer_port);
  }

  absl::MutexLock lock(&mu_);
  if (shutting_down_ || !started_) {
    close(sock);
    return true;
  }
  ++stats_.accepted;
  if (static_cast<int>(conns_.size()) >= limits_.max_connections && !EvictOne()) {
    ++stats_.refused_full;
    WarnAtLimit("every one is being answered, so a new one gets 503");
    (void)!send(sock, k503, sizeof(k503) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    close(sock);
    return true;
  }
  c->opened = Clock::now();
  c->deadline = c->opened + ToChrono(limits_.header_timeout);
  Conn* raw = c.get();
  ++per_peer_[raw->peer];
  conns_[sock] = std::move(c);
  Watch(raw);
  return true;
}

void GuardedServer::Watch(Conn* c) {
  if (c->watched) return;
  c->watched = true;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.fd = c->fd;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c->fd, &ev);
}

void GuardedServer::Unwatch(Conn* c) {
  if (!c->watched) return;
  c->watched = false;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd, nullptr);
}

void GuardedServer::Forget(Conn* c) {
  if (--per_peer_[c->peer] <= 0) per_peer_.erase(c->peer);
  conns_.erase(c->fd);  // deletes c
}

void GuardedServer::CloseWith(Conn* c, const char* response) {
  Unwatch(c);
  if (response != nullptr) {
    (void)!send(c->fd, response, strlen(response), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  close(c->fd);
  Forget(c);
}

bool GuardedServer::EvictOne() {
  // The oldest waiting connection of the peer that holds the most: one client's
  // pile of idle connections goes before anyone else's.
  Conn* victim = nullptr;
  int victim_peer_count = 0;
  for (auto& [fd, c] : conns_) {
    if (c->state != ConnState::kIdle && c->state != ConnState::kHead) continue;
    int n = per_peer_[c->peer];
    if (victim == nullptr || n > victim_peer_count ||
        (n == victim_peer_count && c->opened < victim->opened)) {
      victim = c.get();
      victim_peer_count = n;
    }
  }
  if (victim == nullptr) return false;
  ++stats_.evicted;
  WarnAtLimit(absl::StrCat("closing the oldest waiting connection of ", victim->peer, " (",
                           victim_peer_count, " open) to admit a new one"));
  CloseWith(victim, nullptr);
  return true;
}

void GuardedServer::WarnAtLimit(const std::string& what) {
  Clock::time_point now = Clock::now();
  if (last_limit_warning_ != Clock::time_point() && now - last_limit_warning_ < std::chrono::minutes(1)) {
    return;
  }
  last_limit_warning_ = now;
  spdlog::warn("dashboard: {} connections open, the limit (--http-max-connections): {}; "
               "{} evicted and {} refused so far (logged at most once a minute)",
               conns_.size(), what, stats_.evicted, stats_.refused_full);
}

bool GuardedServer::DispatchIfComplete(Conn* c) {
  // httplib ends a head at its first line that is exactly CRLF.
  size_t from = c->scanned >= 2 ? c->scanned - 2 : 0;
  size_t end = c->buffer.find("\n\r\n", from);
  if (end == std::string::npos || end + 3 > static_cast<size_t>(limits_.max_head_bytes)) {
    c->scanned = c->buffer.size();
    return false;
  }
  Unwatch(c);
  c->state = ConnState::kReady;
  c->scanned = 0;
  ready_.push_back(c);
  ++stats_.requests;
  return true;
}

void GuardedServer::OnReadable(Conn* c) {
  char chunk[4096];
  const size_t cap = static_cast<size_t>(limits_.max_head_bytes) + 1;
  while (c->buffer.size() < cap) {
    ssize_t r = recv(c->fd, chunk, std::min(sizeof(chunk), cap - c->buffer.size()), MSG_DONTWAIT);
    if (r > 0) {
      if (c->state == ConnState::kIdle) {
        c->state = ConnState::kHead;
        // On a kept-alive connection the head's time starts with its first byte;
        // a new connection's started when it opened.
        if (c->requests > 0) c->deadline = Clock::now() + ToChrono(limits_.header_timeout);
      }
      c->buffer.append(chunk, static_cast<size_t>(r));
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (r < 0) {
      CloseWith(c, nullptr);  // the connection broke
      return;
    }
    // The client is done sending (r == 0); a complete head it sent first is
    // still answered (`printf 'GET / ...' | nc -N` does this).
    c->peer_done = true;
    break;
  }
  if (DispatchIfComplete(c)) return;
  if (c->peer_done) {
    CloseWith(c, nullptr);
    return;
  }
  if (c->buffer.size() > static_cast<size_t>(limits_.max_head_bytes)) {
    ++stats_.head_too_large;
    CloseWith(c, k431);
  }
}

void GuardedServer::ExpireDeadlines(Clock::time_point now) {
  std::vector<Conn*> expired;
  for (auto& [fd, c] : conns_) {
    if ((c->state == ConnState::kIdle || c->state == ConnState::kHead) && c->deadline <= now) {
      expired.push_back(c.get());
    }
  }
  for (Conn* c : expired) {
    if (c->state == ConnState::kHead) {
      ++stats_.header_timeouts;
      CloseWith(c, k408);
    } else if (c->requests > 0) {
      ++stats_.idle_closed;
      CloseWith(c, nullptr);
    } else {
      // A new connection that never sent a byte (browsers open some ahead of
      // need): no answer, as it asked nothing.
      ++stats_.header_timeouts;
      CloseWith(c, nullptr);
    }
  }
}

void GuardedServer::WaitingRoomLoop() {
  epoll_event events[64];
  for (;;) {
    int timeout_ms = 1000;
    {
      absl::MutexLock lock(&mu_);
      if (shutting_down_) return;
      Clock::time_point now = Clock::now();
      for (auto& [fd, c] : conns_) {
        if (c->state == ConnState::kIdle || c->state == ConnState::kHead) {
          timeout_ms = std::min(timeout_ms, MillisUntil(c->deadline, now));
        }
      }
    }
    // A connection a worker hands back meanwhile may have an earlier deadline;
    // it is enforced at most a second late.
    int n = epoll_wait(epoll_fd_, events, 64, timeout_ms);
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return;
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_fd_) {
        uint64_t count;
        (void)!::read(wake_fd_, &count, sizeof(count));
        continue;
      }
      // A socket closed earlier in this batch may have been accepted again under
      // the same number: reading it then is harmless (it is non-blocking).
      auto it = conns_.find(fd);
      if (it == conns_.end()) continue;
      Conn* c = it->second.get();
      if (c->state == ConnState::kIdle || c->state == ConnState::kHead) OnReadable(c);
    }
    ExpireDeadlines(Clock::now());
  }
}

void GuardedServer::WorkerLoop() {
  for (;;) {
    Conn* c = nullptr;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](GuardedServer* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) {
            return s->shutting_down_ || !s->ready_.empty();
          },
          this));
      if (shutting_down_) return;
      c = ready_.front();
      ready_.pop_front();
      c->state = ConnState::kBusy;
      c->deadline = Clock::now() + ToChrono(limits_.response_timeout);
    }
    Answer(c);
  }
}

void GuardedServer::Answer(Conn* c) {
  // While kBusy only this thread touches c's buffer and deadline.
  ++c->requests;
  bool close_connection = c->requests >= limits_.max_requests_per_connection;
  bool connection_closed = false;
  tls_close_after_response = false;
  ConnStream strm(c, c->deadline);
  bool ok = process_request(strm, close_connection, connection_closed, nullptr);
  strm.ConsumeRead();

  absl::MutexLock lock(&mu_);
  if (strm.timed_out()) ++stats_.response_timeouts;
  if (!ok || strm.failed() || close_connection || connection_closed ||
      tls_close_after_response || c->peer_done || shutting_down_) {
    CloseWith(c, nullptr);
    return;
  }
  // Kept alive: a pipelined next request may already be in the buffer.
  Clock::time_point now = Clock::now();
  if (c->buffer.empty()) {
    c->state = ConnState::kIdle;
    c->deadline = now + ToChrono(limits_.idle_timeout);
  } else {
    c->state = ConnState::kHead;
    c->deadline = now + ToChrono(limits_.header_timeout);
  }
  if (DispatchIfComplete(c)) return;
  if (c->buffer.size() > static_cast<size_t>(limits_.max_head_bytes)) {
    ++stats_.head_too_large;
    CloseWith(c, k431);
    return;
  }
  Watch(c);
}

}  // namespace sweep::dashboard_internal
