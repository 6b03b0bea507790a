// `sweep status|trials|best|export|logs --db FILE`: reading a sweep from its
// database file, with no scheduler or beside a running one, with real processes.
#include <sys/stat.h>

#include <filesystem>

#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/cluster.h"

namespace sweep::testing {
namespace {

using ::testing::HasSubstr;

std::string GridSpec() {
  return absl::StrCat(R"(
name: read-db
program: )", TrialScript(), R"(
command: ["/bin/sh", "${program}", "${args}"]
method: grid
metric: {name: score, goal: maximize}
parameters:
  x: {values: [1, 2, 3]}
  y: {values: [1, 2]}
  sleep: {value: 0}
)");
}

// A trial that reports one point, then waits until the file `gate` exists in the
// directory it runs from (the test's), so the test decides when it ends.
std::string GatedSpec(const TempDir& dir) {
  std::string script = dir / "gated.sh";
  WriteFile(script, R"(#!/bin/sh
echo "{\"step\": 1, \"score\": 5}" >> "$SWEEP_METRICS_FILE"
echo "waiting for the gate"
while [ ! -e gate ]; do sleep 0.05; done
echo "{\"step\": 2, \"score\": 7}" >> "$SWEEP_METRICS_FILE"
)");
  return absl::StrCat(R"(
name: gated
program: )", script, R"(
command: ["/bin/sh", "${program}", "${args}"]
method: grid
metric: {name: score, goal: maximize}
parameters:
  x: {values: [1, 2]}
)");
}

// Every read command, as the CLI prints it: (arguments, output).
std::vector<std::pair<std::vector<std::string>, std::string>> ReadAll(
    const std::function<CommandResult(std::vector<std::string>)>& run, const std::string& sweep,
    const std::string& trial) {
  std::vector<std::vector<std::string>> commands = {
      {"trials", sweep},
      {"trials", sweep, "--json"},
      {"trials", sweep, "--sort", "score"},
      {"best", sweep},
      {"best", sweep, "--json"},
      {"export", sweep, "--format", "csv"},
      {"export", sweep, "--format", "json"},
      {"logs", trial},
      {"logs", trial, "--stderr"},
  };
  std::vector<std::pair<std::vector<std::string>, std::string>> out;
  for (const auto& args : commands) {
    CommandResult r = run(args);
    EXPECT_EQ(r.exit_code, 0) << absl::StrJoin(args, " ") << ": " << r.err;
    out.emplace_back(args, r.out);
  }
  return out;
}

std::string FileBytes(const std::string& path) { return ReadFile(path); }

TEST(ReadDbTest, AnEndedSweepReadsTheSameFromItsFileAsFromItsScheduler) {
  Cluster c;
  c.StartScheduler();
  c.StartWorker(2);
  std::string sweep = c.Submit(GridSpec());
  ASSERT_TRUE(c.WaitEnded(sweep, absl::Seconds(120))) << c.Logs();
  std::string trial = Db(c.db()).Value("SELECT id FROM trials WHERE sweep_id='" + sweep +
                                       "' ORDER BY idx LIMIT 1");
  auto through_scheduler = ReadAll([&](auto args) { return c.Sweep(args); }, sweep, trial);
  CommandResult status = c.Sweep({"status", sweep, "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;

  c.KillScheduler();
  std::string db = c.db();
  auto from_file = ReadAll(
      [&](std::vector<std::string> args) {
        args.insert(args.end(), {"--db", db});
        return RunSweep(args, c.dir());
      },
      sweep, trial);
  ASSERT_EQ(from_file.size(), through_scheduler.size());
  for (size_t i = 0; i < from_file.size(); ++i) {
    SCOPED_TRACE(absl::StrJoin(from_file[i].first, " "));
    if (from_file[i].first.back() != "--stderr") EXPECT_FALSE(from_file[i].second.empty());
    EXPECT_EQ(from_file[i].second, through_scheduler[i].second);
  }
  EXPECT_THAT(from_file[3].second, HasSubstr("score = 35"));  // best: x=3, y=2, step 3

  CommandResult offline = RunSweep({"status", sweep, "--json", "--db", db}, c.dir());
  ASSERT_EQ(offline.exit_code, 0) << offline.err;
  EXPECT_EQ(nlohmann::json::parse(offline.out)["sweeps"],
            nlohmann::json::parse(status.out)["sweeps"]);
  EXPECT_EQ(nlohmann::json::parse(offline.out)["sweeps"][0]["completed"], 6);
  CommandResult text = RunSweep({"status", "--db", db}, c.dir());
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr(sweep));
  EXPECT_THAT(text.out, HasSubstr("finished"));
}

TEST(ReadDbTest, ReadingTheFileChangesNothingInIt) {
  Cluster c;
  c.StartScheduler();
  c.StartWorker(1);
  std::string sweep = c.Submit(GridSpec());
  ASSERT_TRUE(c.WaitEnded(sweep, absl::Seconds(120))) << c.Logs();
  c.KillScheduler();
  {
    // What a stopped scheduler leaves: the WAL copied into the file.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(c.db().c_str(), &db), SQLITE_OK);
    sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
    sqlite3_close(db);
  }
  std::string before = FileBytes(c.db());
  for (const char* cmd : {"status", "trials", "best", "export"}) {
    std::vector<std::string> args = {cmd};
    if (std::string(cmd) != "status") args.push_back(sweep);
    args.insert(args.end(), {"--db", c.db()});
    CommandResult r = RunSweep(args, c.dir());
    EXPECT_EQ(r.exit_code, 0) << cmd << ": " << r.err;
  }
  EXPECT_EQ(FileBytes(c.db()), before);
}

TEST(ReadDbTest, ReadsARunningSweepBesideItsSchedulerWithoutHoldingItUp) {
  Cluster c;
  c.StartScheduler();
  c.StartWorker(1);
  std::string sweep = c.Submit(GatedSpec(c.dir()));
  Db db(c.db());
  ASSERT_TRUE(WaitFor(
      [&] {
        return db.Value("SELECT COUNT(*) FROM metrics m JOIN trials t ON t.id = m.trial_id "
                        "WHERE t.sweep_id='" + sweep + "'") == "1";
      },
      absl::Seconds(60)))
      << c.Logs();

  CommandResult status = RunSweep({"status", sweep, "--json", "--db", c.db()}, c.dir());
  ASSERT_EQ(status.exit_code, 0) << status.err;
  nlohmann::json s = nlohmann::json::parse(status.out);
  EXPECT_EQ(s["sweeps"][0]["state"], "running");
  EXPECT_EQ(s["sweeps"][0]["running"], 1);
  EXPECT_EQ(s["sweeps"][0]["queued"], 1);
  ASSERT_EQ(s["workers"].size(), 1u) << "the worker heartbeats, so its row is recent";
  EXPECT_EQ(s["workers"][0]["state"], "busy");
  CommandResult text = RunSweep({"status", sweep, "--db", c.db()}, c.dir());
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.err, HasSubstr("drop --db to ask it"));
  CommandResult trials = RunSweep({"trials", sweep, "--json", "--db", c.db()}, c.dir());
  ASSERT_EQ(trials.exit_code, 0) << trials.err;
  EXPECT_EQ(nlohmann::json::parse(trials.out)[0]["state"], "running");

  // The scheduler goes on: the trials end and the file then says so.
  WriteFile(c.dir() / "gate", "");
  ASSERT_TRUE(c.WaitEnded(sweep, absl::Seconds(60))) << c.Logs();
  CommandResult best = RunSweep({"best", sweep, "--json", "--db", c.db()}, c.dir());
  ASSERT_EQ(best.exit_code, 0) << best.err;
  EXPECT_EQ(nlohmann::json::parse(best.out)["final"], 7);
  CommandResult after = RunSweep({"status", sweep, "--json", "--db", c.db()}, c.dir());
  EXPECT_EQ(nlohmann::json::parse(after.out)["sweeps"][0]["state"], "finished");
  EXPECT_EQ(nlohmann::json::parse(after.out)["sweeps"][0]["completed"], 2);
}

TEST(ReadDbTest, BadFilesAndUnknownIdsAreBadInputThatNamesThem) {
  TempDir dir;
  CommandResult missing = RunSweep({"status", "--db", dir / "nope.db"}, dir);
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("nope.db"));
  EXPECT_FALSE(std::filesystem::exists(dir / "nope.db"));

  WriteFile(dir / "spec.yaml", "name: not a database\n");
  CommandResult text = RunSweep({"trials", "abcd1234", "--db", dir / "spec.yaml"}, dir);
  EXPECT_EQ(text.exit_code, 2);
  EXPECT_THAT(text.err, HasSubstr("not a sweep database"));

  Cluster c;
  c.StartScheduler();
  c.KillScheduler();  // an empty sweep database
  CommandResult unknown = RunSweep({"best", "ffff0000", "--db", c.db()}, c.dir());
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("ffff0000"));
  CommandResult logs = RunSweep({"logs", "ffff0000-0001", "--db", c.db()}, c.dir());
  EXPECT_EQ(logs.exit_code, 2);
  CommandResult none = RunSweep({"status", "--db", c.db()}, c.dir());
  EXPECT_EQ(none.exit_code, 0) << none.err;
  EXPECT_THAT(none.out, HasSubstr("no sweeps yet"));
}

}  // namespace
}  // namespace sweep::testing
