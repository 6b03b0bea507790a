// The dashboard's HTTP server and JSON API, against a real SQLite file written by
// the scheduler's Store and the real server on a free loopback port.
#include <filesystem>

#include "dashboard/dashboard.h"
#include "dashboard/internal/reader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "scheduler/store.h"
#include "tests/testing.h"

namespace sweep {
namespace {

using ::nlohmann::json;
using ::sweep::testing::TempDir;
using ::testing::HasSubstr;

constexpr double kNow = 1'700'000'000;

constexpr char kSpec[] = R"(name: lr-search
program: train.py
method: random
run_cap: 4
metric: {name: val_loss, goal: minimize}
parameters:
  lr: {distribution: log_uniform_values, min: 0.0001, max: 0.1}
  optimizer: {values: [adam, sgd]}
  epochs: {value: 3}
)";

SweepRow ASweep() {
  SweepRow s;
  s.id = "5eed0001";
  s.name = "lr-search";
  s.spec_yaml = kSpec;
  s.file_name = "lr.yaml";
  s.working_dir = "/tmp";
  s.method = "random";
  s.metric_name = "val_loss";
  s.metric_goal = "minimize";
  s.seed = 7;
  s.budget = 4;
  s.next_index = 3;
  s.created_at = kNow - 100;
  return s;
}

TrialRow ATrial(int index, const std::string& state, double lr, const std::string& opt) {
  TrialRow t;
  t.id = absl::StrCat("5eed0001-000", index);
  t.sweep_id = "5eed0001";
  t.index = index;
  t.state = state;
  t.params_json = json{{"lr", lr}, {"optimizer", opt}, {"epochs", 3}}.dump();
  t.argv_json = R"(["python3","train.py"])";
  t.worker_id = absl::StrCat("node1/gpu", index, "-aaaa");
  t.host = "node1";
  t.gpu = index;
  t.attempt = 1;
  t.epoch = 1;
  t.created_at = kNow - 90;
  t.started_at = kNow - 90 + index;
  return t;
}

// A database as a scheduler leaves it: trial 0 completed (the best), trial 1
// running, trial 2 failed; one worker busy with trial 1, one lost.
class DashboardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = Store::Open(db_path());
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = std::move(*opened);
    ASSERT_TRUE(store_->InsertSweep(ASweep()).ok());

    TrialRow t0 = ATrial(0, "running", 0.001, "adam");
    ASSERT_TRUE(store_->UpsertTrial(t0).ok());
    t0.last_seq = 1;
    t0.final_metric = 0.30;
    t0.best_metric = 0.30;
    ASSERT_TRUE(store_
                    ->AppendMetrics(t0, {{1, 1, "val_loss", 0.50, kNow - 80},
                                         {1, 2, "val_loss", 0.35, kNow - 70},
                                         {1, 3, "val_loss", 0.30, kNow - 60},
                                         {1, 1, "val_acc", 0.80, kNow - 80},
                                         {1, 3, "val_acc", 0.90, kNow - 60}})
                    .ok());
    t0.state = "completed";
    t0.exit_code = 0;
    t0.ended_at = kNow - 50;
    t0.message = "exited with status 0";
    t0.stdout_tail = "epoch 3 val_loss=0.30\n";
    t0.stderr_tail = "warning: something\n";
    ASSERT_TRUE(store_->UpsertTrial(t0).ok());

    TrialRow t1 = ATrial(1, "running", 0.05, "sgd");
    t1.attempt = 2;
    ASSERT_TRUE(store_->UpsertTrial(t1).ok());
    // Attempt 1 reported steps 1 and 2; attempt 2 reported step 2 again.
    t1.last_seq = 1;
    t1.final_metric = 0.7;
    t1.best_metric = 0.7;
    ASSERT_TRUE(store_
                    ->AppendMetrics(t1, {{1, 1, "val_loss", 0.9, kNow - 80},
                                         {1, 2, "val_loss", 0.8, kNow - 70},
                                         {2, 2, "val_loss", 0.7, kNow - 20}})
                    .ok());

    TrialRow t2 = ATrial(2, "failed", 0.09, "adam");
    t2.exit_code = 3;
    t2.ended_at = kNow - 40;
    t2.message = "exited with status 3";
    t2.stderr_tail = "Traceback: out of memory\n";
    ASSERT_TRUE(store_->UpsertTrial(t2).ok());
    ASSERT_TRUE(store_->AddEvent(kNow - 45, "trial_notice", t2.sweep_id, t2.id, "w",
                                 "stderr.log passed 64 MiB: its middle is cut")
                    .ok());

    WorkerRow busy;
    busy.id = "node1/gpu1-aaaa";
    busy.host = "node1";
    busy.pid = 4242;
    busy.slot = 1;
    busy.has_gpu = true;
    busy.gpu_index = 1;
    busy.gpu_uuid = "GPU-1234";
    busy.gpu_name = "NVIDIA H100";
    busy.gpu_memory_mib = 81559;
    busy.state = "busy";
    busy.registered_at = kNow - 95;
    busy.last_heartbeat = kNow - 1.5;
    busy.trial_id = "5eed0001-0001";
    ASSERT_TRUE(store_->UpsertWorker(busy).ok());
    WorkerRow lost;
    lost.id = "node2/cpu0-bbbb";
    lost.host = "node2";
    lost.pid = 99;
    lost.state = "lost";
    lost.registered_at = kNow - 95;
    lost.last_heartbeat = kNow - 60;
    ASSERT_TRUE(store_->UpsertWorker(lost).ok());

    DashboardOptions o;
    o.address = "127.0.0.1:0";
    o.db_path = db_path();
    o.clock = &clock_;
    auto started = Dashboard::Start(o);
    ASSERT_TRUE(started.ok()) << started.status();
    dashboard_ = std::move(*started);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", dashboard_->port());
  }

  std::string db_path() const { return dir_ / "sweeps.db"; }

  // GETs `path` and parses the JSON body; `status` receives the HTTP status.
  json Get(const std::string& path, int* status = nullptr) {
    httplib::Result r = client_->Get(path.c_str());
    EXPECT_TRUE(r) << path << ": " << httplib::to_string(r.error());
    if (!r) return json();
    if (status) *status = r->status;
    EXPECT_THAT(r->get_header_value("Content-Type"), HasSubstr("application/json")) << path;
    return json::parse(r->body, nullptr, false);
  }

  TempDir dir_;
  FakeClock clock_{absl::FromUnixSeconds(static_cast<int64_t>(kNow))};
  std::unique_ptr<Store> store_;
  std::unique_ptr<Dashboard> dashboard_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(DashboardTest, SweepsListShowsProgressBestElapsedAndEta) {
  int status = 0;
  json j = Get("/api/sweeps", &status);
  EXPECT_EQ(status, 200);
  ASSERT_EQ(j["sweeps"].size(), 1u);
  json s = j["sweeps"][0];
  EXPECT_EQ(s["id"], "5eed0001");
  EXPECT_EQ(s["name"], "lr-search");
  EXPECT_EQ(s["state"], "running");
  EXPECT_EQ(s["budget"], 4);
  EXPECT_EQ(s["done"], 2);
  EXPECT_EQ(s["counts"]["completed"], 1);
  EXPECT_EQ(s["counts"]["running"], 1);
  EXPECT_EQ(s["counts"]["failed"], 1);
  EXPECT_EQ(s["counts"]["queued"], 1) << "the one trial not created yet";
  EXPECT_EQ(s["best"]["trial"], "5eed0001-0000");
  EXPECT_DOUBLE_EQ(s["best"]["value"].get<double>(), 0.30);
  EXPECT_DOUBLE_EQ(s["elapsed_s"].get<double>(), 100);
  // Mean duration of the ended trials ((40 + 48) / 2 = 44 s), two left, one running.
  EXPECT_DOUBLE_EQ(s["eta_s"].get<double>(), 88);
  EXPECT_DOUBLE_EQ(j["now"].get<double>(), kNow);
}

TEST_F(DashboardTest, SweepHasItsSpecAsSubmittedAndParametersWithTheirScale) {
  json s = Get("/api/sweeps/5eed0001");
  EXPECT_EQ(s["spec_yaml"], kSpec);
  EXPECT_EQ(s["file_name"], "lr.yaml");
  EXPECT_EQ(s["metric"], "val_loss");
  EXPECT_EQ(s["goal"], "minimize");
  ASSERT_EQ(s["parameters"].size(), 3u);
  EXPECT_EQ(s["parameters"][0]["name"], "lr");
  EXPECT_EQ(s["parameters"][0]["distribution"], "log_uniform_values");
  EXPECT_EQ(s["parameters"][0]["log"], true);
  EXPECT_DOUBLE_EQ(s["parameters"][0]["min"].get<double>(), 0.0001);
  EXPECT_EQ(s["parameters"][1]["name"], "optimizer");
  EXPECT_EQ(s["parameters"][1]["log"], false);
  EXPECT_EQ(s["parameters"][1]["values"], json::array({"adam", "sgd"}));
  EXPECT_EQ(s["parameters"][2]["distribution"], "constant");
}

TEST_F(DashboardTest, UnknownSweepOrTrialIsNotFoundWithAMessage) {
  int status = 0;
  json j = Get("/api/sweeps/deadbeef", &status);
  EXPECT_EQ(status, 404);
  EXPECT_EQ(j["error"], "no sweep 'deadbeef' in this database");
  j = Get("/api/sweeps/deadbeef/trials", &status);
  EXPECT_EQ(status, 404);
  j = Get("/api/trials/deadbeef-0001", &status);
  EXPECT_EQ(status, 404);
  EXPECT_EQ(j["error"], "no trial 'deadbeef-0001' in this database");
  j = Get("/api/nothing", &status);
  EXPECT_EQ(status, 404);
  EXPECT_THAT(j["error"].get<std::string>(), HasSubstr("docs/dashboard.md"));
}

TEST_F(DashboardTest, TrialsListHasParamsStateWorkerGpuAttemptDurationAndMetrics) {
  json j = Get("/api/sweeps/5eed0001/trials");
  EXPECT_EQ(j["best_trial"], "5eed0001-0000");
  EXPECT_EQ(j["metric"], "val_loss");
  ASSERT_EQ(j["trials"].size(), 3u);
  json t0 = j["trials"][0], t1 = j["trials"][1], t2 = j["trials"][2];
  EXPECT_EQ(t0["id"], "5eed0001-0000");
  EXPECT_EQ(t0["state"], "completed");
  EXPECT_EQ(t0["params"], (json{{"lr", 0.001}, {"optimizer", "adam"}, {"epochs", 3}}));
  EXPECT_EQ(t0["worker"], "node1/gpu0-aaaa");
  EXPECT_EQ(t0["gpu"], 0);
  EXPECT_EQ(t0["attempt"], 1);
  EXPECT_DOUBLE_EQ(t0["duration_s"].get<double>(), 40);
  EXPECT_DOUBLE_EQ(t0["final_metric"].get<double>(), 0.30);
  EXPECT_DOUBLE_EQ(t0["best_metric"].get<double>(), 0.30);
  EXPECT_EQ(t0["exit_code"], 0);
  EXPECT_FALSE(t0.contains("stdout_tail")) << "the list leaves the logs out";
  EXPECT_EQ(t1["state"], "running");
  EXPECT_EQ(t1["attempt"], 2);
  EXPECT_DOUBLE_EQ(t1["duration_s"].get<double>(), 89) << "running: until now";
  EXPECT_EQ(t2["state"], "failed");
  EXPECT_EQ(t2["exit_code"], 3);
  EXPECT_TRUE(t2["final_metric"].is_null());
}

TEST_F(DashboardTest, MetricSeriesHoldOnePointPerStepWithTheLatestAttemptWinning) {
  json j = Get("/api/sweeps/5eed0001/metrics");
  EXPECT_EQ(j["name"], "val_loss") << "the sweep's metric by default";
  EXPECT_EQ(j["names"], json::array({"val_acc", "val_loss"}));
  ASSERT_EQ(j["series"].size(), 2u);
  EXPECT_EQ(j["series"][0]["trial"], "5eed0001-0000");
  EXPECT_EQ(j["series"][0]["points"], json::parse("[[1,0.5],[2,0.35],[3,0.3]]"));
  EXPECT_EQ(j["series"][1]["trial"], "5eed0001-0001");
  EXPECT_EQ(j["series"][1]["points"], json::parse("[[1,0.9],[2,0.7]]"));

  j = Get("/api/sweeps/5eed0001/metrics?name=val_acc");
  ASSERT_EQ(j["series"].size(), 1u);
  EXPECT_EQ(j["series"][0]["points"], json::parse("[[1,0.8],[3,0.9]]"));

  j = Get("/api/sweeps/5eed0001/metrics?max_points=2");
  EXPECT_EQ(j["series"][0]["points"], json::parse("[[1,0.5],[3,0.3]]"))
      << "thinned, keeping the first and last";
}

TEST_F(DashboardTest, ALargeSweepsListsComeInPartRunningThenBest) {
  json all = Get("/api/sweeps/5eed0001/trials");
  EXPECT_EQ(all["total"], 3);
  EXPECT_EQ(all["truncated"], false);
  json two = Get("/api/sweeps/5eed0001/trials?limit=2");
  EXPECT_EQ(two["total"], 3);
  EXPECT_EQ(two["truncated"], true);
  ASSERT_EQ(two["trials"].size(), 2u);
  EXPECT_EQ(two["trials"][0]["id"], "5eed0001-0000") << "the best, in index order";
  EXPECT_EQ(two["trials"][1]["id"], "5eed0001-0001") << "the running one";
  json one = Get("/api/sweeps/5eed0001/trials?limit=1");
  ASSERT_EQ(one["trials"].size(), 1u);
  EXPECT_EQ(one["trials"][0]["state"], "running") << "running trials come first";

  json curves = Get("/api/sweeps/5eed0001/metrics?series=1");
  EXPECT_EQ(curves["truncated"], true);
  EXPECT_EQ(curves["series_total"], 3);
  ASSERT_EQ(curves["series"].size(), 1u);
  EXPECT_EQ(curves["series"][0]["trial"], "5eed0001-0001");
  EXPECT_EQ(curves["names"], json::array({"val_loss"})) << "the names of the trials shown";
}

TEST_F(DashboardTest, LongSeriesAreThinnedServerSideKeepingBothEnds) {
  json points = json::array();
  for (int i = 0; i < 10000; ++i) points.push_back({i, i * 0.5});
  json thin = dashboard_internal::Thin(points, 500);
  ASSERT_EQ(thin.size(), 500u);
  EXPECT_EQ(thin.front(), points.front());
  EXPECT_EQ(thin.back(), points.back());
  EXPECT_EQ(dashboard_internal::Thin(points, 20000), points);
}

TEST_F(DashboardTest, TrialHasEveryMetricExitStatusMessageAndLogTails) {
  json t = Get("/api/trials/5eed0001-0000");
  EXPECT_EQ(t["sweep"], "5eed0001");
  EXPECT_EQ(t["sweep_name"], "lr-search");
  EXPECT_EQ(t["metric"], "val_loss");
  EXPECT_EQ(t["exit_code"], 0);
  EXPECT_EQ(t["message"], "exited with status 0");
  EXPECT_EQ(t["stdout_tail"], "epoch 3 val_loss=0.30\n");
  EXPECT_EQ(t["stderr_tail"], "warning: something\n");
  EXPECT_EQ(t["argv"], json::array({"python3", "train.py"}));
  EXPECT_EQ(t["metrics"]["val_loss"], json::parse("[[1,0.5],[2,0.35],[3,0.3]]"));
  EXPECT_EQ(t["metrics"]["val_acc"], json::parse("[[1,0.8],[3,0.9]]"));

  json failed = Get("/api/trials/5eed0001-0002");
  EXPECT_EQ(failed["state"], "failed");
  EXPECT_EQ(failed["exit_code"], 3);
  EXPECT_EQ(failed["stderr_tail"], "Traceback: out of memory\n");
  EXPECT_EQ(failed["metrics"], json::object());
  EXPECT_EQ(failed["notices"], json::array({"stderr.log passed 64 MiB: its middle is cut"}));
  EXPECT_EQ(t["notices"], json::array());
}

TEST_F(DashboardTest, WorkersListHasGpuStateTrialAndHeartbeatAge) {
  json j = Get("/api/workers");
  ASSERT_EQ(j["workers"].size(), 2u);
  json w = j["workers"][0];
  EXPECT_EQ(w["id"], "node1/gpu1-aaaa");
  EXPECT_EQ(w["host"], "node1");
  EXPECT_EQ(w["state"], "busy");
  EXPECT_EQ(w["gpu"]["index"], 1);
  EXPECT_EQ(w["gpu"]["name"], "NVIDIA H100");
  EXPECT_EQ(w["gpu"]["memory_mib"], 81559);
  EXPECT_EQ(w["trial"], "5eed0001-0001");
  EXPECT_EQ(w["sweep"], "5eed0001");
  EXPECT_DOUBLE_EQ(w["heartbeat_age_s"].get<double>(), 1.5);
  json lost = j["workers"][1];
  EXPECT_EQ(lost["state"], "lost") << "lost slots come last";
  EXPECT_TRUE(lost["gpu"].is_null());
  EXPECT_TRUE(lost["trial"].is_null());
}

TEST_F(DashboardTest, ReadsWhatTheSchedulerWritesAfterItStarted) {
  TrialRow t3 = ATrial(3, "running", 0.01, "sgd");
  ASSERT_TRUE(store_->UpsertTrial(t3).ok());
  json j = Get("/api/sweeps/5eed0001/trials");
  EXPECT_EQ(j["trials"].size(), 4u);
  t3.state = "completed";
  t3.ended_at = kNow;
  ASSERT_TRUE(store_->UpsertTrial(t3).ok());
  j = Get("/api/sweeps/5eed0001/trials");
  EXPECT_EQ(j["trials"][3]["state"], "completed");
}

TEST_F(DashboardTest, ServesTheWebAppBuiltIntoTheBinaryWithEtags) {
  httplib::Result page = client_->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_THAT(page->get_header_value("Content-Type"), HasSubstr("text/html"));
  EXPECT_THAT(page->body, HasSubstr("<script src=\"/app.js\""));
  EXPECT_THAT(page->get_header_value("Content-Security-Policy"), HasSubstr("default-src 'self'"));
  httplib::Result echarts = client_->Get("/vendor/echarts.min.js");
  ASSERT_TRUE(echarts);
  EXPECT_EQ(echarts->status, 200);
  EXPECT_GT(echarts->body.size(), 500'000u);
  EXPECT_THAT(echarts->body, HasSubstr("echarts"));
  for (const char* path : {"/app.js", "/style.css", "/favicon.svg"}) {
    httplib::Result r = client_->Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path;
    std::string etag = r->get_header_value("ETag");
    ASSERT_FALSE(etag.empty()) << path;
    httplib::Result again = client_->Get(path, {{"If-None-Match", etag}});
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 304) << path;
  }
  httplib::Result missing = client_->Get("/nope.js");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST_F(DashboardTest, HasNoWritePath) {
  for (const char* method : {"POST", "PUT", "DELETE", "PATCH"}) {
    httplib::Request req;
    req.method = method;
    req.path = "/api/sweeps/5eed0001";
    httplib::Result r = client_->send(req);
    ASSERT_TRUE(r) << method;
    EXPECT_EQ(r->status, 405) << method;
  }
  // Its connection is read-only: SQLite refuses a write through it.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db_path().c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, "DELETE FROM trials", nullptr, nullptr, nullptr), SQLITE_READONLY);
  sqlite3_close(db);
}

TEST_F(DashboardTest, OnLoopbackAForeignHostHeaderIsRefused) {
  EXPECT_TRUE(dashboard_->token().empty());
  httplib::Result r = client_->Get("/api/sweeps", {{"Host", "evil.example:80"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  r = client_->Get("/api/sweeps", {{"Host", "localhost:8080"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(DashboardTest, BeyondLoopbackEveryRequestNeedsTheToken) {
  DashboardOptions o;
  o.address = "0.0.0.0:0";
  o.db_path = db_path();
  auto open = Dashboard::Start(o);
  ASSERT_TRUE(open.ok()) << open.status();
  const std::string token = (*open)->token();
  ASSERT_EQ(token.size(), 48u);
  EXPECT_THAT((*open)->url(), HasSubstr("?token=" + token));
  httplib::Client c("127.0.0.1", (*open)->port());

  for (const char* path : {"/", "/app.js", "/api/sweeps", "/api/trials/5eed0001-0000"}) {
    httplib::Result r = c.Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 401) << path;
    r = c.Get(path, {{"X-Sweep-Token", "not-the-token"}});
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 403) << path;
  }
  httplib::Result r = c.Get("/api/sweeps");
  EXPECT_THAT(r->body, HasSubstr("needs its token"));

  r = c.Get(("/?token=" + token).c_str());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  std::string cookie = r->get_header_value("Set-Cookie");
  EXPECT_THAT(cookie, HasSubstr(absl::StrCat("sweep_token_", (*open)->port(), "=", token)));
  EXPECT_THAT(cookie, HasSubstr("HttpOnly"));
  r = c.Get("/api/sweeps", {{"X-Sweep-Token", token}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  r = c.Get("/api/sweeps", {{"Authorization", "Bearer " + token}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  r = c.Get("/api/workers", {{"Cookie", cookie.substr(0, cookie.find(';'))}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(DashboardTest, AGivenTokenIsUsedAndLoopbackNeedsNone) {
  DashboardOptions o;
  o.address = "0.0.0.0:0";
  o.db_path = db_path();
  o.token = "s3cret";
  auto open = Dashboard::Start(o);
  ASSERT_TRUE(open.ok()) << open.status();
  EXPECT_EQ((*open)->token(), "s3cret");
  o.address = "localhost:0";
  auto local = Dashboard::Start(o);
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_EQ((*local)->token(), "");
  EXPECT_EQ((*local)->url(), absl::StrCat("http://localhost:", (*local)->port(), "/"));
}

TEST_F(DashboardTest, ABusyPortIsUnavailableAndTheMessageSaysWhatToDo) {
  DashboardOptions o;
  o.address = dashboard_->address();
  o.db_path = db_path();
  auto second = Dashboard::Start(o);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), HasSubstr(dashboard_->address()));
  EXPECT_THAT(second.status().message(), HasSubstr("--http"));
}

TEST_F(DashboardTest, AMissingDatabaseIsUnavailableAndNotCreated) {
  DashboardOptions o;
  o.address = "127.0.0.1:0";
  o.db_path = dir_ / "missing.db";
  auto d = Dashboard::Start(o);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(std::filesystem::exists(o.db_path));
}

TEST(DashboardAddressTest, ParsesHostPortBracketedV6AndBarePorts) {
  auto a = ParseHttpAddress("0.0.0.0:8080");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "0.0.0.0");
  EXPECT_EQ(a->port, 8080);
  a = ParseHttpAddress("[::1]:0");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->port, 0);
  a = ParseHttpAddress("9000");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 9000);
  for (const char* bad : {"", "host:", ":80", "host:port", "::1:80", "[::1]80", "h:70000"}) {
    auto r = ParseHttpAddress(bad);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace sweep
