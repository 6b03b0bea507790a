// End to end, with real processes on loopback: a scheduler, workers, command trials.
#include <signal.h>

#include <filesystem>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/cluster.h"

namespace sweep::testing {
namespace {

using ::testing::HasSubstr;

// A grid of trial.sh trials; each holds at `gate` (trial.sh --gate) when given.
std::string GridSpec(const std::string& x_values, const std::string& y_values,
                     double sleep_s, const std::string& gate = "") {
  return absl::StrCat(R"(
name: e2e
program: )", TrialScript(), R"(
command: )", TrialCommand(gate), R"(
method: grid
metric: {name: score, goal: maximize}
parameters:
  x:
    values: )", x_values, R"(
  y:
    values: )", y_values, R"(
  sleep:
    value: )", sleep_s, "\n");
}

bool Alive(pid_t pid) { return kill(pid, 0) == 0; }

TEST(EndToEndTest, TwelveTrialsOnTwoWorkersEachRunOnceWithEveryMetricStored) {
  Cluster c;
  c.StartScheduler();
  c.StartWorker(2);
  c.StartWorker(2);
  const std::string gate = c.dir() / "go";
  std::string sweep = c.Submit(GridSpec("[1, 2, 3, 4]", "[1, 2, 3]", 0, gate));
  ASSERT_EQ(sweep.size(), 8u);
  Db db(c.db());
  // The trials hold at the gate until all four slots run one, however late a worker
  // came up; then they run through.
  ASSERT_TRUE(WaitFor([&] { return CountTrials(db, sweep, "running") == 4; },
                      absl::Seconds(60)))
      << c.Logs();
  WriteFile(gate, "");
  ASSERT_TRUE(c.WaitEnded(sweep, absl::Seconds(120))) << c.Logs();

  EXPECT_EQ(db.Value("SELECT state FROM sweeps WHERE id='" + sweep + "'"), "finished");
  auto trials = db.Query(
      "SELECT id, state, attempt, params, final_metric, worker, trial_dir, exit_code "
      "FROM trials WHERE sweep_id='" + sweep + "' ORDER BY idx");
  ASSERT_EQ(trials.size(), 12u);
  std::set<std::string> workers, combos;
  for (const auto& t : trials) {
    SCOPED_TRACE(t[0]);
    EXPECT_EQ(t[1], "completed");
    EXPECT_EQ(t[2], "1");
    EXPECT_EQ(t[7], "0");
    nlohmann::json p = nlohmann::json::parse(t[3]);
    int x = p["x"], y = p["y"];
    combos.insert(absl::StrCat(x, ",", y));
    EXPECT_EQ(std::stod(t[4]), 10 * x + y + 3);  // final = value at the last step
    workers.insert(t[5]);

    // What the trial process saw.
    auto seen = ReadSeen(t[6] + "/seen.txt");
    EXPECT_EQ(seen["CUDA_VISIBLE_DEVICES"], "");
    EXPECT_EQ(seen["SWEEP_TRIAL_ID"], t[0]);
    EXPECT_EQ(seen["SWEEP_SWEEP_ID"], sweep);
    EXPECT_EQ(nlohmann::json::parse(seen["SWEEP_PARAMS"]), p);
    EXPECT_EQ(seen["SWEEP_TRIAL_DIR"], t[6]);
    EXPECT_EQ(seen["SWEEP_METRICS_FILE"], t[6] + "/metrics.jsonl");
    EXPECT_THAT(seen["SWEEP_CHECKPOINT_DIR"], ::testing::EndsWith(t[0] + "/checkpoints"));
    EXPECT_EQ(seen["PGID"], seen["PID"]);  // its own process group
    EXPECT_THAT(seen["ARGS"], HasSubstr(absl::StrCat("--x=", x)));
    EXPECT_EQ(seen["CWD"], c.dir().path().string());  // where `sweep submit` ran
    EXPECT_THAT(ReadFile(t[6] + "/stdout.log"), HasSubstr("done"));
  }
  EXPECT_EQ(combos.size(), 12u);
  EXPECT_EQ(workers.size(), 4u) << "every slot of both workers took trials";
  EXPECT_EQ(db.Value("SELECT COUNT(*) FROM metrics m JOIN trials t ON t.id = m.trial_id "
                     "WHERE t.sweep_id='" + sweep + "'"),
            "36");

  // The CLI reads the same results.
  CommandResult best = c.Sweep({"best", sweep, "--json"});
  ASSERT_EQ(best.exit_code, 0) << best.err;
  nlohmann::json b = nlohmann::json::parse(best.out);
  EXPECT_EQ(b["params"]["x"], 4);
  EXPECT_EQ(b["params"]["y"], 3);
  EXPECT_EQ(b["final"], 46);
  CommandResult status = c.Sweep({"status", sweep, "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  nlohmann::json s = nlohmann::json::parse(status.out)["sweeps"][0];
  EXPECT_EQ(s["completed"], 12);
  EXPECT_EQ(s["state"], "finished");
  CommandResult csv = c.Sweep({"export", sweep, "--format", "csv"});
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  EXPECT_EQ(std::count(csv.out.begin(), csv.out.end(), '\n'), 13);
  EXPECT_THAT(csv.out, ::testing::StartsWith("id,state,attempt,worker,gpu,started_at,"
                                             "ended_at,exit_code,score,best_score,sleep,x,y\n"));
  CommandResult sorted = c.Sweep({"trials", sweep, "--sort", "score", "--json"});
  ASSERT_EQ(sorted.exit_code, 0) << sorted.err;
  EXPECT_EQ(nlohmann::json::parse(sorted.out)[0]["sort_value"], 46);
  CommandResult logs = c.Sweep({"logs", trials[0][0]});
  EXPECT_EQ(logs.exit_code, 0);
  EXPECT_THAT(logs.out, HasSubstr("trial x=1 y=1 done"));
}

TEST(EndToEndTest, TrialOfAWorkerKilledMidTrialIsRequeuedAndCompletesOnAnother) {
  Cluster c;
  // The lease of the killed worker must expire for the trial to come back.
  c.StartScheduler(/*lease_timeout=*/5);
  size_t doomed = c.StartWorker(1);
  // The first attempt holds at the gate until its worker is gone.
  const std::string gate = c.dir() / "go";
  std::string sweep = c.Submit(GridSpec("[1]", "[1]", 0, gate));
  Db db(c.db());
  // Wait until the trial process is up.
  std::string seen_path;
  ASSERT_TRUE(WaitFor(
      [&] {
        std::error_code ec;  // runs/ appears only once the worker starts the trial
        for (const auto& e :
             std::filesystem::recursive_directory_iterator(c.dir() / "runs", ec)) {
          if (e.path().filename() == "seen.txt") seen_path = e.path().string();
        }
        return !seen_path.empty() && !ReadSeen(seen_path)["CWD"].empty();
      },
      absl::Seconds(20)))
      << c.Logs();
  pid_t trial_pid = std::stoi(ReadSeen(seen_path)["PID"]);
  ASSERT_TRUE(Alive(trial_pid));
  c.worker(doomed).Signal(SIGKILL);
  ASSERT_TRUE(c.worker(doomed).Wait(absl::Seconds(60)));
  EXPECT_TRUE(WaitFor([&] { return !Alive(trial_pid); }, absl::Seconds(60)))
      << "the trial must die with its worker";

  WriteFile(gate, "");  // the second attempt runs through
  c.StartWorker(1);
  ASSERT_TRUE(c.WaitEnded(sweep, absl::Seconds(120))) << c.Logs();
  auto t = db.Query("SELECT state, attempt, worker, trial_dir FROM trials WHERE sweep_id='" +
                    sweep + "'");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0][0], "completed");
  EXPECT_EQ(t[0][1], "2");
  EXPECT_THAT(t[0][3], ::testing::EndsWith("attempt-2"));
  // Both attempts used the same checkpoint directory.
  auto seen = ReadSeen(t[0][3] + "/seen.txt");
  EXPECT_EQ(ReadFile(seen["SWEEP_CHECKPOINT_DIR"] + "/attempts"), "1\n2\n");
  EXPECT_EQ(db.Value("SELECT COUNT(*) FROM events WHERE kind='trial_requeued'"), "1");
}

TEST(EndToEndTest, CancelMidSweepLeavesNoTrialProcessRunning) {
  Cluster c;
  c.StartScheduler();
  c.StartWorker(2);
  // The trials hold at a gate that never opens: only the cancel ends them.
  std::string sweep = c.Submit(GridSpec("[1, 2, 3]", "[1, 2, 3]", 0, c.dir() / "go"));
  std::vector<std::string> seen_files;
  ASSERT_TRUE(WaitFor(
      [&] {
        seen_files.clear();
        if (!std::filesystem::exists(c.dir() / "runs")) return false;
        for (const auto& e : std::filesystem::recursive_directory_iterator(c.dir() / "runs")) {
          if (e.path().filename() == "seen.txt" && !ReadSeen(e.path())["CWD"].empty()) {
            seen_files.push_back(e.path().string());
          }
        }
        return seen_files.size() == 2;
      },
      absl::Seconds(60)))
      << c.Logs();
  std::vector<pid_t> pids;
  for (const auto& f : seen_files) pids.push_back(std::stoi(ReadSeen(f)["PID"]));
  Db db(c.db());
  // Both trials' three lines are stored before the cancel, which must keep them.
  ASSERT_TRUE(WaitFor([&] { return db.Value("SELECT COUNT(*) FROM metrics") == "6"; },
                      absl::Seconds(60)))
      << c.Logs();

  CommandResult r = c.Sweep({"cancel", sweep});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("7 queued trials dropped, 2 running trials told to stop"));
  ASSERT_TRUE(c.WaitEnded(sweep, absl::Seconds(60))) << c.Logs();
  for (pid_t pid : pids) {
    EXPECT_TRUE(WaitFor([&] { return !Alive(pid); }, absl::Seconds(60))) << pid;
  }
  EXPECT_EQ(db.Value("SELECT state FROM sweeps WHERE id='" + sweep + "'"), "cancelled");
  EXPECT_EQ(db.Value("SELECT COUNT(*) FROM trials WHERE state='cancelled'"), "2");
  // Their metrics up to the stop are kept.
  EXPECT_EQ(db.Value("SELECT COUNT(*) FROM metrics"), "6");
  CommandResult again = c.Sweep({"cancel", sweep});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_THAT(again.err, HasSubstr("already ended (cancelled)"));
}

TEST(EndToEndTest, SchedulerKilledAndRestartedMidSweepLosesNothingAndRunsNothingTwice) {
  Cluster c;
  // Workers must get back to the restarted scheduler within a lease; leave room for
  // a loaded CI machine.
  c.StartScheduler(/*lease_timeout=*/15);
  c.StartWorker(2);
  std::string sweep = c.Submit(absl::StrCat("program: ", SourceDir(), R"(/tests/data/curve.sh
command: ["/bin/sh", "${program}", "${args}"]
method: grid
metric: {name: loss, goal: minimize}
parameters:
  x: {values: [1, 2, 3, 4, 5, 6]}
  steps: {value: 6}
  pause: {value: 0.2}
)"));
  Db db(c.db());
  ASSERT_TRUE(WaitFor([&] { return std::stoi(db.Value("SELECT COUNT(*) FROM metrics")) >= 4; },
                      absl::Seconds(20)));
  // Down for a second while both trials keep running and writing metrics.
  c.RestartScheduler(absl::Seconds(1));
  ASSERT_TRUE(c.WaitEnded(sweep, absl::Seconds(60))) << c.Logs();
  EXPECT_EQ(db.Value("SELECT state FROM sweeps"), "finished");
  auto trials = db.Query("SELECT id, state, attempt FROM trials ORDER BY idx");
  ASSERT_EQ(trials.size(), 6u);
  for (const auto& t : trials) {
    SCOPED_TRACE(t[0]);
    EXPECT_EQ(t[1], "completed");
    EXPECT_EQ(t[2], "1") << "trials that ran through the outage were not run again";
    // Every line each trial wrote is stored exactly once.
    EXPECT_EQ(db.Value("SELECT COUNT(*) FROM metrics WHERE trial_id='" + t[0] + "'"), "6");
    EXPECT_EQ(db.Value("SELECT COUNT(DISTINCT step) FROM metrics WHERE trial_id='" + t[0] +
                       "'"),
              "6");
  }
}

TEST(EndToEndTest, EarlyStoppedTrialsProcessesAreGoneAndTheirMetricsKept) {
  Cluster c;
  c.StartScheduler();
  c.StartWorker(1);  // one slot: trials run in order, so the decisions are known
  // Trials x=5 and x=6 are worse than the median at rung 1 (step 1): they hold after
  // step 1 (their gates never open) until the stop order comes, however late. The
  // others are let through.
  const std::string gates = c.dir() / "gates";
  std::filesystem::create_directories(gates);
  WriteFile(gates + "/go-1", "");
  WriteFile(gates + "/go-0.5", "");
  std::string sweep = c.Submit(absl::StrCat("program: ", SourceDir(), R"(/tests/data/curve.sh
command: ["/bin/sh", "${program}", "--gate_dir=)", gates, R"(", "${args}"]
method: grid
metric: {name: loss, goal: minimize}
early_terminate: {type: asha, min_iter: 1, max_iter: 8, eta: 2}
parameters:
  x: {values: [1, 5, 0.5, 6]}
  steps: {value: 8}
  pause: {value: 0.05}
)"));
  ASSERT_TRUE(c.WaitEnded(sweep, absl::Seconds(120))) << c.Logs();
  Db db(c.db());
  auto trials = db.Query("SELECT state, stopped_at_step, message, trial_dir, id FROM trials "
                         "WHERE sweep_id='" + sweep + "' ORDER BY idx");
  ASSERT_EQ(trials.size(), 4u);
  std::vector<std::string> states;
  for (const auto& t : trials) states.push_back(t[0]);
  EXPECT_THAT(states, ::testing::ElementsAre("completed", "stopped", "completed", "stopped"));
  for (int i : {1, 3}) {
    SCOPED_TRACE(trials[i][4]);
    EXPECT_EQ(trials[i][1], "1");
    EXPECT_THAT(trials[i][2], HasSubstr("early stopped at rung 1 (step 1)"));
    pid_t pid = std::stoi(ReadFile(trials[i][3] + "/pid"));
    EXPECT_FALSE(Alive(pid));
    int kept = std::stoi(db.Value("SELECT COUNT(*) FROM metrics WHERE trial_id='" +
                                  trials[i][4] + "'"));
    EXPECT_GE(kept, 1);
    EXPECT_LT(kept, 8) << "stopped before the end";
  }
  EXPECT_EQ(db.Value("SELECT COUNT(*) FROM metrics WHERE trial_id='" + trials[0][4] + "'"),
            "8");
}

TEST(EndToEndTest, AKilledWorkerTakesEveryProcessOfItsTrialWithIt) {
  Cluster c;
  c.StartScheduler(/*lease_timeout=*/30);
  size_t w = c.StartWorker(1);
  std::string sweep = c.Submit(absl::StrCat(R"(
name: spawner
program: )", SourceDir(), R"(/tests/data/spawner.sh
command: ["/bin/sh", "${program}"]
method: grid
parameters:
  n: {value: 1}
)"));
  Db db(c.db());
  std::string dir;
  ASSERT_TRUE(WaitFor(
      [&] {
        dir = db.Value("SELECT trial_dir FROM trials WHERE sweep_id='" + sweep + "'");
        if (dir.empty() || dir == "NULL") {
          // The directory is stored with the outcome; find it on disk meanwhile.
          std::error_code ec;  // runs/ appears only once the worker starts the trial
          for (const auto& e :
               std::filesystem::recursive_directory_iterator(c.dir() / "runs", ec)) {
            if (e.path().filename() == "child.pid") dir = e.path().parent_path();
          }
        }
        return !dir.empty() && dir != "NULL" && !ReadFile(dir + "/child.pid").empty();
      },
      absl::Seconds(30)))
      << c.Logs();
  pid_t child = static_cast<pid_t>(std::atol(ReadFile(dir + "/child.pid").c_str()));
  ASSERT_GT(child, 1);
  ASSERT_TRUE(Alive(child));
  c.worker(w).Signal(SIGKILL);
  EXPECT_TRUE(WaitFor([&] { return !Alive(child); }, absl::Seconds(60)))
      << "a process the trial started outlived its SIGKILLed worker";
  c.Sweep({"cancel", sweep});
}

}  // namespace
}  // namespace sweep::testing
