// Hostile HTTP clients against the dashboard: connections that trickle
// a header line every half second, piles of idle connections, oversized heads,
// requests without the token. Each is made with raw sockets against a real server:
// the `sweep scheduler` process for the attack as a user would meet it, and a
// Dashboard in this process where the test reads the server's counters.
//
// Every wait is for an event (a socket's end of stream, a counter, a log line),
// bounded generously; times are measured and printed, not asserted tightly.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <iostream>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/process.h"
#include "dashboard/dashboard.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "scheduler/store.h"
#include "tests/testing.h"

namespace sweep {
namespace {

using ::sweep::testing::ReadFile;
using ::sweep::testing::TempDir;
using ::sweep::testing::WaitFor;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// A bound for waits that end as soon as their event happens: long, so that only
// a real failure reaches it on a loaded machine.
constexpr absl::Duration kPatience = absl::Seconds(60);

// A TCP connection to 127.0.0.1:`port`; -1 when connect fails.
int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  int yes = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
  return fd;
}

bool Send(int fd, const std::string& bytes) {
  return send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
}

// Reads from `fd` until the server ends the connection (read returns 0 or an
// error) or `timeout` passes; returns what was read and whether it ended.
struct ReadResult {
  std::string data;
  bool closed = false;
};
ReadResult ReadUntilClosed(int fd, absl::Duration timeout) {
  ReadResult r;
  absl::Time deadline = absl::Now() + timeout;
  char buf[4096];
  while (absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now())) + 1;
    if (poll(&p, 1, ms) <= 0) continue;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      r.closed = true;
      return r;
    }
    r.data.append(buf, static_cast<size_t>(n));
  }
  return r;
}

int CountOf(const std::string& s, const std::string& text) {
  int n = 0;
  for (size_t at = s.find(text); at != std::string::npos; at = s.find(text, at + 1)) ++n;
  return n;
}

// Reads until `text` has arrived `times` times (or the connection ended, or the
// bound passed).
std::string ReadUntil(int fd, const std::string& text, absl::Duration timeout, int times = 1) {
  std::string out;
  absl::Time deadline = absl::Now() + timeout;
  char buf[4096];
  while (CountOf(out, text) < times && absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Whether the server has ended `fd` (end of stream or error pending), without waiting.
bool EndedByServer(int fd) {
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  char c;
  return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) <= 0;
}

// Waits until the server has ended every connection in `fds` (each read returns 0
// or an error); returns, per connection, how long after `since` that was seen, or
// nullopt for one still open at the bound.
std::vector<std::optional<absl::Duration>> WaitAllEnded(const std::vector<int>& fds,
                                                        absl::Time since, absl::Duration bound) {
  std::vector<std::optional<absl::Duration>> ended(fds.size());
  size_t left = fds.size();
  absl::Time deadline = absl::Now() + bound;
  std::vector<pollfd> ps;
  std::vector<size_t> which;
  while (left > 0 && absl::Now() < deadline) {
    ps.clear();
    which.clear();
    for (size_t i = 0; i < fds.size(); ++i) {
      if (ended[i]) continue;
      ps.push_back({fds[i], POLLIN | POLLRDHUP, 0});
      which.push_back(i);
    }
    if (poll(ps.data(), ps.size(), 200) <= 0) continue;
    for (size_t k = 0; k < ps.size(); ++k) {
      if (ps[k].revents == 0) continue;
      char buf[4096];
      ssize_t n;
      // Drain what the server said (a 408) before its end of stream.
      while ((n = recv(ps[k].fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
      }
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        ended[which[k]] = absl::Now() - since;
        --left;
      }
    }
  }
  return ended;
}

// "min/median/max" of the seen durations, in seconds.
std::string Spread(std::vector<std::optional<absl::Duration>> ds) {
  std::vector<double> s;
  for (auto& d : ds) {
    if (d) s.push_back(absl::ToDoubleSeconds(*d));
  }
  if (s.empty()) return "none";
  std::sort(s.begin(), s.end());
  return absl::StrCat(s.front(), "/", s[s.size() / 2], "/", s.back(), " s");
}

void CloseAll(std::vector<int>& fds) {
  for (int fd : fds) {
    if (fd >= 0) close(fd);
  }
  fds.clear();
}

// Connections that each send a request line, then one header line every half
// second for as long as the server lets them (a slowloris attack).
class Trickler {
 public:
  Trickler(int port, int n) {
    for (int i = 0; i < n; ++i) {
      int fd = Connect(port);
      EXPECT_GE(fd, 0);
      if (fd < 0) continue;
      EXPECT_TRUE(Send(fd, "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
      fds_.push_back(fd);
    }
    opened_ = absl::Now();
    thread_ = std::thread([this] {
      for (int line = 0; !stop_.load(); ++line) {
        absl::SleepFor(absl::Milliseconds(500));  // the attack's pace
        for (int fd : fds_) Send(fd, absl::StrCat("X-Slow-", line, ": still here\r\n"));
        rounds_.fetch_add(1);
      }
    });
  }
  ~Trickler() {
    stop_ = true;
    thread_.join();
    CloseAll(fds_);
  }
  const std::vector<int>& fds() const { return fds_; }
  absl::Time opened() const { return opened_; }
  int rounds() const { return rounds_.load(); }

 private:
  std::vector<int> fds_;
  absl::Time opened_;
  std::atomic<bool> stop_{false};
  std::atomic<int> rounds_{0};
  std::thread thread_;
};

// GET /api/health on a fresh connection with a client timeout of a few seconds;
// returns the status (0: no answer) and sets *took.
int Health(int port, absl::Duration* took, const httplib::Headers& headers = {}) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(5);
  c.set_read_timeout(5);
  c.set_write_timeout(5);
  absl::Time start = absl::Now();
  httplib::Result r = c.Get("/api/health", headers);
  *took = absl::Now() - start;
  if (!r) return 0;
  if (r->status == 200) {
    EXPECT_EQ(r->body, R"({"ok":true})");
  }
  return r->status;
}

// ------------------------------------------------ the real scheduler process

class DashboardUnderAttackTest : public ::testing::Test {
 protected:
  // Starts `sweep scheduler` with its dashboard on a free loopback port and the
  // given extra flags; sets port_ from the URL it logs.
  void StartScheduler(const std::vector<std::string>& flags) {
    SpawnOptions o;
    o.argv = {testing::SweepBin(), "scheduler", "--listen", "127.0.0.1:0",
              "--db", dir_ / "sweeps.db", "--http", "127.0.0.1:0", "--log-level", "info"};
    o.argv.insert(o.argv.end(), flags.begin(), flags.end());
    o.stdout_path = dir_ / "scheduler.log";
    o.stderr_path = dir_ / "scheduler.log";
    auto child = ChildProcess::Spawn(o);
    ASSERT_TRUE(child.ok()) << child.status();
    scheduler_.emplace(std::move(*child));
    std::smatch m;
    std::regex url(R"(dashboard on http://[^:/]+:(\d+)/)");
    std::string log;
    ASSERT_TRUE(WaitFor(
        [&] {
          log = ReadFile(dir_ / "scheduler.log");
          return std::regex_search(log, m, url);
        },
        kPatience))
        << log;
    port_ = std::stoi(m[1]);
  }
  void TearDown() override {
    if (scheduler_) scheduler_->Stop(absl::Seconds(5));
  }

  TempDir dir_;
  std::optional<ChildProcess> scheduler_;
  int port_ = 0;
};

TEST_F(DashboardUnderAttackTest, HealthAnswersWhileSlowAndIdleConnectionsStayOpen) {
  constexpr int kHeaderTimeoutS = 6;
  StartScheduler({"--http-header-timeout", absl::StrCat(kHeaderTimeoutS)});
  absl::Duration took;
  ASSERT_EQ(Health(port_, &took), 200);
  std::cout << "[ measure ] /api/health, no attack: " << took << "\n";

  Trickler slow(port_, 8);
  std::vector<int> idle;
  for (int i = 0; i < 200; ++i) idle.push_back(Connect(port_));
  absl::Time idle_opened = absl::Now();
  ASSERT_EQ(std::count(idle.begin(), idle.end(), -1), 0);
  // The attack is in place once every trickler has sent two more header lines.
  ASSERT_TRUE(WaitFor([&] { return slow.rounds() >= 2; }, kPatience));

  std::vector<absl::Duration> tooks;
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(Health(port_, &took), 200) << "request " << i << " during the attack";
    tooks.push_back(took);
  }
  // The attackers were all still connected while it answered.
  for (int fd : slow.fds()) EXPECT_FALSE(EndedByServer(fd)) << "a trickler was cut off early";
  for (int fd : idle) EXPECT_FALSE(EndedByServer(fd)) << "an idle connection was cut off early";
  std::cout << "[ measure ] /api/health under 8 slow + 200 idle connections: "
            << absl::StrJoin(tooks, ", ", absl::StreamFormatter()) << "\n";
  RecordProperty("health_latency_under_attack_max_ms",
                 static_cast<int>(absl::ToInt64Milliseconds(*std::max_element(tooks.begin(), tooks.end()))));

  // Then the server ends every attacker at its header timeout (counted from the
  // connection's start, however many lines trickled in), not when they stop.
  auto slow_ended = WaitAllEnded(slow.fds(), slow.opened(), kPatience);
  auto idle_ended = WaitAllEnded(idle, idle_opened, kPatience);
  EXPECT_EQ(std::count(slow_ended.begin(), slow_ended.end(), std::nullopt), 0)
      << "tricklers still open after " << kPatience;
  EXPECT_EQ(std::count(idle_ended.begin(), idle_ended.end(), std::nullopt), 0)
      << "idle connections still open after " << kPatience;
  std::cout << "[ measure ] header timeout " << kHeaderTimeoutS
            << " s; tricklers ended after (min/median/max) " << Spread(slow_ended)
            << "; idle connections after " << Spread(idle_ended) << "\n";
  CloseAll(idle);
  ASSERT_EQ(Health(port_, &took), 200) << "and it still answers afterwards";
}

TEST_F(DashboardUnderAttackTest, ATrickledHeadGets408AtTheHeaderTimeout) {
  StartScheduler({"--http-header-timeout", "2"});
  Trickler slow(port_, 1);
  ReadResult r = ReadUntilClosed(slow.fds()[0], kPatience);
  EXPECT_TRUE(r.closed);
  EXPECT_THAT(r.data, StartsWith("HTTP/1.1 408 "));
  EXPECT_GE(slow.rounds(), 1) << "it kept sending lines meanwhile";
}

// ------------------------------------------------ a Dashboard in this process

// A Dashboard over an empty sweep database, with `limits`.
class DashboardLimitsTest : public ::testing::Test {
 protected:
  void Start(const HttpLimits& limits, const std::string& address = "127.0.0.1:0",
             const std::string& token = "") {
    if (!store_) {
      auto opened = Store::Open(dir_ / "sweeps.db");
      ASSERT_TRUE(opened.ok()) << opened.status();
      store_ = std::move(*opened);
    }
    DashboardOptions o;
    o.address = address;
    o.db_path = dir_ / "sweeps.db";
    o.token = token;
    o.limits = limits;
    auto started = Dashboard::Start(o);
    ASSERT_TRUE(started.ok()) << started.status();
    dashboard_ = std::move(*started);
    port_ = dashboard_->port();
  }
  void TearDown() override { CloseAll(fds_); }

  static constexpr char kHugeAnswer[] = "/api/trials/5eed0001-0000?max_points=20000";

  // Adds a trial whose answer at kHugeAnswer (every series unthinned, about 22
  // bytes a point) is three times what the server's socket buffer may grow to
  // (tcp_wmem's maximum, 4 MB by default), so that writing it waits for a reader.
  // Returns the answer's approximate size in bytes.
  int64_t AddTrialWithAHugeAnswer() {
    SweepRow sweep;
    sweep.id = "5eed0001";
    sweep.name = "big";
    sweep.spec_yaml = "name: big\n";
    sweep.created_at = 1;
    EXPECT_TRUE(store_->InsertSweep(sweep).ok());
    TrialRow trial;
    trial.id = "5eed0001-0000";
    trial.sweep_id = sweep.id;
    trial.state = "running";
    trial.params_json = "{}";
    trial.argv_json = "[]";
    trial.attempt = 1;
    EXPECT_TRUE(store_->UpsertTrial(trial).ok());
    int64_t wmem_max = 4 << 20;
    std::vector<std::string> wmem = absl::StrSplit(ReadFile("/proc/sys/net/ipv4/tcp_wmem"),
                                                   absl::ByAnyChar(" \t\n"), absl::SkipEmpty());
    if (wmem.size() == 3) (void)absl::SimpleAtoi(wmem[2], &wmem_max);
    const int64_t metrics = std::max<int64_t>(30, 3 * wmem_max / (20000 * 22) + 1);
    std::vector<MetricRow> points;
    for (int m = 0; m < metrics; ++m) {
      for (int step = 0; step < 20000; ++step) {
        points.push_back({1, step, absl::StrCat("metric_", m), 0.123456789 * step, 2});
      }
    }
    trial.last_seq = 1;
    EXPECT_TRUE(store_->AppendMetrics(trial, points).ok());
    return metrics * 20000 * 22;
  }

  // Sends GET `path` on a connection with a small receive window that never reads.
  int AskWithoutReading(const std::string& path) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    fds_.push_back(fd);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_TRUE(Send(fd, absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")));
    return fd;
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Dashboard> dashboard_;
  int port_ = 0;
  std::vector<int> fds_;  // closed at the end
};

TEST_F(DashboardLimitsTest, AtTheConnectionLimitANewConnectionEndsTheOldestWaitingOne) {
  HttpLimits limits;
  limits.max_connections = 16;
  limits.header_timeout = absl::Seconds(600);  // only the limit ends them here
  Start(limits);
  for (int i = 0; i < 40; ++i) fds_.push_back(Connect(port_));
  ASSERT_TRUE(WaitFor([&] { return dashboard_->stats().accepted == 40; }, kPatience));
  HttpStats s = dashboard_->stats();
  EXPECT_EQ(s.open, 16);
  EXPECT_EQ(s.evicted, 24);
  // The oldest 24 were ended, the newest 16 are open.
  auto ended = WaitAllEnded({fds_.begin(), fds_.begin() + 24}, absl::Now(), kPatience);
  EXPECT_EQ(std::count(ended.begin(), ended.end(), std::nullopt), 0);
  for (size_t i = 24; i < fds_.size(); ++i) EXPECT_FALSE(EndedByServer(fds_[i])) << i;

  absl::Duration took;
  EXPECT_EQ(Health(port_, &took), 200) << "a new client still gets in";
  std::cout << "[ measure ] /api/health at the connection limit: " << took << "\n";
  EXPECT_EQ(dashboard_->stats().evicted, 25);
  EXPECT_TRUE(WaitFor([&] { return EndedByServer(fds_[24]); }, kPatience))
      << "it took the place of the oldest waiting one";
}

TEST_F(DashboardLimitsTest, AHeadLargerThanTheLimitGets431AndTheConnectionEnds) {
  HttpLimits limits;
  limits.max_head_bytes = 4096;
  Start(limits);
  int fd = Connect(port_);
  fds_.push_back(fd);
  std::string head = "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  while (head.size() < 5000) head += "X-Filler: 0123456789012345678901234567890123456789\r\n";
  ASSERT_TRUE(Send(fd, head));  // no blank line: the head never ends
  ReadResult r = ReadUntilClosed(fd, kPatience);
  EXPECT_TRUE(r.closed);
  EXPECT_THAT(r.data, StartsWith("HTTP/1.1 431 "));
  EXPECT_EQ(dashboard_->stats().head_too_large, 1);
}

TEST_F(DashboardLimitsTest, AKeptAliveConnectionIsAnsweredAgainThenEndedWhenIdle) {
  HttpLimits limits;
  limits.idle_timeout = absl::Seconds(1);
  Start(limits);
  int fd = Connect(port_);
  fds_.push_back(fd);
  // Two requests in one write (pipelined), then a third on the same connection.
  const std::string get = "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  ASSERT_TRUE(Send(fd, get + get));
  std::string two = ReadUntil(fd, R"({"ok":true})", kPatience, 2);
  EXPECT_EQ(CountOf(two, "HTTP/1.1 200 OK"), 2) << two;
  ASSERT_TRUE(Send(fd, get));
  EXPECT_THAT(ReadUntil(fd, R"({"ok":true})", kPatience), HasSubstr("HTTP/1.1 200 OK"));
  absl::Time answered = absl::Now();
  ReadResult r = ReadUntilClosed(fd, kPatience);
  EXPECT_TRUE(r.closed);
  EXPECT_EQ(r.data, "") << "an idle connection is ended without a word";
  std::cout << "[ measure ] idle timeout 1 s; ended after " << absl::Now() - answered << "\n";
  HttpStats s = dashboard_->stats();
  EXPECT_EQ(s.idle_closed, 1);
  EXPECT_EQ(s.requests, 3);
}

TEST_F(DashboardLimitsTest, AClientThatDoesNotReadItsAnswerIsCutOffAtTheResponseTimeout) {
  HttpLimits limits;
  limits.response_timeout = absl::Seconds(1);
  Start(limits);
  int64_t size = AddTrialWithAHugeAnswer();
  int fd = AskWithoutReading(kHugeAnswer);
  absl::Time asked = absl::Now();
  ASSERT_TRUE(WaitFor([&] { return dashboard_->stats().response_timeouts == 1; }, kPatience));
  std::cout << "[ measure ] response timeout 1 s; cut off after " << absl::Now() - asked
            << " (the handler's own time included)\n";
  absl::Duration took;
  EXPECT_EQ(Health(port_, &took), 200);
  ReadResult r = ReadUntilClosed(fd, kPatience);
  EXPECT_TRUE(r.closed);
  EXPECT_LT(static_cast<int64_t>(r.data.size()), size) << "it was cut short";
  std::cout << "[ measure ] of the answer (about " << size << " bytes), " << r.data.size()
            << " arrived\n";
}

TEST_F(DashboardLimitsTest, WhenEveryConnectionIsBeingAnsweredANewOneGets503) {
  HttpLimits limits;
  limits.max_connections = 1;
  Start(limits);
  AddTrialWithAHugeAnswer();
  AskWithoutReading(kHugeAnswer);  // the one connection, busy writing its answer
  ASSERT_TRUE(WaitFor([&] { return dashboard_->stats().requests == 1; }, kPatience));
  int fd = Connect(port_);
  fds_.push_back(fd);
  ReadResult r = ReadUntilClosed(fd, kPatience);
  EXPECT_TRUE(r.closed);
  EXPECT_THAT(r.data, StartsWith("HTTP/1.1 503 "));
  EXPECT_EQ(dashboard_->stats().refused_full, 1);
  EXPECT_EQ(dashboard_->stats().evicted, 0) << "the busy one was left alone";
}

TEST_F(DashboardLimitsTest, AClientThatShutsDownItsSideAfterTheHeadIsStillAnswered) {
  Start(HttpLimits{});
  int fd = Connect(port_);
  fds_.push_back(fd);
  ASSERT_TRUE(Send(fd, "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  shutdown(fd, SHUT_WR);
  ReadResult r = ReadUntilClosed(fd, kPatience);
  EXPECT_TRUE(r.closed);
  EXPECT_THAT(r.data, StartsWith("HTTP/1.1 200 OK"));
  EXPECT_THAT(r.data, HasSubstr(R"({"ok":true})"));
}

TEST_F(DashboardLimitsTest, BeyondLoopbackARequestWithoutTheTokenIsRefusedBeforeAnyHandler) {
  HttpLimits limits;
  Start(limits, "0.0.0.0:0", "s3cret");
  ASSERT_EQ(dashboard_->token(), "s3cret");

  // Without the token: 401, and no handler ran.
  absl::Duration took;
  EXPECT_EQ(Health(port_, &took), 401);
  EXPECT_EQ(dashboard_->stats().handled, 0);
  EXPECT_EQ(dashboard_->stats().refused, 1);

  // A request that announces a 1 GiB body it never sends is refused at once, on
  // its head alone, and its connection ended: no byte of the body is waited for.
  for (const char* method : {"POST", "GET"}) {
    int fd = Connect(port_);
    fds_.push_back(fd);
    ASSERT_TRUE(Send(fd, absl::StrCat(method, " /api/sweeps HTTP/1.1\r\nHost: x\r\n"
                                              "Content-Length: 1073741824\r\n\r\n")));
    ReadResult r = ReadUntilClosed(fd, kPatience);
    EXPECT_TRUE(r.closed) << method;
    EXPECT_THAT(r.data, StartsWith("HTTP/1.1 4")) << method;
    EXPECT_THAT(r.data, HasSubstr("Connection: close")) << method;
  }
  EXPECT_EQ(dashboard_->stats().handled, 0);
  EXPECT_EQ(dashboard_->stats().refused, 3);

  // With it: answered.
  EXPECT_EQ(Health(port_, &took, {{"X-Sweep-Token", "s3cret"}}), 200);
  EXPECT_EQ(dashboard_->stats().handled, 1);
}

TEST_F(DashboardLimitsTest, StopEndsWaitingConnectionsAtOnce) {
  HttpLimits limits;
  limits.header_timeout = absl::Seconds(600);
  Start(limits);
  for (int i = 0; i < 10; ++i) fds_.push_back(Connect(port_));
  ASSERT_TRUE(Send(fds_[0], "GET /api/health HTTP/1.1\r\n"));  // a head half sent
  ASSERT_TRUE(WaitFor([&] { return dashboard_->stats().accepted == 10; }, kPatience));
  absl::Time start = absl::Now();
  dashboard_->Stop();
  std::cout << "[ measure ] Stop() with 10 waiting connections: " << absl::Now() - start << "\n";
  auto ended = WaitAllEnded(fds_, start, kPatience);
  EXPECT_EQ(std::count(ended.begin(), ended.end(), std::nullopt), 0);
}

}  // namespace
}  // namespace sweep
