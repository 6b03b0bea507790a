// Messages from unknown or misbehaving clients: stale or
// made-up leases, huge batches, NaN and infinite values, invalid UTF-8, bytes
// that are no protobuf at all, and parameter values full of shell syntax. Each
// gets a clear status and none takes the scheduler down.
//
// Two levels: the core (Scheduler over a real SQLite file, fake clock), where
// the status code is the contract; and the real gRPC server on a free loopback
// port, reached through a raw channel (grpc::GenericStub) so that the test can
// send bytes the generated stubs never would.
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <future>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/process.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "scheduler/scheduler.h"
#include "scheduler/server.h"
#include "worker/metrics_reader.h"
#include "sweep/v1/sweep.grpc.pb.h"
#include "sweeps/spec.h"
#include "tests/cluster.h"
#include "tests/testing.h"

namespace sweep {
namespace {

using ::sweep::testing::Db;
using ::sweep::testing::ReadFile;
using ::sweep::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

constexpr char kSpec[] = R"(
name: hostile
command: ["/bin/true", "${args}"]
method: grid
metric: {name: loss, goal: minimize}
early_terminate: {type: asha, min_iter: 1, eta: 2}
parameters:
  lr:
    values: [0.1, 0.01, 0.001, 0.0001]
)";

// ---------------------------------------------------------------- the core

// Registers a worker on host node1 over gRPC and leases it a trial (one must be
// runnable).
void RegisterAndLease(v1::WorkerService::Stub& workers, std::string* worker,
                      v1::TrialAssignment* trial) {
  grpc::ClientContext c1;
  v1::RegisterRequest reg;
  reg.set_host("node1");
  v1::RegisterResponse registered;
  ASSERT_TRUE(workers.Register(&c1, reg, &registered).ok());
  *worker = registered.worker_id();
  grpc::ClientContext c2;
  v1::LeaseTrialRequest lease;
  lease.set_worker_id(*worker);
  v1::LeaseTrialResponse leased;
  ASSERT_TRUE(workers.LeaseTrial(&c2, lease, &leased).ok());
  ASSERT_TRUE(leased.has_trial());
  *trial = leased.trial();
}

// A report of one point under the lease of `trial`, held by `worker`.
v1::ReportMetricsRequest OnePointReport(const std::string& worker,
                                        const v1::TrialAssignment& trial, int64_t seq,
                                        const std::string& name, double value,
                                        int64_t step = 1, double time = 1.0) {
  v1::ReportMetricsRequest req;
  req.set_worker_id(worker);
  req.set_trial_id(trial.trial_id());
  req.set_epoch(trial.epoch());
  req.set_seq(seq);
  v1::MetricPoint* p = req.add_points();
  p->set_step(step);
  p->set_name(name);
  p->set_value(value);
  p->set_time(time);
  return req;
}

class HostileCoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = Store::Open(dir_ / "sweeps.db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    SchedulerOptions o;
    o.lease_timeout = absl::Seconds(10);
    o.max_lease_wait = absl::Milliseconds(50);
    auto core = Scheduler::Create(store_.get(), &clock_, o);
    ASSERT_TRUE(core.ok()) << core.status();
    core_ = std::move(*core);
    v1::SubmitSweepRequest submit;
    submit.set_spec_yaml(kSpec);
    submit.set_file_name("hostile.yaml");
    auto sweep = core_->SubmitSweep(submit);
    ASSERT_TRUE(sweep.ok()) << sweep.status();
    sweep_id_ = sweep->sweep_id();
    v1::RegisterRequest reg;
    reg.set_host("node1");
    worker_ = core_->Register(reg)->worker_id();
    v1::LeaseTrialRequest lease;
    lease.set_worker_id(worker_);
    auto leased = core_->LeaseTrial(lease);
    ASSERT_TRUE(leased.ok() && leased->has_trial()) << leased.status();
    trial_ = leased->trial();
  }

  // A one-point report under the test's lease.
  v1::ReportMetricsRequest Report(int64_t seq, const std::string& name, double value,
                                  int64_t step = 1, double time = 1.0) {
    return OnePointReport(worker_, trial_, seq, name, value, step, time);
  }

  int64_t StoredPoints() {
    return std::stoll(Db(dir_ / "sweeps.db").Value("SELECT COUNT(*) FROM metrics"));
  }

  // The core still works: a good report under the same lease is stored.
  void ExpectStillServing(int64_t seq) {
    const int64_t before = StoredPoints();
    auto ok = core_->ReportMetrics(Report(seq, "loss", 0.5, 1));
    ASSERT_TRUE(ok.ok()) << ok.status();
    EXPECT_FALSE(ok->duplicate());
    EXPECT_EQ(StoredPoints(), before + 1);
    v1::GetStatusRequest status;
    status.set_sweep_id(sweep_id_);
    EXPECT_TRUE(core_->GetStatus(status).ok());
  }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Scheduler> core_;
  std::string sweep_id_;
  std::string worker_;
  v1::TrialAssignment trial_;
};

TEST_F(HostileCoreTest, AReportUnderAWrongEpochWorkerOrTrialIsRefusedAsStale) {
  v1::ReportMetricsRequest wrong_epoch = Report(1, "loss", 0.5);
  wrong_epoch.set_epoch(trial_.epoch() + 1);
  v1::ReportMetricsRequest old_epoch = Report(1, "loss", 0.5);
  old_epoch.set_epoch(trial_.epoch() - 1);
  v1::ReportMetricsRequest other_worker = Report(1, "loss", 0.5);
  other_worker.set_worker_id("intruder/cpu0-ffff");
  v1::ReportMetricsRequest unknown_trial = Report(1, "loss", 0.5);
  unknown_trial.set_trial_id("no-such-trial");
  v1::ReportMetricsRequest empty;  // every field at its default
  for (const auto* req : {&wrong_epoch, &old_epoch, &other_worker, &unknown_trial, &empty}) {
    auto r = core_->ReportMetrics(*req);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  }
  EXPECT_EQ(StoredPoints(), 0);
  ExpectStillServing(1);
}

TEST_F(HostileCoreTest, AFinishUnderAWrongLeaseIsRefusedAndTheTrialKeepsRunning) {
  v1::FinishTrialRequest fin;
  fin.set_worker_id(worker_);
  fin.set_trial_id(trial_.trial_id());
  fin.set_epoch(trial_.epoch() + 7);
  fin.set_outcome(v1::TRIAL_OUTCOME_COMPLETED);
  EXPECT_EQ(core_->FinishTrial(fin).status().code(), absl::StatusCode::kFailedPrecondition);
  fin.set_epoch(trial_.epoch());
  fin.set_worker_id("intruder/cpu0-ffff");
  EXPECT_EQ(core_->FinishTrial(fin).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Db(dir_ / "sweeps.db")
                .Value(absl::StrCat("SELECT state FROM trials WHERE id='", trial_.trial_id(),
                                    "'")),
            "running");
  ExpectStillServing(1);
}

TEST_F(HostileCoreTest, AHeartbeatForLeasesItDoesNotHoldGetsThemStopped) {
  v1::HeartbeatRequest hb;
  hb.set_worker_id(worker_);
  v1::RunningTrial* stale = hb.add_running();
  stale->set_trial_id(trial_.trial_id());
  stale->set_epoch(trial_.epoch() + 1);
  v1::RunningTrial* made_up = hb.add_running();
  made_up->set_trial_id("made-up");
  made_up->set_epoch(-5);
  auto resp = core_->Heartbeat(hb);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->stop_size(), 2);
  EXPECT_FALSE(resp->reregister());

  v1::HeartbeatRequest unknown;
  unknown.set_worker_id("intruder/cpu0-ffff");
  *unknown.add_running() = *stale;
  resp = core_->Heartbeat(unknown);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_TRUE(resp->reregister());
  ExpectStillServing(1);
}

TEST_F(HostileCoreTest, AnUnknownWorkerAskingForWorkIsToldToRegisterAtOnce) {
  v1::LeaseTrialRequest req;
  req.set_worker_id("intruder/cpu0-ffff");
  req.set_wait_ms(std::numeric_limits<int64_t>::max());
  EXPECT_EQ(core_->LeaseTrial(req).status().code(), absl::StatusCode::kNotFound);
  // A known worker's absurd wait is capped by max_lease_wait (50 ms here): the calls
  // return at all (uncapped, the first would block for millions of years, which the
  // suite's per-test timeout reports).
  req.set_worker_id(worker_);
  auto other = core_->LeaseTrial(req);
  EXPECT_TRUE(other.ok()) << other.status();
  req.set_wait_ms(std::numeric_limits<int64_t>::min());
  EXPECT_TRUE(core_->LeaseTrial(req).ok());
}

TEST_F(HostileCoreTest, AnUnknownOutcomeEndsTheTrialAsFailed) {
  v1::FinishTrialRequest fin;
  fin.set_worker_id(worker_);
  fin.set_trial_id(trial_.trial_id());
  fin.set_epoch(trial_.epoch());
  fin.set_outcome(static_cast<v1::TrialOutcome>(12345));
  fin.set_exit_code(std::numeric_limits<int32_t>::min());
  fin.set_message(std::string(100000, 'x'));
  ASSERT_TRUE(core_->FinishTrial(fin).ok());
  EXPECT_EQ(Db(dir_ / "sweeps.db")
                .Value(absl::StrCat("SELECT state FROM trials WHERE id='", trial_.trial_id(),
                                    "'")),
            "failed");
}

// NaN cannot be stored (metrics.value is REAL NOT NULL, and SQLite binds NaN as
// NULL) and carries no comparable result; infinities would rank a trial best or
// worst forever. The trial contract drops them at the worker; a client that sends
// them anyway loses only those points: the report's other points are
// stored, the response counts what was left out, and the trial's events say so
// once per metric name.
TEST_F(HostileCoreTest, NanAndInfiniteValuesAreLeftOutAndTheOtherPointsStored) {
  v1::ReportMetricsRequest req = Report(1, "loss", 0.25, /*step=*/1);
  auto add = [&](const std::string& name, double value, int64_t step, double time) {
    v1::MetricPoint* p = req.add_points();
    p->set_name(name);
    p->set_step(step);
    p->set_value(value);
    p->set_time(time);
  };
  add("loss", kNaN, 2, 1.0);
  add("loss", kInf, 3, 1.0);
  add("acc", -kInf, 1, 1.0);
  add("loss", 0.5, 4, kNaN);
  add("loss", 0.5, 5, kInf);
  add("acc", 0.75, 1, 1.0);
  auto r = core_->ReportMetrics(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->duplicate());
  EXPECT_EQ(r->rejected_points(), 5);
  EXPECT_THAT(r->rejected(), HasSubstr("loss at step 2 has a value or time that is not finite"));
  Db db(dir_ / "sweeps.db");
  EXPECT_EQ(db.Query("SELECT name, step, value FROM metrics ORDER BY name"),
            (std::vector<std::vector<std::string>>{{"acc", "1", "0.75"}, {"loss", "1", "0.25"}}));
  const std::string trial = absl::StrCat("trial_id='", trial_.trial_id(), "'");
  EXPECT_EQ(db.Value("SELECT final_metric FROM trials WHERE id='" + trial_.trial_id() + "'"),
            "0.25");
  EXPECT_EQ(db.Value("SELECT last_seq FROM trials WHERE id='" + trial_.trial_id() + "'"), "1");
  EXPECT_EQ(db.Value("SELECT COUNT(*) FROM events WHERE kind='metric_rejected' AND " + trial),
            "2");  // loss and acc
  // More of the same: stored as before, and no new event.
  auto again = core_->ReportMetrics(Report(2, "loss", kNaN, 6));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->rejected_points(), 1);
  EXPECT_EQ(db.Value("SELECT COUNT(*) FROM events WHERE kind='metric_rejected' AND " + trial),
            "2");
  EXPECT_EQ(StoredPoints(), 2);
  ExpectStillServing(3);
}

// Proto3 string fields are UTF-8 on the wire (the gRPC server refuses anything
// else, see below); the core must not rely on its caller for that, nor store a
// point without a name. Such a point is left out; a good one beside it is stored.
TEST_F(HostileCoreTest, PointsWithNamesThatAreEmptyOrNotUtf8AreLeftOut) {
  int64_t seq = 0;
  for (const std::string& name : {std::string(""), std::string("lo\xffss"),
                                  std::string("\xed\xb2\x80"), std::string("a\0b", 3)}) {
    v1::ReportMetricsRequest req = Report(++seq, name, 0.5);
    v1::MetricPoint* good = req.add_points();
    good->set_name("loss");
    good->set_step(seq);
    good->set_value(0.5);
    auto r = core_->ReportMetrics(req);
    ASSERT_TRUE(r.ok()) << r.status() << " for a name of " << name.size() << " bytes";
    EXPECT_EQ(r->rejected_points(), 1);
    EXPECT_THAT(r->rejected(), HasSubstr("has an empty name or one that is not UTF-8"));
  }
  EXPECT_EQ(StoredPoints(), 4);
  EXPECT_EQ(Db(dir_ / "sweeps.db").Value("SELECT COUNT(*) FROM metrics WHERE name<>'loss'"), "0");
  ExpectStillServing(seq + 1);
}

TEST_F(HostileCoreTest, AReportSeqOfInt64MaxIsRefusedAndLaterReportsAreStored) {
  auto r = core_->ReportMetrics(Report(std::numeric_limits<int64_t>::max(), "loss", 0.5));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("the next one is 1"));
  EXPECT_EQ(StoredPoints(), 0);
  for (int64_t seq = 1; seq <= 3; ++seq) ExpectStillServing(seq);
}

// A worker cuts the tails it sends at 8 KiB; the scheduler keeps no more whoever
// sends them: the last 8 KiB, from a character boundary, as UTF-8.
TEST_F(HostileCoreTest, LogTailsAndMessagesOfAFinishedTrialAreCutToTheirLimits) {
  std::string tail(15 << 20, 'x');
  const std::string end = "the end: \xc3\xa9t\xc3\xa9 \xe4\xb8\xad\n";  // été 中
  tail.replace(tail.size() - end.size(), end.size(), end);
  // A 3-byte character across the cut: 8192 bytes before the end starts inside it.
  tail.replace(tail.size() - kMaxLogTailBytes - 1, 3, "\xe4\xb8\xad");
  v1::FinishTrialRequest fin;
  fin.set_worker_id(worker_);
  fin.set_trial_id(trial_.trial_id());
  fin.set_epoch(trial_.epoch());
  fin.set_outcome(v1::TRIAL_OUTCOME_FAILED);
  fin.set_stdout_tail(tail);
  fin.set_stderr_tail("short\n");
  fin.set_message(std::string(1 << 20, 'm'));
  fin.set_trial_dir(std::string(1 << 20, 'd'));
  ASSERT_TRUE(core_->FinishTrial(fin).ok());
  Db db(dir_ / "sweeps.db");
  const std::string where = absl::StrCat(" FROM trials WHERE id='", trial_.trial_id(), "'");
  const std::string stored = db.Value("SELECT stdout_tail" + where);
  EXPECT_EQ(stored.size(), kMaxLogTailBytes - 2);  // the cut character's last 2 bytes dropped
  EXPECT_EQ(stored, tail.substr(tail.size() - stored.size()));
  EXPECT_EQ(db.Value("SELECT stderr_tail" + where), "short\n");
  EXPECT_EQ(db.Value("SELECT length(message)" + where), absl::StrCat(kMaxMessageBytes));
  EXPECT_EQ(db.Value("SELECT trial_dir" + where), "");
  EXPECT_EQ(db.Value("SELECT state" + where), "failed");
}

TEST_F(HostileCoreTest, ASpecBeyondTheSizeLimitIsRefusedBeforeItIsParsed) {
  v1::SubmitSweepRequest submit;
  // Not even YAML: a parse would say so; the size check comes first.
  submit.set_spec_yaml(std::string(SchedulerOptions::kDefaultMaxSpecBytes + 1, '['));
  submit.set_file_name("big.yaml");
  auto r = core_->SubmitSweep(submit);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_EQ(r.status().message(),
            "big.yaml: the spec is 1048577 bytes, more than the 1048576 this scheduler "
            "takes (sweep scheduler --max-spec-bytes); the sweep was not submitted");
  submit.set_spec_yaml(kSpec);
  submit.set_file_name(std::string(5000, 'f'));
  EXPECT_EQ(core_->SubmitSweep(submit).status().code(), absl::StatusCode::kInvalidArgument);
  submit.set_file_name("ok.yaml");
  submit.set_working_dir(std::string(5000, 'w'));
  EXPECT_EQ(core_->SubmitSweep(submit).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Db(dir_ / "sweeps.db").Value("SELECT COUNT(*) FROM sweeps"), "1");  // SetUp's
}

TEST_F(HostileCoreTest, ExtremeStepsAreStoredWithoutHarm) {
  v1::ReportMetricsRequest req = Report(1, "loss", 0.5, std::numeric_limits<int64_t>::max());
  v1::MetricPoint* low = req.add_points();
  low->set_name("loss");
  low->set_step(std::numeric_limits<int64_t>::min());
  low->set_value(0.25);
  v1::MetricPoint* huge = req.add_points();
  huge->set_name("loss");
  huge->set_step(0);
  huge->set_value(std::numeric_limits<double>::max());
  auto r = core_->ReportMetrics(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(StoredPoints(), 3);
  ExpectStillServing(2);
}

TEST_F(HostileCoreTest, AHugeBatchIsStoredWholeAndOnce) {
  constexpr int kPoints = 100000;
  v1::ReportMetricsRequest req;
  req.set_worker_id(worker_);
  req.set_trial_id(trial_.trial_id());
  req.set_epoch(trial_.epoch());
  req.set_seq(1);
  for (int i = 0; i < kPoints; ++i) {
    v1::MetricPoint* p = req.add_points();
    p->set_step(i);
    p->set_name(i % 2 ? "loss" : "acc");
    p->set_value(1.0 / (i + 1));
    p->set_time(1.0);
  }
  auto r = core_->ReportMetrics(req);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(StoredPoints(), kPoints);
  auto again = core_->ReportMetrics(req);  // a retry of the same seq
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->duplicate());
  EXPECT_EQ(StoredPoints(), kPoints);
  ExpectStillServing(2);
}

TEST_F(HostileCoreTest, ASpecWhoseEscapesAreNotUtf8IsRefusedWithItsPosition) {
  for (const std::string& value : {std::string(R"("\udc80")"), std::string(R"("a\0b")")}) {
    v1::SubmitSweepRequest submit;
    submit.set_spec_yaml(absl::StrCat("method: grid\nprogram: p\nparameters:\n  a: {values: [",
                                      value, "]}\n"));
    submit.set_file_name("evil.yaml");
    auto r = core_->SubmitSweep(submit);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
    EXPECT_THAT(std::string(r.status().message()), MatchesRegex("evil\\.yaml:4:[0-9]+: .*"));
  }
}

// ---------------------------------------------------------------- argv, no shell

// Values that a shell would act on.
const std::vector<std::string>& EvilValues() {
  static const auto* values = new std::vector<std::string>{
      "; touch PWNED #", "$(touch PWNED)", "`touch PWNED`", "a b  c", "--extra=1 --more",
      "'\"\\", "line1\nline2", "|| touch PWNED", "> PWNED", "*", "${args}", "\t", "",
      "-", "--", "é中😀"};
  return *values;
}

std::string EvilSpec(const std::string& command) {
  nlohmann::json values = EvilValues();
  return absl::StrCat("method: grid\nprogram: p\ncommand: ", command,
                      "\nparameters:\n  evil:\n    values: ", values.dump(), "\n");
}

TEST(HostileArgvTest, EveryParameterValueIsExactlyOneArgument) {
  absl::StatusOr<spec::SweepSpec> s =
      spec::ParseSpec(EvilSpec(R"(["/bin/echo", "${args}", "${args_no_hyphens}", "--json=${args_json}"])"),
                      "evil.yaml");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(spec::GridSize(*s).value(), static_cast<int64_t>(EvilValues().size()));
  for (size_t i = 0; i < EvilValues().size(); ++i) {
    const nlohmann::json params = spec::GridPoint(*s, static_cast<int64_t>(i));
    auto argv = spec::BuildCommand(*s, params);
    ASSERT_TRUE(argv.ok()) << argv.status();
    const std::string& v = EvilValues()[i];
    EXPECT_EQ(*argv, (std::vector<std::string>{"/bin/echo", "--evil=" + v, "evil=" + v,
                                                "--json=" + params.dump()}));
  }
}

// The trial really gets those arguments, one each, and no shell runs them.
TEST(HostileArgvTest, ATrialProcessReceivesTheValuesVerbatimAndNothingRuns) {
  TempDir dir;
  const std::string out = dir / "args.bin";
  // A shell prints its positional parameters NUL-separated; the values arrive as
  // "$@", which a shell never re-parses.
  absl::StatusOr<spec::SweepSpec> s = spec::ParseSpec(
      EvilSpec(R"(["/bin/sh", "-c", 'for a in "$@"; do printf "%s\0" "$a"; done', "sh", "${args}"])"),
      "evil.yaml");
  ASSERT_TRUE(s.ok()) << s.status();
  for (size_t i = 0; i < EvilValues().size(); ++i) {
    auto argv = spec::BuildCommand(*s, spec::GridPoint(*s, static_cast<int64_t>(i)));
    ASSERT_TRUE(argv.ok()) << argv.status();
    unlink(out.c_str());
    SpawnOptions so;
    so.argv = *argv;
    so.cwd = dir.path().string();
    so.stdout_path = out;
    auto child = ChildProcess::Spawn(so);
    ASSERT_TRUE(child.ok()) << child.status();
    auto exit = child->Wait(absl::Seconds(10));
    ASSERT_TRUE(exit && exit->ok());
    EXPECT_EQ(sweep::testing::ReadFile(out), "--evil=" + EvilValues()[i] + std::string(1, '\0'));
  }
  struct stat st;
  EXPECT_NE(stat((dir / "PWNED").c_str(), &st), 0) << "a value ran as a shell command";
}

// ---------------------------------------------------------------- metrics files

void AppendTo(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::app | std::ios::binary) << bytes;
}

TEST(HostileMetricsFileTest, BinaryGarbageWithoutNewlinesIsHeldOnlyUpToTheLineLimit) {
  TempDir dir;
  const std::string path = dir / "metrics.jsonl";
  MetricsReader reader(path);
  std::string garbage(256 << 10, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>((i * 131 + 7) % 255 + 1);
  std::replace(garbage.begin(), garbage.end(), '\n', 'x');
  for (int i = 0; i < 16; ++i) {  // 4 MiB, no newline
    AppendTo(path, garbage);
    EXPECT_TRUE(reader.ReadNew(1.0).empty());
  }
  EXPECT_EQ(reader.lines_read(), 0);
  // The line ends: it is one bad line, and reading goes on after it.
  AppendTo(path, "\n{\"step\": 2, \"loss\": 0.5}\n");
  std::vector<MetricPointData> points = reader.ReadNew(1.0);
  ASSERT_EQ(points.size(), 1u);
  EXPECT_EQ(points[0].name, "loss");
  EXPECT_EQ(points[0].step, 2);
  EXPECT_EQ(reader.lines_read(), 2);
  EXPECT_EQ(reader.bad_lines(), 1);
  EXPECT_THAT(reader.last_error(), HasSubstr("longer than"));
}

TEST(HostileMetricsFileTest, StepsThatAreNoInt64MakeTheLineBadNotAWrongStep) {
  for (const char* step : {"1e300", "-1e300", "3.5", "18446744073709551615", "9.3e18"}) {
    std::vector<MetricPointData> out;
    std::string error;
    EXPECT_FALSE(MetricsReader::ParseLine(absl::StrCat(R"({"step": )", step, R"(, "loss": 1})"),
                                          0, 1.0, &out, &error))
        << step;
    EXPECT_TRUE(out.empty());
    EXPECT_THAT(error, HasSubstr("step"));
  }
  std::vector<MetricPointData> out;
  ASSERT_TRUE(MetricsReader::ParseLine(R"({"step": 4.0, "loss": 1, "time": "soon"})", 0, 7.0,
                                       &out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].step, 4);
  EXPECT_EQ(out[0].time, 7.0);
  // Beyond a double: that value is dropped and said, the line is kept.
  out.clear();
  std::string error, dropped;
  EXPECT_TRUE(MetricsReader::ParseLine(R"({"step": 1, "loss": 1e999, "acc": 0.5})", 0, 1.0,
                                       &out, &error, &dropped));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].name, "acc");
  EXPECT_THAT(dropped, HasSubstr("1e999"));
}

TEST(HostileMetricsFileTest, PythonNanIsDroppedWithoutRenamingKeysThatSpellIt) {
  std::vector<MetricPointData> out;
  ASSERT_TRUE(MetricsReader::ParseLine(
      R"({"NaN_count": 2, "Infinity": 3, "note": "NaN", "loss": NaN, "g": -Infinity})", 0, 1.0,
      &out));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].name, "Infinity");
  EXPECT_EQ(out[1].name, "NaN_count");
}

TEST(HostileMetricsFileTest, NamesThatAreNotUtf8NeverBecomePoints) {
  std::vector<MetricPointData> out;
  EXPECT_FALSE(MetricsReader::ParseLine("{\"lo\xffss\": 1}", 0, 1.0, &out));
  EXPECT_FALSE(MetricsReader::ParseLine(R"({"\udc80": 1})", 0, 1.0, &out));
  EXPECT_TRUE(out.empty());
}

// ---------------------------------------------------------------- the real server

class HostileWireTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.db_path = dir_ / "sweeps.db";
    o.http = "off";
    auto server = SchedulerServer::Start(o);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    grpc::ChannelArguments args;
    args.SetMaxSendMessageSize(64 << 20);
    channel_ = grpc::CreateCustomChannel(server_->address(), grpc::InsecureChannelCredentials(),
                                         args);
    stub_ = std::make_unique<grpc::GenericStub>(channel_);
    workers_ = v1::WorkerService::NewStub(channel_);
    sweeps_ = v1::SweepService::NewStub(channel_);
  }

  // Sends `bytes` as the request of `method` ("/sweep.v1.WorkerService/...").
  grpc::Status Raw(const std::string& method, const std::string& bytes) {
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    std::promise<grpc::Status> done;
    stub_->UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response,
                     [&](grpc::Status s) { done.set_value(std::move(s)); });
    return done.get_future().get();
  }

  // Submits kSpec, registers a worker and leases a trial, all over gRPC.
  void LeaseOne() {
    grpc::ClientContext c1;
    v1::SubmitSweepRequest submit;
    submit.set_spec_yaml(kSpec);
    v1::SubmitSweepResponse submitted;
    ASSERT_TRUE(sweeps_->SubmitSweep(&c1, submit, &submitted).ok());
    RegisterAndLease(*workers_, &worker_, &trial_);
  }

  v1::ReportMetricsRequest Report(int64_t seq, const std::string& name, double value) {
    return OnePointReport(worker_, trial_, seq, name, value);
  }

  // The server still answers, and a good report under the lease is stored.
  void ExpectAlive(int64_t seq) {
    grpc::ClientContext ctx;
    v1::ReportMetricsResponse resp;
    grpc::Status st = workers_->ReportMetrics(&ctx, Report(seq, "loss", 0.5), &resp);
    EXPECT_TRUE(st.ok()) << st.error_code() << " " << st.error_message();
    grpc::ClientContext ctx2;
    v1::GetStatusResponse status;
    EXPECT_TRUE(sweeps_->GetStatus(&ctx2, v1::GetStatusRequest(), &status).ok());
  }

  int64_t StoredPoints() {
    return std::stoll(Db(dir_ / "sweeps.db").Value("SELECT COUNT(*) FROM metrics"));
  }

  static constexpr char kReport[] = "/sweep.v1.WorkerService/ReportMetrics";

  TempDir dir_;
  std::unique_ptr<SchedulerServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::GenericStub> stub_;
  std::unique_ptr<v1::WorkerService::Stub> workers_;
  std::unique_ptr<v1::SweepService::Stub> sweeps_;
  std::string worker_;
  v1::TrialAssignment trial_;
};

// protobuf refuses to parse a proto3 string field that is not UTF-8, so such a
// name never reaches the core: the call fails (INTERNAL, from the gRPC library)
// and nothing is stored.
TEST_F(HostileWireTest, AMetricNameThatIsNotUtf8IsRefusedBeforeTheCore) {
  LeaseOne();
  std::string bytes;
  ASSERT_TRUE(Report(1, "lo\xffss", 0.5).SerializeToString(&bytes));
  grpc::Status st = Raw(kReport, bytes);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INTERNAL) << st.error_message();
  EXPECT_EQ(StoredPoints(), 0);
  ExpectAlive(1);
}

TEST_F(HostileWireTest, BytesThatAreNoProtobufAreRefused) {
  LeaseOne();
  for (const std::string& garbage :
       {std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11),
        std::string("\x0a\xff\xff\xff\xff\x0f", 6),  // a length beyond the message
        std::string(4096, '\x80')}) {
    grpc::Status st = Raw(kReport, garbage);
    EXPECT_FALSE(st.ok());
  }
  EXPECT_EQ(Raw("/sweep.v1.WorkerService/NoSuchMethod", "").error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(StoredPoints(), 0);
  ExpectAlive(1);
}

TEST_F(HostileWireTest, AMessageBeyondTheSizeLimitIsRefusedAsResourceExhausted) {
  LeaseOne();
  v1::ReportMetricsRequest big = Report(1, "loss", 0.5);
  big.mutable_points(0)->set_name(std::string(17 << 20, 'x'));  // 17 MiB > 16 MiB
  std::string bytes;
  ASSERT_TRUE(big.SerializeToString(&bytes));
  grpc::Status st = Raw(kReport, bytes);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_EQ(StoredPoints(), 0);
  ExpectAlive(1);
}

// Each RPC has a limit of its own (scheduler/service.h), far below the transport's
// 16 MiB for those that need little.
TEST_F(HostileWireTest, RequestsBeyondTheirRpcsLimitAreRefusedBeforeTheCore) {
  LeaseOne();
  grpc::ClientContext c1;
  v1::RegisterRequest reg;
  reg.set_host(std::string(100 << 10, 'h'));
  v1::RegisterResponse registered;
  grpc::Status st = workers_->Register(&c1, reg, &registered);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("a Register request of 102404 bytes is more than "
                                            "the 65536 this scheduler takes"));
  grpc::ClientContext c2;
  v1::LeaseTrialRequest lease;
  lease.set_worker_id(std::string(1 << 20, 'w'));
  v1::LeaseTrialResponse leased;
  EXPECT_EQ(workers_->LeaseTrial(&c2, lease, &leased).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  grpc::ClientContext c3;
  v1::HeartbeatRequest hb;
  hb.set_worker_id(worker_);
  hb.set_message(std::string(2 << 20, 'm'));
  v1::HeartbeatResponse beat;
  EXPECT_EQ(workers_->Heartbeat(&c3, hb, &beat).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  grpc::ClientContext c4;
  v1::GetStatusRequest status;
  status.set_sweep_id(std::string(1 << 20, 's'));
  v1::GetStatusResponse got;
  EXPECT_EQ(sweeps_->GetStatus(&c4, status, &got).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(Db(dir_ / "sweeps.db").Value("SELECT COUNT(*) FROM workers"), "1");
  ExpectAlive(1);
}

TEST_F(HostileWireTest, NanOverTheWireIsLeftOutAndTheServerStaysUp) {
  LeaseOne();
  grpc::ClientContext ctx;
  v1::ReportMetricsResponse resp;
  grpc::Status st = workers_->ReportMetrics(&ctx, Report(1, "loss", kNaN), &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.rejected_points(), 1);
  EXPECT_EQ(StoredPoints(), 0);
  ExpectAlive(2);
}

TEST_F(HostileWireTest, ManyStaleReportsInParallelAreAllRefusedAndHarmless) {
  LeaseOne();
  std::vector<std::thread> threads;
  std::atomic<int> refused = 0;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        v1::ReportMetricsRequest req = Report(1, "loss", 0.5);
        req.set_epoch(trial_.epoch() + 1 + t);
        grpc::ClientContext ctx;
        v1::ReportMetricsResponse resp;
        if (workers_->ReportMetrics(&ctx, req, &resp).error_code() ==
            grpc::StatusCode::FAILED_PRECONDITION) {
          ++refused;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(refused.load(), 8 * 25);
  EXPECT_EQ(StoredPoints(), 0);
  ExpectAlive(1);
}


// ---------------------------------------------------------------- a real scheduler

// Bounds on requests against a real `sweep scheduler` process over gRPC, as a client that
// does not go through the CLI (or a worker that does not cut what it sends) would.
class HostileProcessTest : public ::testing::Test {
 protected:
  void Start(const std::vector<std::string>& args = {}) {
    ASSERT_NO_FATAL_FAILURE(
        c_.StartScheduler(/*lease_timeout=*/30, /*heartbeat=*/2, "127.0.0.1:0", args));
    channel_ = grpc::CreateChannel(c_.address(), grpc::InsecureChannelCredentials());
    workers_ = v1::WorkerService::NewStub(channel_);
    sweeps_ = v1::SweepService::NewStub(channel_);
  }

  // The scheduler's peak resident memory (VmHWM), in MiB.
  int64_t PeakMib() {
    const std::string status = ReadFile(absl::StrCat("/proc/", c_.scheduler_pid(), "/status"));
    const size_t at = status.find("VmHWM:");
    if (at == std::string::npos) return -1;
    return std::stoll(status.substr(at + 6)) / 1024;
  }

  grpc::Status Submit(const std::string& yaml, v1::SubmitSweepResponse* resp = nullptr) {
    v1::SubmitSweepRequest req;
    req.set_spec_yaml(yaml);
    req.set_file_name("big.yaml");
    v1::SubmitSweepResponse ignored;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    return sweeps_->SubmitSweep(&ctx, req, resp ? resp : &ignored);
  }

  // Sends every spec of `specs` at once; returns the statuses, in order.
  std::vector<grpc::Status> SubmitAtOnce(const std::vector<std::string>& specs) {
    std::vector<grpc::Status> out(specs.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < specs.size(); ++i) {
      threads.emplace_back([&, i] { out[i] = Submit(specs[i]); });
    }
    for (std::thread& t : threads) t.join();
    return out;
  }

  // Submits kSpec, registers a worker on `host` and leases a trial.
  void LeaseOne() {
    ASSERT_TRUE(Submit(kSpec).ok());
    RegisterAndLease(*workers_, &worker_, &trial_);
  }

  grpc::Status Report(int64_t seq, v1::ReportMetricsResponse* resp) {
    v1::ReportMetricsRequest req =
        OnePointReport(worker_, trial_, seq, "loss", 1.0 / (seq + 1), /*step=*/seq);
    grpc::ClientContext ctx;
    return workers_->ReportMetrics(&ctx, req, resp);
  }

  sweep::testing::Cluster c_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WorkerService::Stub> workers_;
  std::unique_ptr<v1::SweepService::Stub> sweeps_;
  std::string worker_;
  v1::TrialAssignment trial_;
};

// A spec of `bytes` bytes whose one parameter has a list of zeros, in `style`:
// "flow" ([0, 0, ...] on one line), "nested" ([[0, 0, ...]]) or "block".
std::string BigSpec(size_t bytes, const std::string& style) {
  std::string out = "method: grid\nprogram: p\nparameters:\n  p:\n    values:";
  const std::string item = style == "block" ? "\n    - 0" : " 0,";
  out += style == "flow" ? " [" : style == "nested" ? " [[" : "";
  while (out.size() + item.size() + 4 < bytes) out += item;
  out += style == "flow" ? "]\n" : style == "nested" ? "]]\n" : "\n";
  return out;
}

TEST_F(HostileProcessTest, FourFifteenMegabyteSpecsAtOnceAreRefusedQuicklyInLittleMemory) {
  Start();
  const int64_t before = PeakMib();
  std::vector<std::string> specs;
  for (const char* style : {"flow", "nested", "block", "flow"}) {
    specs.push_back(BigSpec(15 << 20, style));
  }
  const absl::Time start = absl::Now();
  std::vector<grpc::Status> refused = SubmitAtOnce(specs);
  const absl::Duration took = absl::Now() - start;
  for (const grpc::Status& st : refused) {
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    EXPECT_THAT(st.error_message(),
                HasSubstr("more than the 1048576 this scheduler takes (sweep scheduler "
                          "--max-spec-bytes)"));
  }
  const int64_t after_big = PeakMib();
  // Just under the size limit, each shape past the parser's limits: refused while
  // parsing, at the node limit or when yaml-cpp would read too far ahead.
  specs.clear();
  for (const char* style : {"flow", "nested", "block", "nested"}) {
    specs.push_back(BigSpec(1000000, style));
  }
  const absl::Time start_parse = absl::Now();
  refused = SubmitAtOnce(specs);
  const absl::Duration took_parse = absl::Now() - start_parse;
  for (const grpc::Status& st : refused) {
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    EXPECT_THAT(st.error_message(), ::testing::AnyOf(HasSubstr("more than 100000 YAML nodes"),
                                                     HasSubstr("write long lists in block")));
  }
  const int64_t peak = PeakMib();
  std::cout << "scheduler peak RSS: " << before << " MiB at start, " << after_big
            << " MiB after four 15 MB specs (refused in " << took << "), " << peak
            << " MiB after four 1 MB specs past the node limits (refused in " << took_parse
            << ")\n";
  RecordProperty("peak_rss_mib", static_cast<int>(peak));
  EXPECT_LT(peak, 512);
  // It still takes a sweep.
  v1::SubmitSweepResponse ok;
  grpc::Status st = Submit(kSpec, &ok);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_FALSE(ok.sweep_id().empty());
}

TEST_F(HostileProcessTest, ASpecLimitRaisedByFlagTakesALargerSpec) {
  Start({"--max-spec-bytes", "4194304"});
  // 2 MiB, most of it a comment.
  const std::string spec = absl::StrCat(kSpec, "# ", std::string(2 << 20, 'c'), "\n");
  grpc::Status st = Submit(spec);
  EXPECT_TRUE(st.ok()) << st.error_message();
  st = Submit(BigSpec(5 << 20, "block"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("more than the 4194304 this scheduler takes"));
}

TEST_F(HostileProcessTest, ThreeThousandRegistrationsFromOneHostOverwriteNoRow) {
  // A bound below 3,000: the excess is refused with a clear error, the rest get
  // rows of their own.
  Start({"--max-workers-per-host", "2500"});
  constexpr int kCalls = 3000, kThreads = 6;
  std::vector<std::string> ids(kCalls);
  std::vector<grpc::Status> statuses(kCalls);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kCalls; i += kThreads) {
        v1::RegisterRequest req;
        req.set_host("node1");
        req.set_pid(i + 1);
        v1::RegisterResponse resp;
        grpc::ClientContext ctx;
        statuses[i] = workers_->Register(&ctx, req, &resp);
        ids[i] = resp.worker_id();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::set<std::string> distinct;
  int registered = 0, refused = 0;
  Db db(c_.db());
  for (int i = 0; i < kCalls; ++i) {
    if (statuses[i].ok()) {
      ++registered;
      distinct.insert(ids[i]);
      EXPECT_EQ(db.Value("SELECT pid FROM workers WHERE id='" + ids[i] + "'"),
                absl::StrCat(i + 1));
    } else {
      ++refused;
      EXPECT_EQ(statuses[i].error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
      EXPECT_THAT(statuses[i].error_message(),
                  HasSubstr("host node1 already has 2500 worker slots registered"));
    }
  }
  EXPECT_EQ(registered, 2500);
  EXPECT_EQ(refused, 500);
  EXPECT_EQ(distinct.size(), 2500u);
  EXPECT_EQ(db.Value("SELECT COUNT(*) FROM workers"), "2500");
  EXPECT_EQ(db.Value("SELECT COUNT(DISTINCT pid) FROM workers"), "2500");
}

TEST_F(HostileProcessTest, AFifteenMegabyteLogTailIsStoredAsItsLastEightKib) {
  Start();
  ASSERT_NO_FATAL_FAILURE(LeaseOne());
  std::string tail(15 << 20, 'x');
  for (size_t i = 0; i < tail.size(); i += 100) tail[i] = '\n';
  tail += "the last line\n";
  v1::FinishTrialRequest fin;
  fin.set_worker_id(worker_);
  fin.set_trial_id(trial_.trial_id());
  fin.set_epoch(trial_.epoch());
  fin.set_outcome(v1::TRIAL_OUTCOME_COMPLETED);
  fin.set_stdout_tail(tail.substr(tail.size() - (64 << 10)));
  fin.set_stderr_tail(tail);
  v1::FinishTrialResponse resp;
  grpc::ClientContext ctx;
  grpc::Status st = workers_->FinishTrial(&ctx, fin, &resp);
  ASSERT_TRUE(st.ok()) << st.error_code() << " " << st.error_message();
  Db db(c_.db());
  const std::string where = " FROM trials WHERE id='" + trial_.trial_id() + "'";
  EXPECT_EQ(db.Value("SELECT state" + where), "completed");
  for (const char* column : {"stdout_tail", "stderr_tail"}) {
    EXPECT_EQ(db.Value(absl::StrCat("SELECT ", column, where)),
              tail.substr(tail.size() - kMaxLogTailBytes));
  }
}

TEST_F(HostileProcessTest, AReportSeqOfInt64MaxIsRefusedAndLaterReportsAreStored) {
  Start();
  ASSERT_NO_FATAL_FAILURE(LeaseOne());
  v1::ReportMetricsResponse resp;
  grpc::Status st = Report(std::numeric_limits<int64_t>::max(), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("the next one is 1"));
  for (int64_t seq = 1; seq <= 3; ++seq) {
    st = Report(seq, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_FALSE(resp.duplicate()) << seq;
  }
  Db db(c_.db());
  EXPECT_EQ(db.Value("SELECT COUNT(*) FROM metrics"), "3");
  EXPECT_EQ(db.Value("SELECT last_seq FROM trials WHERE id='" + trial_.trial_id() + "'"), "3");
  EXPECT_THAT(ReadFile(c_.dir() / "scheduler.log"),
              HasSubstr("refused a report with seq 9223372036854775807"));
}

}  // namespace
}  // namespace sweep
