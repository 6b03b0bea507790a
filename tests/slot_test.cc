// Slot (worker/slot.h) against an in-memory fake of the scheduler (SchedulerLink), a
// FakeClock and real trial processes (tiny shell scripts). Every wait is for an
// event: a call the fake recorded, a thread waiting on the fake clock, a state of
// the slot; time moves only when a test advances the clock.
#include "worker/slot.h"

#include <signal.h>
#include <sys/types.h>

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/utf8.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing.h"
#include "worker/gpu.h"
#include "worker/gpu_monitor.h"
#include "worker/lifecycle.h"
#include "worker/scheduler_link.h"

namespace sweep {
namespace {

using ::sweep::testing::ReadFile;
using ::sweep::testing::TempDir;
using ::sweep::testing::WaitFor;
using ::sweep::testing::WriteFile;
using ::testing::HasSubstr;

// A bound on every wait for an event, so that a broken slot fails the test instead
// of hanging it. Events come in milliseconds.
constexpr absl::Duration kEventTimeout = absl::Seconds(30);
constexpr absl::Duration kHeartbeatInterval = absl::Seconds(1);

enum class Method { kRegister, kLease, kHeartbeat, kReport, kFinish };

// One call the fake took: the request, when (on the fake clock), what it answered.
template <typename Request>
struct Call {
  Request request;
  absl::Time at;
  absl::StatusCode answer = absl::StatusCode::kOk;
};

// The scheduler as a slot sees it, in memory. Records every call, answers from a
// script: trials to lease, failures for the next calls of a method, trials whose
// heartbeats are answered with a stop order.
class FakeSchedulerLink final : public SchedulerLink {
 public:
  explicit FakeSchedulerLink(Clock* clock) : clock_(clock) {}

  // The next LeaseTrial (waiting, or the next to come) hands out `a`.
  void QueueTrial(v1::TrialAssignment a) {
    absl::MutexLock lock(&mu_);
    trials_.push_back(std::move(a));
  }
  // The next `times` calls of `m` fail with `status`.
  void FailNext(Method m, absl::Status status, int times = 1) {
    absl::MutexLock lock(&mu_);
    for (int i = 0; i < times; ++i) failures_[m].push_back(status);
  }
  // Heartbeats that name `trial_id` are answered with an order to stop it.
  void StopInHeartbeats(const std::string& trial_id) {
    absl::MutexLock lock(&mu_);
    stop_.insert(trial_id);
  }
  // ReportMetrics calls do not return until ReleaseReports() (a scheduler that
  // takes a report but hangs before it answers).
  void HoldReports() {
    absl::MutexLock lock(&mu_);
    hold_reports_ = true;
  }
  void ReleaseReports() {
    absl::MutexLock lock(&mu_);
    hold_reports_ = false;
  }
  // From now on LeaseTrial answers at once, with no trial.
  void Close() {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }

  // Waits until `m` was called at least `n` times. Returns whether it was.
  bool AwaitCalls(Method m, int n) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, m, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return Count(m) >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), kEventTimeout);
  }

  std::vector<Call<v1::HeartbeatRequest>> heartbeats() const {
    absl::MutexLock lock(&mu_);
    return heartbeats_;
  }
  std::vector<Call<v1::ReportMetricsRequest>> reports() const {
    absl::MutexLock lock(&mu_);
    return reports_;
  }
  std::vector<Call<v1::FinishTrialRequest>> finishes() const {
    absl::MutexLock lock(&mu_);
    return finishes_;
  }
  std::vector<Call<v1::RegisterRequest>> registers() const {
    absl::MutexLock lock(&mu_);
    return registers_;
  }

  absl::StatusOr<v1::RegisterResponse> Register(const v1::RegisterRequest& req) override {
    absl::MutexLock lock(&mu_);
    absl::Status st = Record(Method::kRegister, req, &registers_);
    if (!st.ok()) return st;
    v1::RegisterResponse resp;
    resp.set_worker_id(absl::StrCat("w-", registers_.size()));
    resp.set_heartbeat_interval_ms(absl::ToInt64Milliseconds(kHeartbeatInterval));
    resp.set_lease_timeout_ms(30000);
    return resp;
  }

  // Like the scheduler's long poll: waits (in real time, up to wait_ms) for a trial.
  absl::StatusOr<v1::LeaseTrialResponse> LeaseTrial(const v1::LeaseTrialRequest& req) override {
    absl::MutexLock lock(&mu_);
    absl::Status st = Record(Method::kLease, req, &leases_);
    if (!st.ok()) return st;
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return closed_ || !trials_.empty();
    };
    mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(req.wait_ms()));
    v1::LeaseTrialResponse resp;
    if (!trials_.empty()) {
      *resp.mutable_trial() = std::move(trials_.front());
      trials_.pop_front();
    }
    return resp;
  }

  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& req) override {
    absl::MutexLock lock(&mu_);
    absl::Status st = Record(Method::kHeartbeat, req, &heartbeats_);
    if (!st.ok()) return st;
    v1::HeartbeatResponse resp;
    for (const v1::RunningTrial& r : req.running()) {
      if (stop_.count(r.trial_id())) *resp.add_stop() = r;
    }
    return resp;
  }

  absl::StatusOr<v1::ReportMetricsResponse> ReportMetrics(
      const v1::ReportMetricsRequest& req) override {
    absl::MutexLock lock(&mu_);
    absl::Status st = Record(Method::kReport, req, &reports_);
    auto free = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !hold_reports_ || closed_; };
    mu_.Await(absl::Condition(&free));
    if (!st.ok()) return st;
    return v1::ReportMetricsResponse();
  }

  absl::StatusOr<v1::FinishTrialResponse> FinishTrial(
      const v1::FinishTrialRequest& req) override {
    absl::MutexLock lock(&mu_);
    absl::Status st = Record(Method::kFinish, req, &finishes_);
    if (!st.ok()) return st;
    return v1::FinishTrialResponse();
  }

  std::string Address() const override { return "fake-scheduler"; }

 private:
  // Records the call and returns its scripted failure, if any.
  template <typename Request>
  absl::Status Record(Method m, const Request& req, std::vector<Call<Request>>* calls)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::Status st;
    if (auto it = failures_.find(m); it != failures_.end() && !it->second.empty()) {
      st = it->second.front();
      it->second.pop_front();
    }
    calls->push_back({req, clock_->Now(), st.code()});
    return st;
  }

  int Count(Method m) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    switch (m) {
      case Method::kRegister:
        return static_cast<int>(registers_.size());
      case Method::kLease:
        return static_cast<int>(leases_.size());
      case Method::kHeartbeat:
        return static_cast<int>(heartbeats_.size());
      case Method::kReport:
        return static_cast<int>(reports_.size());
      case Method::kFinish:
        return static_cast<int>(finishes_.size());
    }
    return 0;
  }

  Clock* const clock_;
  mutable absl::Mutex mu_;
  std::deque<v1::TrialAssignment> trials_ ABSL_GUARDED_BY(mu_);
  std::map<Method, std::deque<absl::Status>> failures_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> stop_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool hold_reports_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Call<v1::RegisterRequest>> registers_ ABSL_GUARDED_BY(mu_);
  std::vector<Call<v1::LeaseTrialRequest>> leases_ ABSL_GUARDED_BY(mu_);
  std::vector<Call<v1::HeartbeatRequest>> heartbeats_ ABSL_GUARDED_BY(mu_);
  std::vector<Call<v1::ReportMetricsRequest>> reports_ ABSL_GUARDED_BY(mu_);
  std::vector<Call<v1::FinishTrialRequest>> finishes_ ABSL_GUARDED_BY(mu_);
};

// The GPU telemetry of one card, GPU-0, in memory: it answers at once (or, after
// Hang(), not until Unhang()), with the Xids and the loss a test scripts.
class FakeGpuProbe final : public GpuProbe {
 public:
  absl::StatusOr<GpuReading> Read(const std::vector<std::string>& uuids) override {
    absl::MutexLock lock(&mu_);
    ++waiting_;
    auto free = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !hung_; };
    mu_.Await(absl::Condition(&free));
    --waiting_;
    GpuReading r;
    for (const std::string& uuid : uuids) {
      GpuSample s;
      s.uuid = uuid;
      s.memory_total_mib = 16384;
      if (lost_) {
        s.error = "GPU is lost (NVML error 15)";
        s.lost = true;
      }
      r.gpus.push_back(s);
    }
    r.faults = std::move(faults_);
    faults_.clear();
    return r;
  }
  // The next read reports Xid `xid` on GPU-0.
  void Xid(int64_t xid) {
    absl::MutexLock lock(&mu_);
    faults_.push_back(GpuFault{.uuid = "GPU-0", .xid = xid});
  }
  void Hang() {
    absl::MutexLock lock(&mu_);
    hung_ = true;
  }
  void Unhang() {
    absl::MutexLock lock(&mu_);
    hung_ = false;
  }
  // Waits until a read is held by Hang().
  bool AwaitHungRead() {
    absl::MutexLock lock(&mu_);
    auto in = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return waiting_ > 0; };
    return mu_.AwaitWithTimeout(absl::Condition(&in), kEventTimeout);
  }

 private:
  absl::Mutex mu_;
  std::vector<GpuFault> faults_ ABSL_GUARDED_BY(mu_);
  bool lost_ ABSL_GUARDED_BY(mu_) = false;
  bool hung_ ABSL_GUARDED_BY(mu_) = false;
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;
};

class SlotTest : public ::testing::Test {
 protected:
  ~SlotTest() override {
    probe_->Unhang();
    if (!thread_.joinable()) return;
    // Stop now, wake every wait: the slot gives back what it has and returns.
    life_.Advance();
    life_.Advance();
    link_.Close();
    clock_.Advance(absl::Hours(1));
    thread_.join();
  }

  // Starts a CPU slot on its own thread.
  void Start(SlotOptions o = SlotOptions()) {
    o.work_dir = dir_ / "runs";
    o.poll_interval = absl::Milliseconds(5);
    SlotWorld world;
    world.link = &link_;
    world.clock = &clock_;
    world.life = &life_;
    slot_ = std::make_unique<Slot>(o, world, 0, std::nullopt);
    thread_ = std::thread([this] { slot_->Run(); });
  }
  // Starts the slot of GPU-0 (GPU 0), with telemetry from probe_.
  void StartGpu() {
    SlotOptions o;
    o.work_dir = dir_ / "runs";
    o.poll_interval = absl::Milliseconds(5);
    gpus_ = {Gpu{.index = 0, .uuid = "GPU-0", .name = "Fake GPU", .memory_mib = 16384}};
    monitor_ = std::make_unique<GpuMonitor>(probe_, std::vector<std::string>{"GPU-0"},
                                            o.gpu_sample_interval, &clock_);
    SlotWorld world;
    world.link = &link_;
    world.clock = &clock_;
    world.life = &life_;
    world.monitor = monitor_.get();
    world.node = &gpus_;
    slot_ = std::make_unique<Slot>(o, world, 0, gpus_.front());
    thread_ = std::thread([this] { slot_->Run(); });
  }

  // A trial that runs `script` with /bin/sh.
  static v1::TrialAssignment Trial(const std::string& id, const std::string& script) {
    v1::TrialAssignment a;
    a.set_trial_id(id);
    a.set_sweep_id("s-1");
    a.set_epoch(7);
    a.set_attempt(1);
    a.add_argv("/bin/sh");
    a.add_argv("-c");
    a.add_argv(script);
    return a;
  }
  // Shell that holds the trial until the test opens the gate.
  std::string HoldAtGate() const {
    return absl::StrCat("while [ ! -e '", gate(), "' ]; do sleep 0.01; done");
  }
  std::string gate() const { return dir_ / "gate"; }
  void OpenGate() const { WriteFile(gate(), ""); }

  bool AwaitState(SlotState s) {
    return WaitFor([&] { return slot_->state() == s; }, kEventTimeout);
  }

  TempDir dir_;
  FakeClock clock_;
  Lifecycle life_{&clock_};
  FakeSchedulerLink link_{&clock_};
  std::shared_ptr<FakeGpuProbe> probe_ = std::make_shared<FakeGpuProbe>();
  std::vector<Gpu> gpus_;
  std::unique_ptr<GpuMonitor> monitor_;  // declared before slot_, so it outlives it
  std::unique_ptr<Slot> slot_;
  std::thread thread_;
};

TEST_F(SlotTest, HeartbeatsGoOutEveryHeartbeatIntervalOfTheClockWhileATrialRuns) {
  const absl::Time t0 = clock_.Now();
  link_.QueueTrial(Trial("t-1", HoldAtGate()));
  Start();

  ASSERT_TRUE(link_.AwaitCalls(Method::kHeartbeat, 1));
  clock_.Advance(kHeartbeatInterval);
  ASSERT_TRUE(link_.AwaitCalls(Method::kHeartbeat, 2));
  clock_.Advance(kHeartbeatInterval);
  ASSERT_TRUE(link_.AwaitCalls(Method::kHeartbeat, 3));
  OpenGate();
  ASSERT_TRUE(link_.AwaitCalls(Method::kFinish, 1));

  std::vector<Call<v1::HeartbeatRequest>> beats = link_.heartbeats();
  ASSERT_EQ(beats.size(), 3u) << "no heartbeat without the clock moving";
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(beats[i].at, t0 + i * kHeartbeatInterval);
    EXPECT_EQ(beats[i].request.worker_id(), "w-1");
    EXPECT_FALSE(beats[i].request.draining());
    ASSERT_EQ(beats[i].request.running_size(), 1);
    EXPECT_EQ(beats[i].request.running(0).trial_id(), "t-1");
    EXPECT_EQ(beats[i].request.running(0).epoch(), 7);
  }
  v1::FinishTrialRequest fin = link_.finishes()[0].request;
  EXPECT_EQ(fin.outcome(), v1::TRIAL_OUTCOME_COMPLETED);
  EXPECT_EQ(fin.epoch(), 7);
  EXPECT_TRUE(fin.lease_next());
}

TEST_F(SlotTest, AReportThatHangsHoldsUpNoHeartbeat) {
  link_.HoldReports();
  link_.QueueTrial(Trial("t-1", absl::StrCat(
                                    R"(printf '{"step": 0, "loss": 1.0}\n' >> "$SWEEP_METRICS_FILE"; )",
                                    HoldAtGate())));
  Start();
  ASSERT_TRUE(link_.AwaitCalls(Method::kReport, 1));  // the slot's thread now waits in it
  ASSERT_TRUE(link_.AwaitCalls(Method::kHeartbeat, 1));
  clock_.Advance(kHeartbeatInterval);
  ASSERT_TRUE(link_.AwaitCalls(Method::kHeartbeat, 2));
  clock_.Advance(kHeartbeatInterval);
  ASSERT_TRUE(link_.AwaitCalls(Method::kHeartbeat, 3));
  link_.ReleaseReports();
  OpenGate();
  ASSERT_TRUE(link_.AwaitCalls(Method::kFinish, 1));
  EXPECT_EQ(link_.finishes()[0].request.outcome(), v1::TRIAL_OUTCOME_COMPLETED);
  EXPECT_EQ(link_.reports().size(), 1u);
}

TEST_F(SlotTest, LogTailsThatAreNoUtf8AreCleanedSoTheOutcomeCanBeSent) {
  // Invalid bytes, and a three-byte character that the 8 KiB tail cuts in two.
  link_.QueueTrial(Trial("t-1", "printf 'x\\342\\202\\254' >&2; head -c 8180 /dev/zero | tr '\\0' y >&2; "
                                "printf ' \\377bad\\376 end' >&2"));
  Start();
  ASSERT_TRUE(link_.AwaitCalls(Method::kFinish, 1));
  const std::string tail = link_.finishes()[0].request.stderr_tail();
  EXPECT_EQ(FirstInvalidUtf8(tail), std::string::npos);
  EXPECT_TRUE(absl::EndsWith(tail, " bad end")) << tail.substr(tail.size() - 20);
  EXPECT_TRUE(absl::StartsWith(tail, "y")) << "the cut character is dropped whole";
}

TEST_F(SlotTest, AThrottledTrialsLastLinesAreReadAtTheBoundAfterItEnds) {
  SlotOptions o;
  o.metrics.max_points_per_second = 10;
  link_.QueueTrial(Trial("t-1", R"(for i in $(seq 0 29); do echo "{\"step\": $i, \"loss\": 1}"; )"
                                R"(done >> "$SWEEP_METRICS_FILE")"));
  Start(o);
  // Ten points a second of the clock. Once the trial has ended, the slot waits on
  // the clock (beside the heartbeat thread) for each next share: each second it is
  // given brings one more report, until all thirty are in and the outcome follows.
  ASSERT_TRUE(AwaitState(SlotState::kFinishing));
  while (true) {
    const int reports = static_cast<int>(link_.reports().size());
    ASSERT_TRUE(WaitFor([&] { return clock_.waiters() >= 2 || !link_.finishes().empty(); },
                        kEventTimeout));
    if (!link_.finishes().empty()) break;
    clock_.Advance(absl::Seconds(1));
    ASSERT_TRUE(link_.AwaitCalls(Method::kReport, reports + 1));
    ASSERT_LE(reports, 10) << "the slot reads nothing when given time";
  }
  ASSERT_TRUE(link_.AwaitCalls(Method::kFinish, 1));
  std::set<int64_t> steps;
  std::string notices;
  for (const Call<v1::ReportMetricsRequest>& r : link_.reports()) {
    for (const v1::MetricPoint& p : r.request.points()) steps.insert(p.step());
    for (const std::string& n : r.request.notices()) notices += n;
  }
  EXPECT_EQ(steps.size(), 30u);
  EXPECT_THAT(notices, HasSubstr("more than 10 metric points a second"));
}

TEST_F(SlotTest, MetricLinesReachReportMetricsInOrderAndASendThatFailsIsRepeatedUnchanged) {
  link_.FailNext(Method::kReport, absl::UnavailableError("scheduler away"), 2);
  link_.QueueTrial(Trial("t-1", absl::StrCat(
                                    R"(printf '{"step": 0, "loss": 1.0}\n' >> "$SWEEP_METRICS_FILE"; )",
                                    HoldAtGate(), "; ",
                                    R"(printf '{"step": 1, "loss": 0.5}\n{"step": 2, "loss": 0.25}\n' )",
                                    R"(>> "$SWEEP_METRICS_FILE")")));
  Start();

  // Two refusals and the batch that got through, all before the trial goes on.
  ASSERT_TRUE(link_.AwaitCalls(Method::kReport, 3));
  OpenGate();
  ASSERT_TRUE(link_.AwaitCalls(Method::kFinish, 1));

  std::vector<Call<v1::ReportMetricsRequest>> reports = link_.reports();
  ASSERT_GE(reports.size(), 4u);
  EXPECT_EQ(reports[0].answer, absl::StatusCode::kUnavailable);
  EXPECT_EQ(reports[1].answer, absl::StatusCode::kUnavailable);
  EXPECT_EQ(reports[2].answer, absl::StatusCode::kOk);
  EXPECT_EQ(reports[0].request.seq(), 1);
  EXPECT_EQ(reports[1].request.SerializeAsString(), reports[0].request.SerializeAsString());
  EXPECT_EQ(reports[2].request.SerializeAsString(), reports[0].request.SerializeAsString());

  // What the scheduler took: batches 1, 2, ... and each point once.
  int64_t want_seq = 1;
  std::multiset<int64_t> steps;
  for (const Call<v1::ReportMetricsRequest>& r : reports) {
    EXPECT_EQ(r.request.trial_id(), "t-1");
    EXPECT_EQ(r.request.epoch(), 7);
    if (r.answer != absl::StatusCode::kOk) continue;
    EXPECT_EQ(r.request.seq(), want_seq++);
    for (const v1::MetricPoint& p : r.request.points()) {
      EXPECT_EQ(p.name(), "loss");
      steps.insert(p.step());
    }
  }
  EXPECT_EQ(steps, (std::multiset<int64_t>{0, 1, 2}));
  EXPECT_EQ(link_.finishes()[0].request.outcome(), v1::TRIAL_OUTCOME_COMPLETED);
}

TEST_F(SlotTest, AStopOrderInAHeartbeatReplyStopsTheTrial) {
  link_.StopInHeartbeats("t-1");
  link_.QueueTrial(Trial("t-1", "exec sleep 1000"));
  Start();

  ASSERT_TRUE(link_.AwaitCalls(Method::kFinish, 1));
  v1::FinishTrialRequest fin = link_.finishes()[0].request;
  EXPECT_EQ(fin.trial_id(), "t-1");
  EXPECT_EQ(fin.outcome(), v1::TRIAL_OUTCOME_STOPPED);
  EXPECT_EQ(fin.signal(), SIGTERM);
  EXPECT_EQ(fin.message(), "stopped on the scheduler's order");
  EXPECT_EQ(link_.heartbeats().size(), 1u);
}

TEST_F(SlotTest, AStaleLeaseDropsTheTrialWithoutAFinishTrial) {
  link_.FailNext(Method::kReport,
                 absl::FailedPreconditionError("trial t-1 is leased with epoch 8"));
  const std::string pid_file = dir_ / "pid";
  link_.QueueTrial(Trial("t-1", absl::StrCat("echo $$ > '", pid_file, "'; ",
                                             R"(printf '{"step": 0, "loss": 1}\n' )",
                                             R"(>> "$SWEEP_METRICS_FILE"; exec sleep 1000)")));
  Start();

  ASSERT_TRUE(link_.AwaitCalls(Method::kReport, 1));
  // The slot asks for its next trial: it is done with this one.
  ASSERT_TRUE(link_.AwaitCalls(Method::kLease, 2));
  EXPECT_TRUE(link_.finishes().empty());
  EXPECT_EQ(link_.reports().size(), 1u) << "nothing more is reported about the trial";
  int pid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFile(pid_file)), &pid));
  EXPECT_NE(kill(pid, 0), 0) << "the trial process was stopped";
}

TEST_F(SlotTest, DrainingGivesTheTrialBackAfterTheDrainTimeoutOfTheClock) {
  SlotOptions o;
  o.drain_timeout = absl::Seconds(60);
  link_.QueueTrial(Trial("t-1", "exec sleep 1000"));
  Start(o);
  ASSERT_TRUE(link_.AwaitCalls(Method::kHeartbeat, 1));

  life_.Advance();
  ASSERT_TRUE(AwaitState(SlotState::kDraining));
  const absl::Time drain_start = clock_.Now();
  clock_.Advance(absl::Seconds(30));
  ASSERT_TRUE(link_.AwaitCalls(Method::kHeartbeat, 2));
  EXPECT_TRUE(link_.heartbeats()[1].request.draining());
  EXPECT_TRUE(link_.finishes().empty()) << "the trial may run for the drain timeout";
  clock_.Advance(absl::Seconds(30));
  ASSERT_TRUE(link_.AwaitCalls(Method::kFinish, 1));

  Call<v1::FinishTrialRequest> fin = link_.finishes()[0];
  EXPECT_EQ(fin.at, drain_start + absl::Seconds(60));
  EXPECT_EQ(fin.request.outcome(), v1::TRIAL_OUTCOME_RELEASED);
  EXPECT_EQ(fin.request.message(), "the worker was stopped before the trial ended");
  EXPECT_FALSE(fin.request.lease_next()) << "a draining slot asks for no next trial";
  thread_.join();  // a draining slot returns once its trial is given back
  EXPECT_EQ(slot_->state(), SlotState::kStopped);
}

TEST_F(SlotTest, AFinishTrialThatFailsWithUnavailableIsSentAgainWithTheSameOutcome) {
  SlotOptions o;
  o.retry_interval = absl::Milliseconds(500);
  link_.FailNext(Method::kFinish, absl::UnavailableError("scheduler away"));
  link_.QueueTrial(Trial("t-1", "echo bad >&2; exit 3"));
  const absl::Time t0 = clock_.Now();
  Start(o);

  ASSERT_TRUE(link_.AwaitCalls(Method::kFinish, 1));
  ASSERT_TRUE(clock_.AwaitWaiters(1));  // the slot waits to send it again
  clock_.Advance(absl::Milliseconds(500));
  ASSERT_TRUE(link_.AwaitCalls(Method::kFinish, 2));

  std::vector<Call<v1::FinishTrialRequest>> fins = link_.finishes();
  EXPECT_EQ(fins[0].answer, absl::StatusCode::kUnavailable);
  EXPECT_EQ(fins[1].answer, absl::StatusCode::kOk);
  EXPECT_EQ(fins[1].at, t0 + absl::Milliseconds(500));
  EXPECT_EQ(fins[1].request.SerializeAsString(), fins[0].request.SerializeAsString());
  EXPECT_EQ(fins[1].request.outcome(), v1::TRIAL_OUTCOME_FAILED);
  EXPECT_EQ(fins[1].request.exit_code(), 3);
  EXPECT_EQ(fins[1].request.stderr_tail(), "bad\n");
}

TEST_F(SlotTest, AnOutcomeTheSchedulerCannotTakeForTheGiveUpTimeIsGivenUp) {
  SlotOptions o;
  o.retry_interval = absl::Seconds(10);
  o.report_give_up = absl::Seconds(30);
  link_.FailNext(Method::kFinish, absl::UnavailableError("scheduler away"), 100);
  link_.QueueTrial(Trial("t-1", "exit 0"));
  Start(o);

  // Sent at 0, 10, 20 and 30 s; past 30 s the slot gives up and leases again.
  for (int i = 1; i <= 4; ++i) {
    ASSERT_TRUE(link_.AwaitCalls(Method::kFinish, i));
    ASSERT_TRUE(clock_.AwaitWaiters(1));
    clock_.Advance(absl::Seconds(10));
  }
  ASSERT_TRUE(link_.AwaitCalls(Method::kLease, 2));
  EXPECT_EQ(link_.finishes().size(), 5u);
}

TEST_F(SlotTest, RegisteringBacksOffOnTheClockWhileTheSchedulerIsUnavailable) {
  const absl::Time t0 = clock_.Now();
  link_.FailNext(Method::kRegister, absl::UnavailableError("connection refused"), 2);
  Start();

  ASSERT_TRUE(link_.AwaitCalls(Method::kRegister, 1));
  ASSERT_TRUE(clock_.AwaitWaiters(1));
  clock_.Advance(absl::Milliseconds(200));
  ASSERT_TRUE(link_.AwaitCalls(Method::kRegister, 2));
  ASSERT_TRUE(clock_.AwaitWaiters(1));
  clock_.Advance(absl::Milliseconds(400));
  ASSERT_TRUE(link_.AwaitCalls(Method::kLease, 1));

  std::vector<Call<v1::RegisterRequest>> regs = link_.registers();
  ASSERT_EQ(regs.size(), 3u);
  EXPECT_EQ(regs[0].at, t0);
  EXPECT_EQ(regs[1].at, t0 + absl::Milliseconds(200));
  EXPECT_EQ(regs[2].at, t0 + absl::Milliseconds(600));
  EXPECT_EQ(regs[2].answer, absl::StatusCode::kOk);
  EXPECT_FALSE(regs[2].request.has_gpu()) << "a CPU slot";
}

// ---- a GPU slot --------------------------------------------------------------

TEST_F(SlotTest, AnXidThatFailsOneApplicationGivesItsFailedTrialBackAndTheSlotGoesOn) {
  link_.QueueTrial(Trial("t-1", HoldAtGate() + "; exit 3"));
  StartGpu();
  ASSERT_TRUE(AwaitState(SlotState::kRunning));
  // The frozen clock moves on, so that the trial's end comes after the samples
  // taken so far (on a real clock it always does).
  clock_.Advance(absl::Milliseconds(1));
  probe_->Xid(94);  // a contained ECC error: the hardware's fault, not the program's
  OpenGate();
  ASSERT_TRUE(link_.AwaitCalls(Method::kFinish, 1));
  v1::FinishTrialRequest fin = link_.finishes()[0].request;
  EXPECT_EQ(fin.outcome(), v1::TRIAL_OUTCOME_RELEASED) << fin.message();
  EXPECT_THAT(fin.message(), HasSubstr("GPU 0 (GPU-0) reported Xid 94 (contained ECC error); "
                                       "the trial goes back to the queue without using a "
                                       "retry"));
  link_.QueueTrial(Trial("t-2", "exit 0"));
  ASSERT_TRUE(link_.AwaitCalls(Method::kFinish, 2));
  EXPECT_EQ(link_.finishes()[1].request.outcome(), v1::TRIAL_OUTCOME_COMPLETED);
}

TEST_F(SlotTest, AnXidOfTheProgramsOwnMakingIsNamedInItsFailure) {
  link_.QueueTrial(Trial("t-1", HoldAtGate() + "; exit 1"));
  StartGpu();
  ASSERT_TRUE(AwaitState(SlotState::kRunning));
  // The frozen clock moves on, so that the trial's end comes after the samples
  // taken so far (on a real clock it always does).
  clock_.Advance(absl::Milliseconds(1));
  probe_->Xid(31);
  OpenGate();
  ASSERT_TRUE(link_.AwaitCalls(Method::kFinish, 1));
  v1::FinishTrialRequest fin = link_.finishes()[0].request;
  EXPECT_EQ(fin.outcome(), v1::TRIAL_OUTCOME_FAILED);
  EXPECT_THAT(fin.message(),
              HasSubstr("; the driver reported Xid 31 (GPU memory page fault) on GPU 0"));
}

TEST_F(SlotTest, ADeviceXidStopsTheRunningTrialGivesItBackAndTheSlotTakesNoMore) {
  link_.QueueTrial(Trial("t-1", "exec sleep 1000"));
  StartGpu();
  ASSERT_TRUE(AwaitState(SlotState::kRunning));
  probe_->Xid(79);
  monitor_->RequestSample();
  ASSERT_TRUE(link_.AwaitCalls(Method::kFinish, 1));
  v1::FinishTrialRequest fin = link_.finishes()[0].request;
  EXPECT_EQ(fin.outcome(), v1::TRIAL_OUTCOME_RELEASED);
  EXPECT_EQ(fin.signal(), SIGTERM);
  EXPECT_THAT(fin.message(), HasSubstr("GPU 0 (GPU-0) reported Xid 79 (GPU has fallen off "
                                       "the bus)"));
  ASSERT_TRUE(AwaitState(SlotState::kLost));
  // It tells the scheduler at once that it drains, and why.
  ASSERT_TRUE(WaitFor([&] { return link_.heartbeats().back().request.draining(); },
                      kEventTimeout));
  v1::HeartbeatRequest last = link_.heartbeats().back().request;
  EXPECT_THAT(last.message(), HasSubstr("reported Xid 79 (GPU has fallen off the bus); this "
                                        "slot takes no more trials"));
}

TEST_F(SlotTest, ADriverThatHangsHoldsUpNoStartNoHeartbeatAndNoEnd) {
  probe_->Hang();
  link_.QueueTrial(Trial("t-1", HoldAtGate()));
  StartGpu();
  ASSERT_TRUE(probe_->AwaitHungRead());
  ASSERT_TRUE(AwaitState(SlotState::kRunning)) << "the trial starts";
  ASSERT_TRUE(link_.AwaitCalls(Method::kHeartbeat, 1));
  clock_.Advance(kHeartbeatInterval);
  ASSERT_TRUE(link_.AwaitCalls(Method::kHeartbeat, 2));
  clock_.Advance(kHeartbeatInterval);
  ASSERT_TRUE(link_.AwaitCalls(Method::kHeartbeat, 3));
  // The case under test: a driver that has not answered for longer than a slot
  // waits for it (kSlowDriver, 0.5 s).
  ASSERT_TRUE(WaitFor([&] { return monitor_->ReadDuration() > absl::Milliseconds(600); },
                      kEventTimeout));
  OpenGate();
  ASSERT_TRUE(link_.AwaitCalls(Method::kFinish, 1)) << "the end is reported, clock unmoved";
  EXPECT_EQ(link_.finishes()[0].request.outcome(), v1::TRIAL_OUTCOME_COMPLETED);
  EXPECT_TRUE(probe_->AwaitHungRead()) << "the driver still has not answered";
}

}  // namespace
}  // namespace sweep
