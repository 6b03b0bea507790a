#include "scheduler/server.h"

#include "absl/strings/str_cat.h"
#include "common/status_util.h"
#include "spdlog/spdlog.h"

namespace sweep {

absl::StatusOr<std::unique_ptr<SchedulerServer>> SchedulerServer::Start(
    const ServerOptions& o) {
  std::unique_ptr<SchedulerServer> s(new SchedulerServer());
  SWEEP_ASSIGN_OR_RETURN(s->store_, Store::Open(o.db_path));
  SWEEP_ASSIGN_OR_RETURN(s->core_,
                         Scheduler::Create(s->store_.get(), SystemClock::Get(), o.scheduler));
  s->worker_service_ = std::make_unique<WorkerServiceImpl>(s->core_.get());
  s->sweep_service_ = std::make_unique<SweepServiceImpl>(s->core_.get());
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(o.listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(s->worker_service_.get());
  builder.RegisterService(s->sweep_service_.get());
  builder.SetMaxReceiveMessageSize(16 << 20);
  s->server_ = builder.BuildAndStart();
  if (!s->server_ || port == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", o.listen, ": the address is in use or not local; pick "
        "another with --listen HOST:PORT"));
  }
  std::string host = o.listen.substr(0, o.listen.rfind(':'));
  s->address_ = absl::StrCat(host, ":", port);
  s->ticker_ = std::thread([raw = s.get()] {
    while (!raw->stop_.WaitForNotificationWithTimeout(absl::Milliseconds(250))) {
      raw->core_->Tick();
    }
  });
  spdlog::info("scheduler listening on {} (database {})", s->address_, o.db_path);
  return s;
}

void SchedulerServer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  core_->Shutdown();  // wakes lease calls that wait for work
  server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  stop_.Notify();
  if (ticker_.joinable()) ticker_.join();
}

SchedulerServer::~SchedulerServer() { Stop(); }

}  // namespace sweep
