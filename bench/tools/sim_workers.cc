// sweep-bench-sim-workers: many light worker slots in one process, speaking the
// worker protocol to a real `sweep scheduler` (the scale benchmark of bench/bench.py).
//
//   sweep-bench-sim-workers --scheduler ADDR --workers 1000 [--channels 16]
//       [--trial-min 2 --trial-max 8] [--report-every 1] [--seed 1] --out FILE.json
//       [--trace FILE.tsv]
//
// Each simulated slot registers, then loops: LeaseTrial (long poll), "runs" the trial
// for a seeded random time while sending one metric point every --report-every
// seconds and a heartbeat every heartbeat interval the scheduler asked for, then
// FinishTrial(COMPLETED). It stops when the scheduler has had no trial for it for
// --idle-exit seconds. Every call's latency is recorded per kind; the JSON output has
// counts, median, 99th percentile and maximum in milliseconds. "lease" is the
// latency of LeaseTrial calls that returned a trial (the dispatch latency), each
// slot's first one apart ("lease_first"). --trace writes every call as a line:
// seconds since the start, kind, latency in ms, gRPC status code.
//
// The slots are state machines on one event-loop thread that issues every call with
// gRPC's callback API; replies arrive on gRPC's own few threads. A slot has at most
// one call in flight, as a real worker slot does. (A thread per slot, the first
// version, put 1,000 threads on the scheduler's cores: their wake-ups were measured
// as the scheduler's latency.)
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "common/rpc.h"
#include "nlohmann/json.hpp"
#include "sweep/v1/sweep.grpc.pb.h"

namespace {

namespace v1 = sweep::v1;
using Clock = std::chrono::steady_clock;

Clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

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
  std::string trace;
};

enum class Phase { kRegister, kLease, kRunning, kDone };

// One simulated worker slot. Touched only by the loop thread, except that a reply
// callback hands the slot back through Loop::Ready (its call's objects are not
// touched again until then).
struct Slot {
  int index = 0;
  std::unique_ptr<v1::WorkerService::Stub> stub;
  std::mt19937_64 rng;
  Phase phase = Phase::kRegister;
  std::string id;
  Clock::duration heartbeat{};
  bool first_lease = true;
  Clock::time_point last_work;
  // The running trial.
  v1::TrialAssignment trial;
  Clock::time_point end, next_report, next_beat;
  int64_t seq = 0, step = 0;
  bool stop = false;
  // The call in flight.
  std::unique_ptr<grpc::ClientContext> ctx;
  std::string kind;
  Clock::time_point started;
  grpc::Status status;
  v1::RegisterRequest reg;
  v1::RegisterResponse reg_resp;
  v1::LeaseTrialRequest lease;
  v1::LeaseTrialResponse lease_resp;
  v1::ReportMetricsRequest report;
  v1::ReportMetricsResponse report_resp;
  v1::HeartbeatRequest beat;
  v1::HeartbeatResponse beat_resp;
  v1::FinishTrialRequest finish;
  v1::FinishTrialResponse finish_resp;
};

class Loop {
 public:
  Loop(const Options& o, const sweep::RpcSecurity& sec)
      : o_(o), sec_(sec), start_(Clock::now()) {}

  void Run(std::vector<std::shared_ptr<grpc::Channel>>& channels) {
    slots_.resize(o_.workers);
    for (int i = 0; i < o_.workers; ++i) {
      Slot& s = slots_[i];
      s.index = i;
      s.stub = v1::WorkerService::NewStub(channels[i % channels.size()]);
      s.rng.seed(o_.seed * 1000003ULL + static_cast<uint64_t>(i));
      ready_.push_back(i);
    }
    int live = o_.workers;
    while (live > 0) {
      std::vector<int> due;
      {
        std::unique_lock<std::mutex> l(mu_);
        Clock::time_point wake = timers_.empty() ? Clock::time_point::max() : timers_.top().first;
        cv_.wait_until(l, wake, [&] { return !ready_.empty() || Clock::now() >= wake; });
        due.assign(ready_.begin(), ready_.end());
        ready_.clear();
      }
      Clock::time_point now = Clock::now();
      while (!timers_.empty() && timers_.top().first <= now) {
        due.push_back(timers_.top().second);
        timers_.pop();
      }
      for (int i : due) {
        if (!Advance(slots_[i])) --live;
      }
    }
  }

  nlohmann::json Results() {
    std::lock_guard<std::mutex> l(mu_);
    nlohmann::json out;
    for (auto& [kind, v] : ms_) {
      out["calls"][kind] = {{"n", v.size()},
                            {"p50_ms", Percentile(v, 0.5)},
                            {"p99_ms", Percentile(v, 0.99)},
                            {"max_ms", v.empty() ? 0 : *std::max_element(v.begin(), v.end())}};
    }
    for (auto& [kind, n] : errors_) {
      out["errors"][kind] = {{"n", n}, {"first", first_error_[kind]}};
    }
    out["trials"] = trials_done_;
    return out;
  }

  void WriteTrace(const std::string& path) {
    std::lock_guard<std::mutex> l(mu_);
    std::ofstream f(path);
    for (const TraceLine& t : trace_) {
      f << t.at_s << "\t" << t.kind << "\t" << t.ms << "\t" << t.code << "\n";
    }
  }

 private:
  // Moves a slot on after its call returned or its timer fired; false once it is done.
  bool Advance(Slot& s) {
    Clock::time_point now = Clock::now();
    switch (s.phase) {
      case Phase::kRegister:
        if (s.ctx == nullptr) {
          s.reg.set_host(absl::StrCat("sim-", s.index / 8));
          s.reg.set_pid(s.index);
          s.reg.set_slot(s.index % 8);
          s.reg.set_version("sim");
          Call(s, "register", [&](auto* c, auto cb) {
            s.stub->async()->Register(c, &s.reg, &s.reg_resp, cb);
          });
          return true;
        }
        s.ctx.reset();
        if (!s.status.ok()) return Done(s);
        s.id = s.reg_resp.worker_id();
        s.heartbeat = std::chrono::milliseconds(s.reg_resp.heartbeat_interval_ms());
        s.last_work = now;
        s.phase = Phase::kLease;
        return Lease(s);
      case Phase::kLease:
        if (s.ctx == nullptr) return Lease(s);  // after an error's back-off
        s.ctx.reset();
        if (s.status.ok() && s.lease_resp.has_trial()) {
          s.trial = s.lease_resp.trial();
          s.end = now + Seconds(std::uniform_real_distribution<double>(
                                    o_.trial_min, o_.trial_max)(s.rng));
          s.next_report = now + Seconds(o_.report_every);
          s.next_beat = now + s.heartbeat;
          s.seq = s.step = 0;
          s.stop = false;
          s.phase = Phase::kRunning;
          return Run(s, now);
        }
        if (s.status.ok() && s.lease_resp.drain()) return Done(s);
        if (now - s.last_work > Seconds(o_.idle_exit)) return Done(s);
        if (!s.status.ok()) {
          At(now + std::chrono::milliseconds(200), s.index);
          return true;
        }
        return Lease(s);
      case Phase::kRunning:
        if (s.ctx != nullptr) {  // a report, heartbeat or finish returned
          std::string kind = s.kind;
          s.ctx.reset();
          if (kind == "report" && s.status.ok() && s.report_resp.stop()) s.stop = true;
          if (kind == "finish") {
            std::lock_guard<std::mutex> l(mu_);
            ++trials_done_;
            s.last_work = now;
            s.phase = Phase::kLease;
            return Lease(s);
          }
        }
        return Run(s, now);
      case Phase::kDone:
        return false;
    }
    return false;
  }

  // The running trial's next step: finish, report, heartbeat, or sleep until one.
  bool Run(Slot& s, Clock::time_point now) {
    if (s.stop || now >= s.end) {
      s.finish.Clear();
      s.finish.set_worker_id(s.id);
      s.finish.set_trial_id(s.trial.trial_id());
      s.finish.set_epoch(s.trial.epoch());
      s.finish.set_outcome(s.stop ? v1::TRIAL_OUTCOME_STOPPED : v1::TRIAL_OUTCOME_COMPLETED);
      Call(s, "finish", [&](auto* c, auto cb) {
        s.stub->async()->FinishTrial(c, &s.finish, &s.finish_resp, cb);
      });
      return true;
    }
    if (now >= s.next_report) {
      s.next_report += Seconds(o_.report_every);
      s.report.Clear();
      s.report.set_worker_id(s.id);
      s.report.set_trial_id(s.trial.trial_id());
      s.report.set_epoch(s.trial.epoch());
      s.report.set_seq(++s.seq);
      v1::MetricPoint* p = s.report.add_points();
      p->set_step(++s.step);
      p->set_name("loss");
      p->set_value(1.0 / static_cast<double>(s.step));
      p->set_time(std::chrono::duration<double>(
                      std::chrono::system_clock::now().time_since_epoch()).count());
      Call(s, "report", [&](auto* c, auto cb) {
        s.stub->async()->ReportMetrics(c, &s.report, &s.report_resp, cb);
      });
      return true;
    }
    if (now >= s.next_beat) {
      s.next_beat += s.heartbeat;
      s.beat.Clear();
      s.beat.set_worker_id(s.id);
      v1::RunningTrial* rt = s.beat.add_running();
      rt->set_trial_id(s.trial.trial_id());
      rt->set_epoch(s.trial.epoch());
      Call(s, "heartbeat", [&](auto* c, auto cb) {
        s.stub->async()->Heartbeat(c, &s.beat, &s.beat_resp, cb);
      });
      return true;
    }
    At(std::min({s.end, s.next_report, s.next_beat}), s.index);
    return true;
  }

  bool Lease(Slot& s) {
    s.lease.set_worker_id(s.id);
    s.lease.set_wait_ms(1000);
    Call(s, "lease", [&](auto* c, auto cb) {
      s.stub->async()->LeaseTrial(c, &s.lease, &s.lease_resp, cb);
    });
    return true;
  }

  bool Done(Slot& s) {
    s.phase = Phase::kDone;
    return false;
  }

  // Starts one call of `kind` on the slot; its reply records the latency and hands
  // the slot back to the loop.
  template <typename Start>
  void Call(Slot& s, const char* kind, Start start) {
    s.ctx = std::make_unique<grpc::ClientContext>();
    sweep::Authorize(s.ctx.get(), sec_);
    s.kind = kind;
    s.started = Clock::now();
    start(s.ctx.get(), [this, &s](grpc::Status st) {
      double ms = std::chrono::duration<double, std::milli>(Clock::now() - s.started).count();
      std::lock_guard<std::mutex> l(mu_);
      s.status = std::move(st);
      if (!o_.trace.empty()) {
        trace_.push_back({std::chrono::duration<double>(s.started - start_).count(), s.kind,
                          ms, s.status.error_code()});
      }
      if (!s.status.ok()) {
        if (errors_[s.kind]++ == 0) {
          first_error_[s.kind] =
              absl::StrCat(s.status.error_code(), ": ", s.status.error_message());
        }
      } else if (s.kind != "lease") {
        ms_[s.kind].push_back(ms);
      } else if (s.lease_resp.has_trial()) {
        // A slot's first lease waits behind the start-up rush of 1,000
        // registrations; it is kept apart from the steady state.
        ms_[s.first_lease ? "lease_first" : "lease"].push_back(ms);
        s.first_lease = false;
      }
      ready_.push_back(s.index);
      cv_.notify_one();
    });
  }

  void At(Clock::time_point t, int slot) { timers_.emplace(t, slot); }

  struct TraceLine {
    double at_s;
    std::string kind;
    double ms;
    int code;
  };

  const Options& o_;
  const sweep::RpcSecurity& sec_;
  const Clock::time_point start_;
  std::vector<Slot> slots_;
  using Timer = std::pair<Clock::time_point, int>;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;  // loop only
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<int> ready_;  // slots whose call returned, or new
  std::map<std::string, std::vector<double>> ms_;
  std::map<std::string, int64_t> errors_;
  std::map<std::string, std::string> first_error_;
  int64_t trials_done_ = 0;
  std::vector<TraceLine> trace_;
};

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
  app.add_option("--trace", o.trace, "write every call (start s, kind, ms, code) here");
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
  Clock::time_point start = Clock::now();
  Loop loop(o, *sec);
  loop.Run(channels);
  double wall = std::chrono::duration<double>(Clock::now() - start).count();

  nlohmann::json out = loop.Results();
  out["workers"] = o.workers;
  out["channels"] = o.channels;
  out["wall_s"] = wall;
  std::ofstream(o.out) << out.dump(2) << "\n";
  if (!o.trace.empty()) loop.WriteTrace(o.trace);
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
