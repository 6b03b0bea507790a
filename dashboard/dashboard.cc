#include "dashboard/dashboard.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/address.h"
#include "common/secret.h"
#include "common/status_util.h"
#include "dashboard/internal/assets.h"
#include "dashboard/internal/guarded_server.h"
#include "dashboard/internal/reader.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace sweep {
namespace {

using json = nlohmann::json;
using dashboard_internal::DbReader;

constexpr int kDefaultMaxPoints = 500;
constexpr int kMaxMaxPoints = 20000;
// Trials in one /trials answer and learning curves in one /metrics answer: enough for
// every sweep a person reads on one page, small enough to answer fast at 100,000.
constexpr int kDefaultTrialLimit = 2000;
constexpr int kDefaultSeriesLimit = 100;
constexpr int kMaxListLimit = 100000;

std::string RandomToken() {
  std::random_device rd;
  std::string out;
  for (int i = 0; i < 6; ++i) absl::StrAppend(&out, absl::Hex(rd(), absl::kZeroPad8));
  return out;
}

std::string CookieValue(const httplib::Request& req, const std::string& name) {
  for (size_t i = 0; i < req.get_header_value_count("Cookie"); ++i) {
    for (absl::string_view part : absl::StrSplit(req.get_header_value("Cookie", i), ';')) {
      part = absl::StripAsciiWhitespace(part);
      if (absl::ConsumePrefix(&part, name) && absl::ConsumePrefix(&part, "=")) {
        return std::string(part);
      }
    }
  }
  return "";
}

void SendJson(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace),
                  "application/json; charset=utf-8");
}

void SendError(httplib::Response& res, int status, const std::string& message) {
  SendJson(res, status, json{{"error", message}});
}

// API status codes by what the page should do next: 404 show "unknown", 503 retry.
void SendResult(httplib::Response& res, const absl::StatusOr<json>& result) {
  if (result.ok()) return SendJson(res, 200, *result);
  int status = 500;
  switch (result.status().code()) {
    case absl::StatusCode::kNotFound:
      status = 404;
      break;
    case absl::StatusCode::kInvalidArgument:
      status = 400;
      break;
    case absl::StatusCode::kUnavailable:
      status = 503;
      break;
    default:
      break;
  }
  SendError(res, status, std::string(result.status().message()));
}

// The integer query parameter `name` clamped to [1, kMaxListLimit], or `fallback`.
int ListLimit(const httplib::Request& req, const char* name, int fallback) {
  int n = fallback;
  if (req.has_param(name) && absl::SimpleAtoi(req.get_param_value(name), &n)) {
    return std::clamp(n, 1, kMaxListLimit);
  }
  return fallback;
}

int MaxPoints(const httplib::Request& req) {
  int n = kDefaultMaxPoints;
  if (req.has_param("max_points") && absl::SimpleAtoi(req.get_param_value("max_points"), &n)) {
    return std::clamp(n, 2, kMaxMaxPoints);
  }
  return kDefaultMaxPoints;
}

constexpr char kNeedTokenPage[] = R"(<!doctype html>
<html><head><meta charset="utf-8"><title>sweep: token required</title>
<style>body{font:15px system-ui,sans-serif;margin:15vh auto;max-width:36em;color:#1f2937}
code{background:#f3f4f6;padding:2px 5px;border-radius:4px}</style></head>
<body><h1>This dashboard needs its token</h1>
<p>It is served on a network address, so every request must carry the token that
<code>sweep scheduler</code> printed when it started. Open the URL it printed, of
the form <code>http://HOST:PORT/?token=...</code>.</p></body></html>
)";

}  // namespace

absl::StatusOr<HostPort> ParseHttpAddress(absl::string_view address) {
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad dashboard address '", address,
        "': expected HOST:PORT (127.0.0.1:8080, 0.0.0.0:8080, [::1]:8080), a port, or off"));
  };
  HostPort hp;
  absl::string_view port_text;
  if (address.empty()) return bad();
  if (address.front() == '[') {
    size_t close = address.find(']');
    if (close == absl::string_view::npos || close + 1 >= address.size() ||
        address[close + 1] != ':') {
      return bad();
    }
    hp.host = std::string(address.substr(1, close - 1));
    port_text = address.substr(close + 2);
  } else if (size_t colon = address.rfind(':'); colon != absl::string_view::npos) {
    hp.host = std::string(address.substr(0, colon));
    port_text = address.substr(colon + 1);
    if (hp.host.find(':') != std::string::npos) return bad();  // IPv6 needs brackets
  } else {
    hp.host = "127.0.0.1";
    port_text = address;
  }
  if (hp.host.empty() || !absl::SimpleAtoi(port_text, &hp.port) || hp.port < 0 || hp.port > 65535) {
    return bad();
  }
  return hp;
}

absl::StatusOr<std::unique_ptr<Dashboard>> Dashboard::Start(const DashboardOptions& o) {
  SWEEP_ASSIGN_OR_RETURN(HostPort hp, ParseHttpAddress(o.address));
  std::unique_ptr<Dashboard> d(new Dashboard());
  SWEEP_ASSIGN_OR_RETURN(d->reader_, DbReader::Open(o.db_path, o.clock));
  d->host_ = hp.host;
  if (!IsLoopbackHost(hp.host)) d->token_ = o.token.empty() ? RandomToken() : o.token;
  d->server_ = std::make_unique<dashboard_internal::GuardedServer>(o.limits);
  // The dashboard takes no request body (the checks refuse one before reading it).
  d->server_->set_payload_max_length(0);
  // httplib's default adds SO_REUSEPORT, which would let a second scheduler share
  // (and steal requests from) a busy port. SO_REUSEADDR alone only allows a quick
  // restart on the same port.
  d->server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  d->Route();
  bool bound = false;
  if (hp.port == 0) {
    d->port_ = d->server_->bind_to_any_port(hp.host);
    bound = d->port_ > 0;
  } else {
    bound = d->server_->bind_to_port(hp.host, hp.port);
    d->port_ = hp.port;
  }
  if (!bound) {
    return absl::UnavailableError(absl::StrCat(
        "dashboard: cannot listen on ", o.address,
        ": the port is in use or the address is not on this machine; pick another with "
        "--http HOST:PORT (port 0: any free port) or turn it off with --http off"));
  }
  d->server_->StartThreads();
  d->thread_ = std::thread([server = d->server_.get()] { server->listen_after_bind(); });
  // httplib's stop() does nothing until the accept loop runs: wait for it, so a
  // Stop() right after Start() cannot miss it.
  for (int i = 0; i < 5000 && !d->server_->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return d;
}

Dashboard::~Dashboard() { Stop(); }

void Dashboard::Stop() {
  if (stopped_ || !server_) return;
  stopped_ = true;
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_->Shutdown();
}

HttpStats Dashboard::stats() const {
  HttpStats s = server_ ? server_->stats() : HttpStats{};
  s.handled = handled_.load();
  s.refused = refused_.load();
  return s;
}

std::string Dashboard::address() const {
  return host_.find(':') != std::string::npos ? absl::StrCat("[", host_, "]:", port_)
                                              : absl::StrCat(host_, ":", port_);
}

std::string Dashboard::url() const {
  std::string host = host_;
  if (host == "0.0.0.0" || host == "::") {
    char name[256] = {};
    host = gethostname(name, sizeof(name) - 1) == 0 && name[0] ? name : "localhost";
  }
  if (host.find(':') != std::string::npos) host = absl::StrCat("[", host, "]");
  std::string url = absl::StrCat("http://", host, ":", port_, "/");
  if (!token_.empty()) absl::StrAppend(&url, "?token=", token_);
  return url;
}

void Dashboard::Route() {
  httplib::Server& s = *server_;
  DbReader* reader = reader_.get();

  s.set_default_headers({{"X-Content-Type-Options", "nosniff"},
                         {"Referrer-Policy", "no-referrer"},
                         {"X-Frame-Options", "DENY"}});
  // Every request passes here first, before any handler and before any body byte
  // is read: read-only methods, no body, Host check, token check. A refused
  // request also closes its connection, so nothing it sent after its head (a
  // body) is ever read.
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    using R = httplib::Server::HandlerResponse;
    auto refuse = [&](int status, const std::string& why, const char* page = nullptr) {
      ++refused_;
      if (page != nullptr) {
        res.status = status;
        res.set_content(page, "text/html; charset=utf-8");
      } else {
        SendError(res, status, why);
      }
      res.set_header("Connection", "close");
      return R::Handled;
    };
    if (req.method != "GET" && req.method != "HEAD") {
      res.set_header("Allow", "GET, HEAD");
      return refuse(405, "the dashboard is read-only: only GET and HEAD");
    }
    if (req.has_header("Transfer-Encoding") ||
        (req.has_header("Content-Length") && req.get_header_value("Content-Length") != "0")) {
      return refuse(413, "the dashboard takes no request body");
    }
    if (token_.empty()) {
      // Loopback: a page on another site must not reach us through DNS rebinding.
      if (req.has_header("Host") && !IsLoopbackAddress(req.get_header_value("Host"))) {
        return refuse(403, "the dashboard answers only to a loopback Host header");
      }
      ++handled_;
      return R::Unhandled;
    }
    const std::string cookie_name = absl::StrCat("sweep_token_", port_);
    std::string given;
    bool from_query = false;
    if (req.has_param("token")) {
      given = req.get_param_value("token");
      from_query = true;
    } else if (req.has_header("X-Sweep-Token")) {
      given = req.get_header_value("X-Sweep-Token");
    } else if (std::string a = req.get_header_value("Authorization");
               absl::StartsWithIgnoreCase(a, "bearer ") ||
               absl::StartsWithIgnoreCase(a, "token ")) {
      given = std::string(absl::StripAsciiWhitespace(a.substr(a.find(' ') + 1)));
    } else {
      given = CookieValue(req, cookie_name);
    }
    if (given.empty() || !ConstantTimeEquals(given, token_)) {
      int status = given.empty() ? 401 : 403;
      std::string why = given.empty()
                            ? "this dashboard needs its token: add ?token=... (printed by "
                              "the scheduler at start) or the X-Sweep-Token header"
                            : "wrong dashboard token";
      bool api = absl::StartsWith(req.path, "/api/");
      return refuse(status, why, api ? nullptr : kNeedTokenPage);
    }
    if (from_query) {
      res.set_header("Set-Cookie",
                     absl::StrCat(cookie_name, "=", token_, "; Path=/; HttpOnly; SameSite=Strict"));
    }
    ++handled_;
    return R::Unhandled;
  });

  s.Get("/api/health", [](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200, json{{"ok", true}});
  });
  s.Get("/api/sweeps", [reader](const httplib::Request&, httplib::Response& res) {
    SendResult(res, reader->Sweeps());
  });
  s.Get(R"(/api/sweeps/([^/]+))", [reader](const httplib::Request& req, httplib::Response& res) {
    SendResult(res, reader->Sweep(req.matches[1]));
  });
  s.Get(R"(/api/sweeps/([^/]+)/trials)",
        [reader](const httplib::Request& req, httplib::Response& res) {
          SendResult(res, reader->Trials(req.matches[1],
                                         ListLimit(req, "limit", kDefaultTrialLimit)));
        });
  s.Get(R"(/api/sweeps/([^/]+)/metrics)", [reader](const httplib::Request& req,
                                                   httplib::Response& res) {
    SendResult(res, reader->Metrics(req.matches[1], req.get_param_value("name"), MaxPoints(req),
                                    ListLimit(req, "series", kDefaultSeriesLimit)));
  });
  s.Get(R"(/api/trials/([^/]+))", [reader](const httplib::Request& req, httplib::Response& res) {
    SendResult(res, reader->Trial(req.matches[1], MaxPoints(req)));
  });
  s.Get("/api/workers", [reader](const httplib::Request&, httplib::Response& res) {
    SendResult(res, reader->Workers());
  });
  s.Get(R"(/api/.*)", [](const httplib::Request& req, httplib::Response& res) {
    SendError(res, 404, absl::StrCat("no API endpoint ", req.path, " (see docs/dashboard.md)"));
  });

  // The web app, from the files compiled into the binary.
  s.Get(R"(/.*)", [](const httplib::Request& req, httplib::Response& res) {
    const dashboard_internal::Asset* a =
        dashboard_internal::FindAsset(req.path == "/" ? "/index.html" : req.path);
    if (a == nullptr) {
      res.status = 404;
      res.set_content(absl::StrCat("not found: ", req.path, "\n"), "text/plain; charset=utf-8");
      return;
    }
    std::string etag = absl::StrCat("\"", a->etag, "\"");
    res.set_header("ETag", etag);
    res.set_header("Cache-Control", "no-cache");
    if (absl::StartsWith(a->content_type, "text/html")) {
      res.set_header("Content-Security-Policy",
                     "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                     "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'");
    }
    if (req.get_header_value("If-None-Match") == etag) {
      res.status = 304;
      return;
    }
    res.set_content(a->data, a->size, a->content_type);
  });
}

}  // namespace sweep
