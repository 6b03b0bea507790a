// The scheduler core over a real SQLite file, driven by a fake clock.
#include "scheduler/scheduler.h"

#include <signal.h>
#include <sys/resource.h>

#include <filesystem>
#include <limits>
#include <set>
#include <thread>

#include "sweeps/sampler.h"

#include "common/ids.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing.h"

namespace sweep {
namespace {

using ::testing::HasSubstr;
using ::sweep::testing::Db;
using ::sweep::testing::TempDir;

constexpr char kGrid[] = R"(
name: three
command: ["/bin/true", "${args}"]
method: grid
metric: {name: loss, goal: minimize}
max_retries: 1
parameters:
  lr:
    values: [0.1, 0.01, 0.001]
)";

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.lease_timeout = absl::Seconds(10);
    Open();
  }

  void Open() {
    core_.reset();
    store_.reset();
    auto store = Store::Open(dir_ / "sweeps.db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    auto core = Scheduler::Create(store_.get(), &clock_, options_);
    ASSERT_TRUE(core.ok()) << core.status();
    core_ = std::move(*core);
  }

  std::string Submit(const std::string& yaml) {
    v1::SubmitSweepRequest req;
    req.set_spec_yaml(yaml);
    req.set_file_name("test.yaml");
    auto resp = core_->SubmitSweep(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? resp->sweep_id() : "";
  }

  std::string RegisterCpu() {
    v1::RegisterRequest req;
    req.set_host("node1");
    auto resp = core_->Register(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp->worker_id();
  }

  std::string RegisterGpu(int index) {
    v1::RegisterRequest req;
    req.set_host("node1");
    req.mutable_gpu()->set_index(index);
    req.mutable_gpu()->set_name("Test GPU");
    req.mutable_gpu()->set_memory_mib(81920);
    return core_->Register(req)->worker_id();
  }

  std::optional<v1::TrialAssignment> Lease(const std::string& worker) {
    v1::LeaseTrialRequest req;
    req.set_worker_id(worker);
    auto resp = core_->LeaseTrial(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    if (!resp.ok() || !resp->has_trial()) return std::nullopt;
    return resp->trial();
  }

  absl::StatusOr<v1::ReportMetricsResponse> Report(const std::string& worker,
                                                   const v1::TrialAssignment& a, int64_t seq,
                                                   double loss, int64_t step) {
    v1::ReportMetricsRequest req;
    req.set_worker_id(worker);
    req.set_trial_id(a.trial_id());
    req.set_epoch(a.epoch());
    req.set_seq(seq);
    v1::MetricPoint* p = req.add_points();
    p->set_step(step);
    p->set_name("loss");
    p->set_value(loss);
    p->set_time(1.0);
    return core_->ReportMetrics(req);
  }

  absl::Status Finish(const std::string& worker, const v1::TrialAssignment& a,
                      v1::TrialOutcome outcome, int exit_code = 0) {
    v1::FinishTrialRequest req;
    req.set_worker_id(worker);
    req.set_trial_id(a.trial_id());
    req.set_epoch(a.epoch());
    req.set_outcome(outcome);
    req.set_exit_code(exit_code);
    return core_->FinishTrial(req).status();
  }

  v1::SweepSummary Summary(const std::string& sweep) {
    v1::GetStatusRequest req;
    req.set_sweep_id(sweep);
    return core_->GetStatus(req)->sweeps(0);
  }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Scheduler> core_;
  SchedulerOptions options_;  // Open() builds the scheduler with these
};

TEST_F(SchedulerTest, GridTrialsAreLeasedOnceEachInOrderWithTheirParameters) {
  std::string sweep = Submit(kGrid);
  std::string w = RegisterCpu();
  std::vector<double> lrs;
  for (int i = 0; i < 3; ++i) {
    auto a = Lease(w);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->trial_id(), TrialId(sweep, i));
    EXPECT_EQ(a->epoch(), 1);
    EXPECT_EQ(a->attempt(), 1);
    lrs.push_back(nlohmann::json::parse(a->params_json())["lr"].get<double>());
    EXPECT_THAT(a->argv(), ::testing::ElementsAre("/bin/true", ::testing::StartsWith("--lr=")));
    ASSERT_TRUE(Finish(w, *a, v1::TRIAL_OUTCOME_COMPLETED).ok());
  }
  EXPECT_THAT(lrs, ::testing::ElementsAre(0.1, 0.01, 0.001));
  EXPECT_FALSE(Lease(w));
  v1::SweepSummary s = Summary(sweep);
  EXPECT_EQ(s.state(), "finished");
  EXPECT_EQ(s.completed(), 3);
  EXPECT_EQ(s.queued(), 0);
}

TEST_F(SchedulerTest, RepeatedMetricReportIsAcknowledgedButStoredOnce) {
  Submit(kGrid);
  std::string w = RegisterCpu();
  auto a = Lease(w);
  ASSERT_TRUE(a);
  auto first = Report(w, *a, 1, 0.5, 1);
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->duplicate());
  auto again = Report(w, *a, 1, 0.5, 1);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->duplicate());
  ASSERT_TRUE(Report(w, *a, 2, 0.25, 2).ok());
  Db db(dir_ / "sweeps.db");
  EXPECT_EQ(db.Value("SELECT COUNT(*) FROM metrics WHERE trial_id='" + a->trial_id() + "'"),
            "2");
  EXPECT_EQ(db.Value("SELECT final_metric FROM trials WHERE id='" + a->trial_id() + "'"),
            "0.25");
}

TEST_F(SchedulerTest, ExpiredLeaseRequeuesTheTrialAndRefusesTheStaleWorker) {
  Submit(kGrid);
  std::string w1 = RegisterCpu();
  std::string w2 = RegisterCpu();
  auto a = Lease(w1);
  ASSERT_TRUE(a);
  clock_.Advance(absl::Seconds(11));
  core_->Tick();
  auto b = Lease(w2);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->trial_id(), a->trial_id());  // the re-queued trial goes first
  EXPECT_EQ(b->epoch(), 2);
  EXPECT_EQ(b->attempt(), 2);
  auto stale = Report(w1, *a, 1, 0.1, 1);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Finish(w1, *a, v1::TRIAL_OUTCOME_COMPLETED).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Report(w2, *b, 1, 0.1, 1).ok());
  EXPECT_TRUE(Finish(w2, *b, v1::TRIAL_OUTCOME_COMPLETED).ok());
}

TEST_F(SchedulerTest, HeartbeatsKeepALeaseAlive) {
  Submit(kGrid);
  std::string w = RegisterCpu();
  auto a = Lease(w);
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(absl::Seconds(6));
    v1::HeartbeatRequest hb;
    hb.set_worker_id(w);
    v1::RunningTrial* r = hb.add_running();
    r->set_trial_id(a->trial_id());
    r->set_epoch(a->epoch());
    auto resp = core_->Heartbeat(hb);
    ASSERT_TRUE(resp.ok());
    EXPECT_EQ(resp->stop_size(), 0);
    core_->Tick();
  }
  EXPECT_TRUE(Finish(w, *a, v1::TRIAL_OUTCOME_COMPLETED).ok());
}

TEST_F(SchedulerTest, TrialFailsOnceItsWorkersWereLostMoreThanMaxRetries) {
  std::string sweep = Submit(kGrid);  // max_retries: 1
  std::string w = RegisterCpu();
  for (int attempt = 1; attempt <= 2; ++attempt) {
    auto a = Lease(w);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->trial_id(), TrialId(sweep, 0));
    EXPECT_EQ(a->attempt(), attempt);
    clock_.Advance(absl::Seconds(11));
    core_->Tick();
  }
  Db db(dir_ / "sweeps.db");
  EXPECT_EQ(db.Value("SELECT state FROM trials WHERE idx=0"), "failed");
  EXPECT_THAT(db.Value("SELECT message FROM trials WHERE idx=0"),
              HasSubstr("no retries left (max_retries: 1)"));
}

TEST_F(SchedulerTest, RestartedSchedulerKeepsRunningTrialsAndAcceptsTheirReports) {
  std::string sweep = Submit(kGrid);
  std::string w = RegisterCpu();
  auto a = Lease(w);
  ASSERT_TRUE(Report(w, *a, 1, 0.9, 1).ok());
  Open();  // a new scheduler over the same database
  auto again = Report(w, *a, 1, 0.9, 1);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->duplicate());
  ASSERT_TRUE(Report(w, *a, 2, 0.8, 2).ok());
  ASSERT_TRUE(Finish(w, *a, v1::TRIAL_OUTCOME_COMPLETED).ok());
  auto b = Lease(w);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->trial_id(), TrialId(sweep, 1));  // no trial is handed out twice
  v1::SweepSummary s = Summary(sweep);
  EXPECT_EQ(s.completed(), 1);
  EXPECT_EQ(s.running(), 1);
  EXPECT_EQ(s.queued(), 1);
  EXPECT_DOUBLE_EQ(s.best_value(), 0.8);
}

TEST_F(SchedulerTest, CancelDropsQueuedTrialsAndStopsRunningOnes) {
  std::string sweep = Submit(kGrid);
  std::string w = RegisterCpu();
  auto a = Lease(w);
  v1::CancelSweepRequest c;
  c.set_sweep_id(sweep);
  auto resp = core_->CancelSweep(c);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->stopping_running(), 1);
  EXPECT_EQ(resp->cancelled_queued(), 2);
  v1::HeartbeatRequest hb;
  hb.set_worker_id(w);
  *hb.add_running() = [&] {
    v1::RunningTrial r;
    r.set_trial_id(a->trial_id());
    r.set_epoch(a->epoch());
    return r;
  }();
  auto hr = core_->Heartbeat(hb);
  ASSERT_EQ(hr->stop_size(), 1);
  EXPECT_EQ(hr->stop(0).trial_id(), a->trial_id());
  EXPECT_FALSE(Lease(w));
  ASSERT_TRUE(Finish(w, *a, v1::TRIAL_OUTCOME_STOPPED).ok());
  v1::SweepSummary s = Summary(sweep);
  EXPECT_EQ(s.state(), "cancelled");
  EXPECT_EQ(s.cancelled(), 1);
  EXPECT_EQ(s.queued(), 0);
  EXPECT_EQ(core_->CancelSweep(c).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(SchedulerTest, MaxConcurrentLimitsRunningTrials) {
  Submit(std::string(kGrid) + "max_concurrent: 1\n");
  std::string w1 = RegisterCpu(), w2 = RegisterCpu();
  auto a = Lease(w1);
  ASSERT_TRUE(a);
  EXPECT_FALSE(Lease(w2));
  ASSERT_TRUE(Finish(w1, *a, v1::TRIAL_OUTCOME_COMPLETED).ok());
  EXPECT_TRUE(Lease(w2));
}

TEST_F(SchedulerTest, LeaseWaitingBehindMaxConcurrentGetsTheTrialWhenASlotOpens) {
  options_.max_lease_wait = absl::Seconds(120);  // it returns when woken, not by time
  Open();
  Submit(std::string(kGrid) + "max_concurrent: 1\n");
  std::string w1 = RegisterCpu(), w2 = RegisterCpu();
  auto a = Lease(w1);
  ASSERT_TRUE(a);
  absl::StatusOr<v1::LeaseTrialResponse> waited;
  std::thread waiter([&] {
    v1::LeaseTrialRequest req;
    req.set_worker_id(w2);
    req.set_wait_ms(60000);  // empty after 60 s if never woken
    waited = core_->LeaseTrial(req);
  });
  // Once it waits, only the finish can hand it the trial.
  ASSERT_TRUE(testing::WaitFor([&] { return core_->WaitingLeases() == 1; }, absl::Seconds(60)));
  ASSERT_TRUE(Finish(w1, *a, v1::TRIAL_OUTCOME_COMPLETED).ok());
  waiter.join();
  ASSERT_TRUE(waited.ok()) << waited.status();
  ASSERT_TRUE(waited->has_trial());
  EXPECT_NE(waited->trial().trial_id(), a->trial_id());
}

TEST_F(SchedulerTest, TrialThatNeedsAGpuNeverLandsOnACpuSlot) {
  Submit(std::string(kGrid) + "resources: {gpus_per_trial: 1}\n");
  std::string cpu = RegisterCpu();
  EXPECT_FALSE(Lease(cpu));
  std::string gpu = RegisterGpu(3);
  auto a = Lease(gpu);
  ASSERT_TRUE(a);
  Db db(dir_ / "sweeps.db");
  EXPECT_EQ(db.Value("SELECT gpu FROM trials WHERE id='" + a->trial_id() + "'"), "3");
}

TEST_F(SchedulerTest, BadSpecIsRefusedAndNothingIsStored) {
  v1::SubmitSweepRequest req;
  req.set_spec_yaml("method: grd\nparameters:\n  x:\n    values: [1]\n");
  req.set_file_name("bad.yaml");
  auto resp = core_->SubmitSweep(req);
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(resp.status().message()), HasSubstr("bad.yaml:1:"));
  Db db(dir_ / "sweeps.db");
  EXPECT_EQ(db.Value("SELECT COUNT(*) FROM sweeps"), "0");
}

TEST_F(SchedulerTest, UnknownWorkerMustRegisterAgain) {
  v1::LeaseTrialRequest req;
  req.set_worker_id("nobody");
  EXPECT_EQ(core_->LeaseTrial(req).status().code(), absl::StatusCode::kNotFound);
  v1::HeartbeatRequest hb;
  hb.set_worker_id("nobody");
  EXPECT_TRUE(core_->Heartbeat(hb)->reregister());
}

TEST_F(SchedulerTest, ReleasedTrialIsRequeuedWithoutUsingARetry) {
  std::string sweep = Submit(kGrid);  // max_retries: 1
  std::string w = RegisterCpu();
  for (int i = 0; i < 3; ++i) {
    auto a = Lease(w);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->trial_id(), TrialId(sweep, 0));
    ASSERT_TRUE(Finish(w, *a, v1::TRIAL_OUTCOME_RELEASED).ok());
  }
  Db db(dir_ / "sweeps.db");
  EXPECT_EQ(db.Value("SELECT state FROM trials WHERE idx=0"), "queued");
}

}  // namespace
}  // namespace sweep

namespace sweep {
namespace {

constexpr char kAsha[] = R"(
command: ["/bin/true", "${args}"]
method: grid
metric: {name: loss, goal: minimize}
early_terminate: {type: asha, min_iter: 1, max_iter: 4, eta: 2}
parameters:
  x: {values: [1, 2, 3, 4]}
)";

TEST_F(SchedulerTest, EarlyStoppedTrialIsToldToStopAndEndsStoppedWithItsRung) {
  std::string sweep = Submit(kAsha);
  std::string w1 = RegisterCpu(), w2 = RegisterCpu();
  auto a = Lease(w1), b = Lease(w2);
  ASSERT_TRUE(Report(w1, *a, 1, 1.0, 1).ok());  // first at rung 1: goes on
  auto rb = Report(w2, *b, 1, 2.0, 1);          // worse than the cutoff 1.0
  ASSERT_TRUE(rb.ok());
  EXPECT_TRUE(rb->stop());
  ASSERT_TRUE(Finish(w2, *b, v1::TRIAL_OUTCOME_STOPPED).ok());
  Db db(dir_ / "sweeps.db");
  auto row = db.Query("SELECT state, stopped_at_step, message FROM trials WHERE id='" +
                      b->trial_id() + "'");
  ASSERT_EQ(row.size(), 1u);
  EXPECT_EQ(row[0][0], "stopped");
  EXPECT_EQ(row[0][1], "1");
  EXPECT_THAT(row[0][2], HasSubstr("early stopped at rung 1 (step 1)"));
  EXPECT_EQ(Summary(sweep).stopped(), 1);
}

TEST_F(SchedulerTest, RestartedSchedulerRemembersTheRungs) {
  Submit(kAsha);
  std::string w1 = RegisterCpu(), w2 = RegisterCpu();
  auto a = Lease(w1);
  ASSERT_TRUE(Report(w1, *a, 1, 1.0, 1).ok());
  ASSERT_TRUE(Finish(w1, *a, v1::TRIAL_OUTCOME_COMPLETED).ok());
  Open();
  auto b = Lease(w2);
  auto rb = Report(w2, *b, 1, 5.0, 1);
  ASSERT_TRUE(rb.ok());
  EXPECT_TRUE(rb->stop()) << "rung 1 still holds the first trial's 1.0";
}

constexpr char kSix[] = R"(
command: ["/bin/true", "${args}"]
method: grid
metric: {name: loss, goal: minimize, target: 0.1}
max_failed_trials: 2
timeout: 30s
parameters:
  x: {values: [1, 2, 3, 4, 5, 6]}
)";

TEST_F(SchedulerTest, ReachingTheTargetStopsLaunchingAndEndsTheSweepOnceRunningOnesEnd) {
  std::string sweep = Submit(kSix);
  std::string w1 = RegisterCpu(), w2 = RegisterCpu();
  auto a = Lease(w1), b = Lease(w2);
  ASSERT_TRUE(Report(w1, *a, 1, 0.05, 1).ok());
  EXPECT_FALSE(Lease(w1)) << "no new trial once the target is reached";
  EXPECT_EQ(Summary(sweep).launch_stopped(),
            "metric.target (loss 0.1) reached by trial " + a->trial_id());
  ASSERT_TRUE(Finish(w1, *a, v1::TRIAL_OUTCOME_COMPLETED).ok());
  EXPECT_EQ(Summary(sweep).state(), "running");  // b still runs
  ASSERT_TRUE(Finish(w2, *b, v1::TRIAL_OUTCOME_COMPLETED).ok());
  v1::SweepSummary s = Summary(sweep);
  EXPECT_EQ(s.state(), "finished");
  EXPECT_EQ(s.end_reason(),
            "metric.target (loss 0.1) reached by trial " + a->trial_id() + " after 2 trials");
  EXPECT_EQ(s.queued(), 0);
}

TEST_F(SchedulerTest, MaxFailedTrialsStopsLaunching) {
  std::string sweep = Submit(kSix);
  std::string w = RegisterCpu();
  for (int i = 0; i < 2; ++i) {
    auto a = Lease(w);
    ASSERT_TRUE(a);
    ASSERT_TRUE(Finish(w, *a, v1::TRIAL_OUTCOME_FAILED, 1).ok());
  }
  EXPECT_FALSE(Lease(w));
  v1::SweepSummary s = Summary(sweep);
  EXPECT_EQ(s.state(), "finished");
  EXPECT_EQ(s.end_reason(), "max_failed_trials (2) reached after 2 trials");
}

TEST_F(SchedulerTest, TrialPastItsTimeoutIsStopped) {
  Submit(kSix);  // timeout: 30s
  std::string w = RegisterCpu();
  auto a = Lease(w);
  v1::HeartbeatRequest hb;
  hb.set_worker_id(w);
  v1::RunningTrial* r = hb.add_running();
  r->set_trial_id(a->trial_id());
  r->set_epoch(a->epoch());
  for (int i = 0; i < 5; ++i) {  // 25 s, heartbeating every 5 s
    clock_.Advance(absl::Seconds(5));
    core_->Tick();
    EXPECT_EQ(core_->Heartbeat(hb)->stop_size(), 0);
  }
  clock_.Advance(absl::Seconds(5));
  core_->Tick();
  EXPECT_EQ(core_->Heartbeat(hb)->stop_size(), 1);
  ASSERT_TRUE(Finish(w, *a, v1::TRIAL_OUTCOME_STOPPED).ok());
  Db db(dir_ / "sweeps.db");
  EXPECT_EQ(db.Value("SELECT state || ': ' || message FROM trials WHERE id='" +
                     a->trial_id() + "'"),
            "stopped: timeout (30s) exceeded");
}

TEST_F(SchedulerTest, MaxDurationStopsRunningTrialsAndLaunching) {
  std::string sweep = Submit(std::string(kGrid) + "max_duration: 1h\n");
  std::string w = RegisterCpu();
  auto a = Lease(w);
  clock_.Advance(absl::Hours(1));
  core_->Tick();
  EXPECT_FALSE(Lease(w));
  ASSERT_TRUE(Finish(w, *a, v1::TRIAL_OUTCOME_STOPPED).ok());
  v1::SweepSummary s = Summary(sweep);
  EXPECT_EQ(s.state(), "finished");
  EXPECT_EQ(s.stopped(), 1);
  EXPECT_EQ(s.end_reason(), "max_duration (1h) reached after 1 trials");
}

TEST_F(SchedulerTest, StatusSaysWhyQueuedTrialsWait) {
  std::string sweep = Submit(std::string(kGrid) + "max_concurrent: 1\n");
  EXPECT_EQ(Summary(sweep).waiting(), "no worker is connected");
  std::string w = RegisterCpu();
  EXPECT_EQ(Summary(sweep).waiting(), "");
  auto a = Lease(w);
  EXPECT_EQ(Summary(sweep).waiting(), "max_concurrent (1) reached");
  std::string gpu_sweep = Submit(std::string(kGrid) + "resources: {gpus_per_trial: 1}\n");
  EXPECT_EQ(Summary(gpu_sweep).waiting(),
            "needs a GPU slot (resources.gpus_per_trial: 1) and no GPU worker is connected");
}

TEST_F(SchedulerTest, StatusEstimatesTimeAndCostFromEndedTrials) {
  std::string sweep = Submit(std::string(kGrid) + "cost: {gpu_hour: 36, currency: EUR}\n");
  std::string w = RegisterGpu(0);
  EXPECT_FALSE(Summary(sweep).has_estimate());
  auto a = Lease(w);
  clock_.Advance(absl::Seconds(100));
  ASSERT_TRUE(Finish(w, *a, v1::TRIAL_OUTCOME_COMPLETED).ok());
  v1::SweepSummary s = Summary(sweep);
  ASSERT_TRUE(s.has_estimate());
  EXPECT_EQ(s.estimate_basis(), "1 ended trial");
  EXPECT_DOUBLE_EQ(s.eta_seconds(), 200);  // two more trials of 100 s on one slot
  EXPECT_DOUBLE_EQ(s.gpu_hours_total(), 300 / 3600.0);
  EXPECT_TRUE(s.has_cost());
  EXPECT_DOUBLE_EQ(s.cost_total(), 3.0);
  EXPECT_EQ(s.currency(), "EUR");
}

TEST_F(SchedulerTest, BayesSweepSuggestsFromItsHistory) {
  std::string sweep = Submit(R"(
command: ["/bin/true", "${args}"]
method: bayes
seed: 3
run_cap: 14
metric: {name: loss, goal: minimize}
parameters:
  x: {min: -5.0, max: 5.0}
)");
  std::string w = RegisterCpu();
  std::vector<double> xs;
  for (int i = 0; i < 14; ++i) {
    auto a = Lease(w);
    ASSERT_TRUE(a);
    double x = nlohmann::json::parse(a->params_json())["x"];
    xs.push_back(x);
    ASSERT_TRUE(Report(w, *a, 1, (x - 2) * (x - 2), 1).ok());
    ASSERT_TRUE(Finish(w, *a, v1::TRIAL_OUTCOME_COMPLETED).ok());
  }
  // After the random start-up trials, suggestions concentrate near the optimum x=2.
  double near = 0;
  for (size_t i = spec::kTpeStartupTrials; i < xs.size(); ++i) near += std::abs(xs[i] - 2);
  near /= static_cast<double>(xs.size() - spec::kTpeStartupTrials);
  EXPECT_LT(near, 2.5);
  EXPECT_EQ(Summary(sweep).state(), "finished");
}


TEST_F(SchedulerTest, FinishTrialLeasesTheSlotsNextTrialInTheSameCall) {
  std::string sweep = Submit(kGrid);
  std::string w = RegisterCpu();
  auto a = Lease(w);
  ASSERT_TRUE(a);
  std::vector<std::string> ran = {a->trial_id()};
  while (true) {
    v1::FinishTrialRequest req;
    req.set_worker_id(w);
    req.set_trial_id(a->trial_id());
    req.set_epoch(a->epoch());
    req.set_outcome(v1::TRIAL_OUTCOME_COMPLETED);
    req.set_lease_next(true);
    auto resp = core_->FinishTrial(req);
    ASSERT_TRUE(resp.ok()) << resp.status();
    if (!resp->has_next()) break;
    a = resp->next();
    ran.push_back(a->trial_id());
    Db db(dir_ / "sweeps.db");
    EXPECT_EQ(db.Value("SELECT state || ' ' || worker FROM trials WHERE id='" + a->trial_id() +
                       "'"),
              "running " + w);
  }
  EXPECT_THAT(ran, ::testing::ElementsAre(TrialId(sweep, 0), TrialId(sweep, 1),
                                          TrialId(sweep, 2)));
  EXPECT_EQ(Summary(sweep).state(), "finished");
  EXPECT_EQ(Summary(sweep).completed(), 3);
}

TEST_F(SchedulerTest, ADrainingWorkerGetsNoNextTrialWithItsFinish) {
  Submit(kGrid);
  std::string w = RegisterCpu();
  auto a = Lease(w);
  ASSERT_TRUE(a);
  v1::HeartbeatRequest hb;
  hb.set_worker_id(w);
  hb.set_draining(true);
  v1::RunningTrial* r = hb.add_running();
  r->set_trial_id(a->trial_id());
  r->set_epoch(a->epoch());
  ASSERT_TRUE(core_->Heartbeat(hb).ok());
  v1::FinishTrialRequest req;
  req.set_worker_id(w);
  req.set_trial_id(a->trial_id());
  req.set_epoch(a->epoch());
  req.set_outcome(v1::TRIAL_OUTCOME_COMPLETED);
  req.set_lease_next(true);
  auto resp = core_->FinishTrial(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_FALSE(resp->has_next());
}

TEST_F(SchedulerTest, RestartKeepsABudgetThatStoppedLaunching) {
  std::string sweep = Submit(R"(
command: ["/bin/true", "${args}"]
method: grid
max_failed_trials: 1
parameters:
  lr: {values: [1, 2, 3, 4]}
)");
  std::string w = RegisterCpu();
  auto a = Lease(w);
  auto b = Lease(w);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(Finish(w, *a, v1::TRIAL_OUTCOME_FAILED, 1).ok());
  EXPECT_FALSE(Lease(w));  // max_failed_trials reached: nothing new starts
  Open();                   // the scheduler restarts with trial b still running
  v1::SweepSummary s = Summary(sweep);
  EXPECT_THAT(s.launch_stopped(), HasSubstr("max_failed_trials"));
  std::string w2 = RegisterCpu();
  EXPECT_FALSE(Lease(w2));
  ASSERT_TRUE(Finish(w, *b, v1::TRIAL_OUTCOME_COMPLETED).ok());
  EXPECT_EQ(Summary(sweep).state(), "finished");
  Db db(dir_ / "sweeps.db");
  EXPECT_EQ(db.Value("SELECT COUNT(*) FROM trials WHERE sweep_id='" + sweep + "'"), "2");
}

// While alive, no file of this process can grow past `bytes` (RLIMIT_FSIZE): the
// database's writes fail as on a full disk.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    signal(SIGXFSZ, SIG_IGN);  // a write past the limit fails with EFBIG instead
    getrlimit(RLIMIT_FSIZE, &old_);
    rlimit r = old_;
    r.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &r);
  }
  ~FileSizeLimit() { setrlimit(RLIMIT_FSIZE, &old_); }

 private:
  rlimit old_;
};

v1::ReportMetricsRequest ManyPoints(const std::string& worker, const v1::TrialAssignment& a,
                                    int64_t seq, int n) {
  v1::ReportMetricsRequest req;
  req.set_worker_id(worker);
  req.set_trial_id(a.trial_id());
  req.set_epoch(a.epoch());
  req.set_seq(seq);
  for (int i = 0; i < n; ++i) {
    v1::MetricPoint* p = req.add_points();
    p->set_step(100 + i);
    p->set_name("loss");
    p->set_value(1.0 / (100 + i));
    p->set_time(1.0);
  }
  return req;
}

TEST_F(SchedulerTest, AFailedWriteIsRolledBackWholeAndTheRetryIsStoredOnce) {
  std::string sweep = Submit(kGrid);
  std::string w = RegisterCpu();
  auto a = Lease(w);
  ASSERT_TRUE(a);
  ASSERT_TRUE(Report(w, *a, 1, 0.5, 1).ok());
  std::string wal = dir_ / "sweeps.db-wal";
  ASSERT_TRUE(std::filesystem::exists(wal));
  v1::ReportMetricsRequest big = ManyPoints(w, *a, 2, 2000);
  {
    FileSizeLimit full(std::filesystem::file_size(wal));
    auto r = core_->ReportMetrics(big);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
    EXPECT_THAT(r.status().message(), HasSubstr("nothing was recorded"));
    absl::Status f = Finish(w, *a, v1::TRIAL_OUTCOME_COMPLETED);
    EXPECT_EQ(f.code(), absl::StatusCode::kUnavailable) << f;
    // Reads go on: the sweep's status answers from what was stored.
    v1::SweepSummary s = Summary(sweep);
    EXPECT_EQ(s.running(), 1);
    EXPECT_EQ(s.completed(), 0);
  }
  // The disk has room again. For a second after a failure writes are refused at once
  // (no rebuild per request); then the worker's retries go through, each stored once.
  EXPECT_EQ(core_->ReportMetrics(big).status().code(), absl::StatusCode::kUnavailable);
  clock_.Advance(absl::Seconds(2));
  auto r = core_->ReportMetrics(big);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->duplicate());
  auto again = core_->ReportMetrics(big);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->duplicate());
  ASSERT_TRUE(Finish(w, *a, v1::TRIAL_OUTCOME_COMPLETED).ok());
  Db db(dir_ / "sweeps.db");
  EXPECT_EQ(db.Value("SELECT COUNT(*) FROM metrics WHERE trial_id='" + a->trial_id() + "'"),
            "2001");
  EXPECT_EQ(db.Value("SELECT state FROM trials WHERE id='" + a->trial_id() + "'"), "completed");
  // The rest of the sweep runs as usual.
  for (int i = 0; i < 2; ++i) {
    auto next = Lease(w);
    ASSERT_TRUE(next);
    ASSERT_TRUE(Finish(w, *next, v1::TRIAL_OUTCOME_COMPLETED).ok());
  }
  EXPECT_EQ(Summary(sweep).state(), "finished");
}

TEST_F(SchedulerTest, ALeaseWhoseWriteFailsIsNotHandedOut) {
  std::string sweep = Submit(kGrid);
  std::string w = RegisterCpu();
  auto a = Lease(w);
  ASSERT_TRUE(a);
  std::string w2 = RegisterCpu();
  std::string wal = dir_ / "sweeps.db-wal";
  {
    FileSizeLimit full(std::filesystem::file_size(wal));
    v1::LeaseTrialRequest req;
    req.set_worker_id(w2);
    auto resp = core_->LeaseTrial(req);
    EXPECT_EQ(resp.status().code(), absl::StatusCode::kUnavailable) << resp.status();
  }
  clock_.Advance(absl::Seconds(2));
  // Nothing of the failed lease remains: the next lease is trial 1, attempt 1, epoch 1.
  auto b = Lease(w2);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->trial_id(), TrialId(sweep, 1));
  EXPECT_EQ(b->attempt(), 1);
  EXPECT_EQ(b->epoch(), 1);
  // And trial 0's lease survived the rebuild.
  ASSERT_TRUE(Finish(w, *a, v1::TRIAL_OUTCOME_COMPLETED).ok());
}

TEST_F(SchedulerTest, ARetriedFinishGetsTheSameNextTrialAgain) {
  std::string sweep = Submit(kGrid);
  std::string w = RegisterCpu();
  auto a = Lease(w);
  ASSERT_TRUE(a);
  v1::FinishTrialRequest req;
  req.set_worker_id(w);
  req.set_trial_id(a->trial_id());
  req.set_epoch(a->epoch());
  req.set_outcome(v1::TRIAL_OUTCOME_COMPLETED);
  req.set_lease_next(true);
  auto first = core_->FinishTrial(req);
  ASSERT_TRUE(first.ok() && first->has_next());
  // The reply was lost; the worker sends the same request again.
  auto again = core_->FinishTrial(req);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(again->has_next()) << "the trial leased in the lost reply is handed out again";
  EXPECT_EQ(again->next().trial_id(), first->next().trial_id());
  EXPECT_EQ(again->next().epoch(), first->next().epoch());
  EXPECT_EQ(again->next().trial_id(), TrialId(sweep, 1));
}


// ---------------------------------------------------------------- bounds on requests

TEST_F(SchedulerTest, ThreeThousandRegistrationsFromOneHostGetDistinctIdsAndRows) {
  options_.max_workers_per_host = 3000;
  Open();
  std::set<std::string> ids;
  for (int i = 0; i < 3000; ++i) {
    v1::RegisterRequest req;
    req.set_host("node1");
    req.set_pid(i);  // each row must keep the pid of its own registration
    auto resp = core_->Register(req);
    ASSERT_TRUE(resp.ok()) << resp.status();
    EXPECT_THAT(resp->worker_id(), ::testing::MatchesRegex("node1/cpu0-[0-9a-f]{16}"));
    ids.insert(resp->worker_id());
  }
  EXPECT_EQ(ids.size(), 3000u);
  Db db(dir_ / "sweeps.db");
  EXPECT_EQ(db.Value("SELECT COUNT(DISTINCT id) FROM workers"), "3000");
  EXPECT_EQ(db.Value("SELECT COUNT(DISTINCT pid) FROM workers"), "3000");
}

TEST_F(SchedulerTest, RegistrationsBeyondTheHostLimitAreRefusedUntilASlotIsLost) {
  options_.max_workers_per_host = 3;
  Open();
  std::vector<std::string> workers;
  for (int i = 0; i < 3; ++i) workers.push_back(RegisterCpu());
  v1::RegisterRequest req;
  req.set_host("node1");
  auto refused = core_->Register(req);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("host node1 already has 3 worker slots registered"));
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("--max-workers-per-host"));
  req.set_host("node2");
  EXPECT_TRUE(core_->Register(req).ok()) << "other hosts are not affected";
  Db db(dir_ / "sweeps.db");
  EXPECT_EQ(db.Value("SELECT COUNT(*) FROM workers WHERE host='node1'"), "3");
  // Once node1's slots are lost (silent for a lease timeout), it may register again.
  clock_.Advance(options_.lease_timeout + absl::Seconds(1));
  core_->Tick();
  req.set_host("node1");
  EXPECT_TRUE(core_->Register(req).ok());
}

TEST_F(SchedulerTest, RegistrationsAreRefusedForHostsAndGpuNamesThatAreTooLongOrNotText) {
  v1::RegisterRequest req;
  req.set_host(std::string(kMaxNameBytes + 1, 'h'));
  EXPECT_EQ(core_->Register(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.set_host(std::string("no\0de", 5));
  EXPECT_EQ(core_->Register(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.set_host("node1");
  req.mutable_gpu()->set_name(std::string(100000, 'g'));
  EXPECT_EQ(core_->Register(req).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Db(dir_ / "sweeps.db").Value("SELECT COUNT(*) FROM workers"), "0");
}

// With the same seed a second scheduler draws the id the first one gave: it must
// draw again rather than take over the row, whether its worker is connected or
// was lost before the restart (lost workers are not loaded into memory).
TEST_F(SchedulerTest, ARegistrationNeverTakesOverTheRowOfAnotherWorker) {
  for (const std::string state : {"idle", "lost"}) {
    SCOPED_TRACE(state);
    options_.random_seed = 20;
    std::filesystem::remove_all(dir_ / "sweeps.db");
    std::filesystem::remove_all(dir_ / "sweeps.db-wal");
    std::filesystem::remove_all(dir_ / "sweeps.db-shm");
    Open();
    v1::RegisterRequest req;
    req.set_host("node1");
    req.set_pid(111);
    auto first = core_->Register(req);
    ASSERT_TRUE(first.ok()) << first.status();
    if (state == "lost") {
      clock_.Advance(options_.lease_timeout + absl::Seconds(1));
      core_->Tick();
    }
    Open();  // the same seed again
    req.set_pid(222);
    auto second = core_->Register(req);
    ASSERT_TRUE(second.ok()) << second.status();
    EXPECT_NE(second->worker_id(), first->worker_id());
    Db db(dir_ / "sweeps.db");
    EXPECT_EQ(db.Value("SELECT pid FROM workers WHERE id='" + first->worker_id() + "'"), "111");
    EXPECT_EQ(db.Value("SELECT state FROM workers WHERE id='" + first->worker_id() + "'"),
              state);
    EXPECT_EQ(db.Value("SELECT pid FROM workers WHERE id='" + second->worker_id() + "'"),
              "222");
  }
}

TEST_F(SchedulerTest, AReportWhoseSeqNoLeaseCouldHaveSentIsRefusedAndTheLeaseGoesOn) {
  Submit(kGrid);
  std::string w = RegisterCpu();
  auto a = Lease(w);
  ASSERT_TRUE(a);
  for (int64_t seq : {std::numeric_limits<int64_t>::max(), int64_t{2}, int64_t{0},
                      int64_t{-1}, std::numeric_limits<int64_t>::min()}) {
    auto r = Report(w, *a, seq, 0.5, 1);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << seq;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("the next one is 1"));
  }
  Db db(dir_ / "sweeps.db");
  EXPECT_EQ(db.Value("SELECT COUNT(*) FROM metrics"), "0");
  EXPECT_EQ(db.Value("SELECT last_seq FROM trials WHERE id='" + a->trial_id() + "'"), "0");
  // The lease's reports go on: 1 and 2 are stored, a retry of 2 is a duplicate, and
  // a jump from 2 to 4 is refused too.
  for (int64_t seq : {1, 2}) {
    auto r = Report(w, *a, seq, 1.0 / seq, seq);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_FALSE(r->duplicate());
  }
  EXPECT_TRUE(Report(w, *a, 2, 0.5, 2)->duplicate());
  EXPECT_EQ(Report(w, *a, 4, 0.25, 4).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(db.Value("SELECT COUNT(*) FROM metrics"), "2");
  EXPECT_EQ(db.Value("SELECT last_seq FROM trials WHERE id='" + a->trial_id() + "'"), "2");
}

}  // namespace
}  // namespace sweep
