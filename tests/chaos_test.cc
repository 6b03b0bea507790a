// Chaos on loopback: a sweep runs while workers and the scheduler are SIGKILLed at
// moments drawn from a seeded generator (printed; SWEEP_CHAOS_SEED replays a run's
// choices, though not its timing). Whatever the interleaving, the invariants of
// docs/failure-model.md must hold at the end.
#include <signal.h>

#include <map>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/cluster.h"

namespace sweep::testing {
namespace {

constexpr int kTrials = 20;
constexpr int kSteps = 12;

uint64_t ChaosSeed() {
  uint64_t seed = 0;
  if (absl::SimpleAtoi(Env("SWEEP_CHAOS_SEED"), &seed)) return seed;
  return std::random_device{}();
}

// The (step, value) of each line of a trial attempt's metrics file.
std::vector<std::pair<int64_t, double>> Written(const std::string& path) {
  std::vector<std::pair<int64_t, double>> out;
  for (absl::string_view line : absl::StrSplit(ReadFile(path), '\n', absl::SkipEmpty())) {
    nlohmann::json j = nlohmann::json::parse(line);
    out.emplace_back(j["step"].get<int64_t>(), j["v"].get<double>());
  }
  return out;
}

TEST(ChaosTest, KillingWorkersAndTheSchedulerAtRandomMomentsKeepsTheInvariants) {
  const uint64_t seed = ChaosSeed();
  std::cout << "chaos seed " << seed << " (SWEEP_CHAOS_SEED=" << seed << " replays it)\n";
  RecordProperty("chaos_seed", std::to_string(seed));
  SCOPED_TRACE(absl::StrCat("SWEEP_CHAOS_SEED=", seed));
  std::mt19937_64 rng(seed);

  Cluster c;
  // A short lease, so that killed workers' trials come back quickly.
  ASSERT_NO_FATAL_FAILURE(c.StartScheduler(/*lease_timeout=*/3, /*heartbeat=*/0.2));
  std::vector<size_t> live = {c.StartWorker(2), c.StartWorker(2)};
  std::string xs;
  for (int x = 1; x <= kTrials; ++x) absl::StrAppend(&xs, x == 1 ? "" : ", ", x);
  std::string sweep = c.Submit(absl::StrCat("program: ", SourceDir(),
                                            R"(/tests/data/resume.sh
command: ["/bin/sh", "${program}", "${args}"]
method: grid
metric: {name: v, goal: maximize}
max_retries: 100
parameters:
  x: {values: [)", xs, R"(]}
  steps: {value: )", kSteps, R"(}
  pause: {value: 0.1}
)"));
  ASSERT_EQ(sweep.size(), 8u);
  Db db(c.db());
  auto ended = [&] {
    return db.Value("SELECT state FROM sweeps WHERE id='" + sweep + "'") != "running";
  };
  auto running_on = [&](pid_t pid) {
    return db.Value(absl::StrCat(
               "SELECT COUNT(*) FROM trials t JOIN workers w ON w.id = t.worker "
               "WHERE t.state='running' AND w.pid=", pid)) != "0";
  };

  // The chaos: 12 blows at most, 0.3 to 1.5 s apart, while the sweep runs. The first
  // kills a worker, the second restarts the scheduler, the rest are drawn.
  int worker_kills = 0, scheduler_restarts = 0;
  std::uniform_int_distribution<int> gap_ms(300, 1500), down_ms(0, 1000);
  std::bernoulli_distribution kill_a_worker(0.6);
  for (int blow = 0; blow < 12 && !ended(); ++blow) {
    absl::SleepFor(absl::Milliseconds(gap_ms(rng)));
    bool worker = blow == 0 || (blow > 1 && kill_a_worker(rng));
    if (worker) {
      size_t k = rng() % live.size();
      pid_t pid = c.worker(live[k]).pid();
      // At a moment it runs a trial (as told to the scheduler), so a trial is cut.
      WaitFor([&] { return running_on(pid); }, absl::Seconds(5));
      std::cout << "chaos: blow " << blow << ": SIGKILL worker " << pid << "\n";
      c.worker(live[k]).Signal(SIGKILL);
      c.worker(live[k]).Wait(absl::Seconds(5));
      live[k] = c.StartWorker(2);  // (workers() may move: no reference kept)
      ++worker_kills;
    } else {
      absl::Duration down = absl::Milliseconds(down_ms(rng));
      std::cout << "chaos: blow " << blow << ": SIGKILL scheduler, down "
                << absl::FormatDuration(down) << "\n";
      c.RestartScheduler(down);
      ++scheduler_restarts;
    }
  }
  ASSERT_TRUE(c.WaitEnded(sweep, absl::Seconds(120))) << c.Logs();
  EXPECT_GE(worker_kills, 1);
  EXPECT_GE(scheduler_restarts, 1);

  // Every trial ended exactly once, completed, in the attempt whose directory has
  // the end marker.
  EXPECT_EQ(db.Value("SELECT state FROM sweeps WHERE id='" + sweep + "'"), "finished");
  auto trials = db.Query("SELECT id, state, attempt, params, trial_dir, exit_code, "
                         "final_metric FROM trials WHERE sweep_id='" + sweep +
                         "' ORDER BY idx");
  ASSERT_EQ(trials.size(), static_cast<size_t>(kTrials));
  int retried = 0;
  for (const auto& t : trials) {
    SCOPED_TRACE(t[0]);
    const std::string& id = t[0];
    EXPECT_EQ(t[1], "completed");
    EXPECT_EQ(t[5], "0");
    int attempt = std::stoi(t[2]);
    retried += attempt > 1;
    int x = nlohmann::json::parse(t[3])["x"];
    std::string root = c.dir() / "runs/" + sweep + "/" + id;
    EXPECT_EQ(t[4], absl::StrCat(root, "/attempt-", attempt));
    EXPECT_TRUE(std::filesystem::exists(t[4] + "/done"));
    // Its end was recorded once (the event is written in the same transaction as
    // the state).
    EXPECT_EQ(db.Value("SELECT COUNT(*) FROM events WHERE kind='trial_ended' AND trial_id='" +
                       id + "'"),
              "1");

    // Metrics: per attempt, what was stored is a prefix of what that attempt wrote,
    // each point once; the completed attempt's lines are all there.
    std::map<int, std::vector<std::pair<int64_t, double>>> stored;
    for (const auto& r : db.Query("SELECT attempt, step, value, name FROM metrics WHERE "
                                  "trial_id='" + id + "' ORDER BY attempt, step")) {
      EXPECT_EQ(r[3], "v");
      stored[std::stoi(r[0])].emplace_back(std::stoll(r[1]), std::stod(r[2]));
    }
    for (const auto& [k, points] : stored) {
      SCOPED_TRACE(absl::StrCat("attempt ", k));
      EXPECT_LE(k, attempt);
      auto written = Written(absl::StrCat(root, "/attempt-", k, "/metrics.jsonl"));
      ASSERT_LE(points.size(), written.size()) << "stored more than the attempt wrote";
      EXPECT_EQ(points, decltype(written)(written.begin(), written.begin() + points.size()));
      if (k == attempt) {
        EXPECT_EQ(points.size(), written.size());
      }
      for (const auto& [step, value] : points) EXPECT_EQ(value, 1000 * x + step);
    }
    // The completed attempt went on from where the checkpoint said, to the end. (It
    // wrote nothing when an earlier attempt had checkpointed the last step but was
    // killed before it could report it or end.)
    int resumed_after = std::stoi(ReadFile(t[4] + "/resumed_after"));
    EXPECT_EQ(stored.count(attempt) ? stored.at(attempt).size() : 0,
              static_cast<size_t>(kSteps - resumed_after));
    // The final value is the one at the highest step of the last attempt that
    // reported (none when no report of any attempt was acknowledged).
    if (stored.empty()) {
      EXPECT_EQ(t[6], "NULL");
    } else {
      EXPECT_EQ(std::stod(t[6]), stored.rbegin()->second.back().second);
    }
  }
  std::cout << "chaos: " << worker_kills << " worker kills, " << scheduler_restarts
            << " scheduler restarts, " << retried << " trials ran more than once\n";
  EXPECT_GE(retried, 1) << "no kill cut a running trial";

  // `sweep status` and `sweep trials` (from the last scheduler) agree with SQLite.
  CommandResult status = c.Sweep({"status", sweep, "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  nlohmann::json s = nlohmann::json::parse(status.out)["sweeps"][0];
  EXPECT_EQ(s["state"], db.Value("SELECT state FROM sweeps WHERE id='" + sweep + "'"));
  for (const char* state : {"queued", "running", "completed", "failed", "stopped",
                            "cancelled"}) {
    EXPECT_EQ(s[state].get<int>(),
              std::stoi(db.Value(absl::StrCat("SELECT COUNT(*) FROM trials WHERE sweep_id='",
                                              sweep, "' AND state='", state, "'"))))
        << state;
  }
  EXPECT_EQ(s["completed"], kTrials);
  CommandResult listed = c.Sweep({"trials", sweep, "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  std::map<std::string, std::string> cli, sql;
  for (const auto& t : nlohmann::json::parse(listed.out)) {
    cli[t["id"]] = absl::StrCat(t["state"].get<std::string>(), " ", t["attempt"].get<int>());
  }
  for (const auto& t : trials) sql[t[0]] = t[1] + " " + t[2];
  EXPECT_EQ(cli, sql);
}

}  // namespace
}  // namespace sweep::testing
