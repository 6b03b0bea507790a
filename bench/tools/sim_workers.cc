// sweep-bench-sim-workers: many light worker slots in one process, speaking the
// worker protocol to a real `sweep scheduler` (the scale benchmark of bench/bench.py).
//
//   sweep-bench-sim-workers --scheduler ADDR --workers 1000 [--channels 16]
//       [--trial-min 2 --trial-max 8] [--report-every 1] [--seed 1] --out FILE.json
//
// Each simulated slot registers, then loops: LeaseTrial (long poll), "runs" the trial
// for a seeded random time while sending one metric point every --report-every
// seconds and a heartbeat every heartbeat interval the scheduler asked for, then
// FinishTrial(COMPLETED). It stops when the scheduler has had no trial for it for
// --idle-exit seconds. Every call's latency is recorded per kind; the JSON output has
// counts, median, 99th percentile and maximum in milliseconds. "lease" is the
// latency of LeaseTrial calls that returned a trial (the dispatch latency), each
// slot's first one apart ("lease_first").
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "common/rpc.h"
#include "nlohmann/json.hpp"
#include "sweep/v1/sweep.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Latencies {
  std::mutex mu;
  std::map<std::string, std::vector<double>> ms;
  std::map<std::string, int64_t> errors;
  std::map<std::string, std::string> first_error;  // kind -> the first error's message
  void Add(const std::string& kind, Clock::time_point start) {
    double v = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    std::lock_guard<std::mutex> l(mu);
    ms[kind].push_back(v);
  }
  void Error(const std::string& kind, const grpc::Status& st) {
    std::lock_guard<std::mutex> l(mu);
    if (errors[kind]++ == 0) {
      first_error[kind] = absl::StrCat(st.error_code(), ": ", st.error_message());
    }
  }
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

struct Options {
  std::string scheduler;
  std::string token_file;
  int workers = 1000;
  int channels = 16;
  double trial_min = 2, trial_max = 8;
  double report_every = 1;
  double idle_exit = 3;
  uint32_t seed = 1;
  std::string out;
};

void RunSlot(const Options& o, const sweep::RpcSecurity& sec,
             std::shared_ptr<grpc::Channel> channel, int index, Latencies* lat,
             std::atomic<int64_t>* trials_done) {
  namespace v1 = sweep::v1;
  auto stub = v1::WorkerService::NewStub(channel);
  std::mt19937_64 rng(o.seed * 1000003ULL + static_cast<uint64_t>(index));
  std::uniform_real_distribution<double> duration(o.trial_min, o.trial_max);
  auto call = [&](auto fn, const std::string& kind) {
    grpc::ClientContext ctx;
    sweep::Authorize(&ctx, sec);
    Clock::time_point start = Clock::now();
    grpc::Status st = fn(&ctx);
    if (!st.ok()) {
      lat->Error(kind, st);
    } else {
      lat->Add(kind, start);
    }
    return st;
  };

  v1::RegisterRequest reg;
  reg.set_host(absl::StrCat("sim-", index / 8));
  reg.set_pid(index);
  reg.set_slot(index % 8);
  reg.set_version("sim");
  v1::RegisterResponse reg_resp;
  if (!call([&](grpc::ClientContext* c) { return stub->Register(c, reg, &reg_resp); },
            "register").ok()) {
    return;
  }
  const std::string id = reg_resp.worker_id();
  const auto heartbeat = std::chrono::milliseconds(reg_resp.heartbeat_interval_ms());
  Clock::time_point last_work = Clock::now();
  bool first = true;
  while (true) {
    v1::LeaseTrialRequest lr;
    lr.set_worker_id(id);
    lr.set_wait_ms(1000);
    v1::LeaseTrialResponse lease;
    Clock::time_point start = Clock::now();
    grpc::ClientContext ctx;
    sweep::Authorize(&ctx, sec);
    grpc::Status st = stub->LeaseTrial(&ctx, lr, &lease);
    if (!st.ok()) {
      lat->Error("lease", st);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    } else if (lease.has_trial()) {
      // A slot's first lease waits behind the start-up rush of 1,000 registrations;
      // it is kept apart from the steady state.
      lat->Add(first ? "lease_first" : "lease", start);
      first = false;
    }
    if (!st.ok() || !lease.has_trial()) {
      if (lease.drain()) return;
      if (Clock::now() - last_work > std::chrono::duration<double>(o.idle_exit)) return;
      continue;
    }
    const v1::TrialAssignment& t = lease.trial();
    Clock::time_point end =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(duration(rng)));
    Clock::time_point next_report = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                       std::chrono::duration<double>(o.report_every));
    Clock::time_point next_beat = Clock::now() + heartbeat;
    int64_t seq = 0, step = 0;
    bool stop = false;
    while (!stop && Clock::now() < end) {
      Clock::time_point wake = std::min({end, next_report, next_beat});
      std::this_thread::sleep_until(wake);
      if (Clock::now() >= next_report) {
        v1::ReportMetricsRequest r;
        r.set_worker_id(id);
        r.set_trial_id(t.trial_id());
        r.set_epoch(t.epoch());
        r.set_seq(++seq);
        v1::MetricPoint* p = r.add_points();
        p->set_step(++step);
        p->set_name("loss");
        p->set_value(1.0 / static_cast<double>(step));
        p->set_time(std::chrono::duration<double>(
                        std::chrono::system_clock::now().time_since_epoch()).count());
        v1::ReportMetricsResponse rr;
        if (call([&](grpc::ClientContext* c) { return stub->ReportMetrics(c, r, &rr); },
                 "report").ok()) {
          stop = rr.stop();
        }
        next_report += std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(o.report_every));
      }
      if (Clock::now() >= next_beat) {
        v1::HeartbeatRequest h;
        h.set_worker_id(id);
        v1::RunningTrial* rt = h.add_running();
        rt->set_trial_id(t.trial_id());
        rt->set_epoch(t.epoch());
        v1::HeartbeatResponse hr;
        call([&](grpc::ClientContext* c) { return stub->Heartbeat(c, h, &hr); }, "heartbeat");
        next_beat += heartbeat;
      }
    }
    v1::FinishTrialRequest f;
    f.set_worker_id(id);
    f.set_trial_id(t.trial_id());
    f.set_epoch(t.epoch());
    f.set_outcome(stop ? v1::TRIAL_OUTCOME_STOPPED : v1::TRIAL_OUTCOME_COMPLETED);
    v1::FinishTrialResponse fr;
    call([&](grpc::ClientContext* c) { return stub->FinishTrial(c, f, &fr); }, "finish");
    ++*trials_done;
    last_work = Clock::now();
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"simulated worker slots for the scale benchmark"};
  app.add_option("--scheduler", o.scheduler)->required();
  app.add_option("--token-file", o.token_file);
  app.add_option("--workers", o.workers);
  app.add_option("--channels", o.channels);
  app.add_option("--trial-min", o.trial_min);
  app.add_option("--trial-max", o.trial_max);
  app.add_option("--report-every", o.report_every);
  app.add_option("--idle-exit", o.idle_exit);
  app.add_option("--seed", o.seed);
  app.add_option("--out", o.out)->required();
  CLI11_PARSE(app, argc, argv);

  absl::StatusOr<sweep::RpcSecurity> sec = sweep::LoadRpcSecurity(o.token_file, "");
  if (!sec.ok()) {
    std::fprintf(stderr, "%s\n", std::string(sec.status().message()).c_str());
    return 2;
  }
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < o.channels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.channel_id", i);  // distinct channels, not one shared subchannel
    channels.push_back(sweep::MakeChannel(o.scheduler, *sec, args));
  }
  Latencies lat;
  std::atomic<int64_t> done{0};
  Clock::time_point start = Clock::now();
  std::vector<std::thread> threads;
  threads.reserve(o.workers);
  for (int i = 0; i < o.workers; ++i) {
    threads.emplace_back(RunSlot, std::cref(o), std::cref(*sec), channels[i % channels.size()], i,
                         &lat, &done);
  }
  for (std::thread& t : threads) t.join();
  double wall = std::chrono::duration<double>(Clock::now() - start).count();

  nlohmann::json out;
  out["workers"] = o.workers;
  out["channels"] = o.channels;
  out["trials"] = done.load();
  out["wall_s"] = wall;
  for (auto& [kind, v] : lat.ms) {
    out["calls"][kind] = {{"n", v.size()},
                          {"p50_ms", Percentile(v, 0.5)},
                          {"p99_ms", Percentile(v, 0.99)},
                          {"max_ms", v.empty() ? 0 : *std::max_element(v.begin(), v.end())}};
  }
  for (auto& [kind, n] : lat.errors) {
    out["errors"][kind] = {{"n", n}, {"first", lat.first_error[kind]}};
  }
  std::ofstream(o.out) << out.dump(2) << "\n";
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
