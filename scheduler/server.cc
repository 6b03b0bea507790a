#include "scheduler/server.h"

#include <signal.h>

#include "absl/strings/str_cat.h"
#include "common/address.h"
#include "common/rpc.h"
#include "common/status_util.h"
#include "spdlog/spdlog.h"

namespace sweep {

absl::StatusOr<std::unique_ptr<SchedulerServer>> SchedulerServer::Start(
    const ServerOptions& o) {
  bool loopback = IsLoopbackAddress(o.listen);
  if (!loopback && o.token.empty() && !o.insecure) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--listen ", o.listen, " reaches beyond this machine, so anyone who can connect "
        "could run commands on your workers: give --token-file FILE (workers and the CLI "
        "need the same file), or --insecure to run without one"));
  }
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    return absl::InvalidArgumentError("give both --tls-cert and --tls-key, or neither");
  }
  if (o.scheduler.max_spec_bytes < 1 ||
      o.scheduler.max_spec_bytes > SchedulerOptions::kMaxSpecBytesLimit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max-spec-bytes must be from 1 to ", SchedulerOptions::kMaxSpecBytesLimit,
        " (16 MiB, the most the spec parser reads); got ", o.scheduler.max_spec_bytes));
  }
  if (o.scheduler.max_workers_per_host < 1) {
    return absl::InvalidArgumentError("--max-workers-per-host must be at least 1");
  }
  // A database that may not grow (RLIMIT_FSIZE) must fail its writes, which the
  // scheduler reports and retries, not kill the process.
  signal(SIGXFSZ, SIG_IGN);
  std::unique_ptr<SchedulerServer> s(new SchedulerServer());
  SWEEP_ASSIGN_OR_RETURN(s->store_, Store::Open(o.db_path));
  SWEEP_RETURN_IF_ERROR(s->store_->CheckpointInBackground(absl::Milliseconds(200)));
  SWEEP_ASSIGN_OR_RETURN(s->core_,
                         Scheduler::Create(s->store_.get(), SystemClock::Get(), o.scheduler));
  const MessageLimits limits = MessageLimits::ForSpecsOf(o.scheduler.max_spec_bytes);
  s->worker_service_ = std::make_unique<WorkerServiceImpl>(s->core_.get(), o.token, limits);
  s->sweep_service_ = std::make_unique<SweepServiceImpl>(s->core_.get(), o.token, limits);
  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (!o.tls_cert.empty()) {
    grpc::SslServerCredentialsOptions tls;
    tls.pem_key_cert_pairs.push_back({o.tls_key, o.tls_cert});
    creds = grpc::SslServerCredentials(tls);
  }
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(o.listen, creds, &port);
  builder.RegisterService(s->worker_service_.get());
  builder.RegisterService(s->sweep_service_.get());
  // gRPC refuses anything larger as it arrives; each RPC has its own, smaller limit.
  builder.SetMaxReceiveMessageSize(static_cast<int>(limits.Largest()));
  s->server_ = builder.BuildAndStart();
  if (!s->server_ || port == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", o.listen, ": the address is in use or not local; pick "
        "another with --listen HOST:PORT"));
  }
  std::string host = o.listen.substr(0, o.listen.rfind(':'));
  s->address_ = absl::StrCat(host, ":", port);
  if (o.http != "off") {
    DashboardOptions d;
    d.address = o.http;
    d.db_path = o.db_path;
    d.token = o.http_token.empty() ? o.token : o.http_token;
    d.limits = o.http_limits;
    absl::StatusOr<std::unique_ptr<Dashboard>> dashboard = Dashboard::Start(d);
    if (!dashboard.ok() && o.http_fallback && absl::IsUnavailable(dashboard.status())) {
      absl::StatusOr<HostPort> hp = ParseHttpAddress(o.http);
      if (hp.ok()) {
        d.address = hp->host.find(':') != std::string::npos
                        ? absl::StrCat("[", hp->host, "]:0")
                        : absl::StrCat(hp->host, ":0");
        dashboard = Dashboard::Start(d);
        if (dashboard.ok()) {
          spdlog::warn("dashboard: {} is in use; serving on {} instead", o.http,
                       (*dashboard)->address());
        }
      }
    }
    if (!dashboard.ok()) {
      s->Stop();
      return dashboard.status();
    }
    s->dashboard_ = std::move(*dashboard);
    spdlog::info("dashboard on {}", s->dashboard_->url());
  }
  s->ticker_ = std::thread([raw = s.get()] {
    while (!raw->stop_.WaitForNotificationWithTimeout(absl::Milliseconds(250))) {
      raw->core_->Tick();
    }
  });
  spdlog::info("scheduler listening on {} ({}, {}; database {})", s->address_,
               o.tls_cert.empty() ? "plaintext" : "TLS",
               !o.token.empty() ? "token required"
               : loopback       ? "loopback only, no token"
                                : "INSECURE: no token, reachable beyond this machine",
               o.db_path);
  return s;
}

void SchedulerServer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  core_->Shutdown();  // wakes lease calls that wait for work
  server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  stop_.Notify();
  if (ticker_.joinable()) ticker_.join();
  if (dashboard_) dashboard_->Stop();
}

SchedulerServer::~SchedulerServer() { Stop(); }

}  // namespace sweep
