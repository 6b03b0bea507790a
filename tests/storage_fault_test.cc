// The scheduler's database stops taking writes (its files may not grow: RLIMIT_FSIZE
// set on the running daemon, as on a full disk) in the middle of a sweep: reads go
// on, writes are refused and retried, and once there is room again the sweep ends
// with every metric line stored exactly once.
#include <sys/resource.h>

#include <algorithm>
#include <filesystem>
#include <optional>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster.h"

namespace sweep::testing {
namespace {

constexpr int kLines = 30;

std::string TickerSpec() {
  return absl::StrCat(R"(
name: ticker
program: )", SourceDir(), R"(/tests/data/ticker.sh
command: ["/bin/sh", "${program}", "${args}"]
method: grid
parameters:
  lines: {value: )", kLines, R"(}
  every: {value: 0.1}
  seed: {values: [1, 2, 3, 4]}
)");
}

void SetFileSizeLimit(pid_t pid, rlim_t bytes) {
  rlimit r{};
  ASSERT_EQ(prlimit(pid, RLIMIT_FSIZE, nullptr, &r), 0);
  r.rlim_cur = bytes;
  ASSERT_EQ(prlimit(pid, RLIMIT_FSIZE, &r, nullptr), 0) << strerror(errno);
}

// A sweep of 4 ticker trials on a worker with 2 slots, a few metric lines stored.
class StorageFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    c.StartScheduler(/*lease_timeout=*/10, /*heartbeat=*/0.2);
    c.StartWorker(2);
    sweep = c.Submit(TickerSpec());
    db.emplace(c.db());
    count_sql = "SELECT COUNT(*) FROM metrics m JOIN trials t ON t.id = m.trial_id "
                "WHERE t.sweep_id='" + sweep + "'";
    ASSERT_TRUE(WaitFor([&] { return std::stoi(db->Value(count_sql)) >= 5; },
                        absl::Seconds(30)))
        << c.Logs();
  }

  // The sweep ends with every trial completed and every line of every trial stored
  // once: 4 x kLines rows, no (trial, step) twice.
  void ExpectEveryLineStoredOnce() {
    ASSERT_TRUE(c.WaitEnded(sweep, absl::Seconds(90))) << c.Logs();
    EXPECT_EQ(db->Value("SELECT group_concat(state) FROM trials WHERE sweep_id='" + sweep + "'"),
              "completed,completed,completed,completed")
        << c.Logs();
    EXPECT_EQ(db->Value(count_sql), absl::StrCat(4 * kLines));
    EXPECT_EQ(db->Value("SELECT COUNT(*) FROM (SELECT DISTINCT m.trial_id, m.step FROM metrics m "
                       "JOIN trials t ON t.id = m.trial_id WHERE t.sweep_id='" + sweep + "')"),
              absl::StrCat(4 * kLines));
  }

  // Metric lines the sweep's trials wrote to their files so far.
  int LinesWritten() {
    int n = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::recursive_directory_iterator(c.dir() / "runs", ec)) {
      if (e.path().filename() != "metrics.jsonl") continue;
      std::string text = ReadFile(e.path().string());
      n += std::count(text.begin(), text.end(), '\n');
    }
    return n;
  }

  Cluster c;
  std::optional<Db> db;  // opened once the scheduler made the file
  std::string sweep, count_sql;
};

TEST_F(StorageFaultTest, AFullDiskMidSweepLosesNothingAndReadsGoOn) {

  // No file of the scheduler may take a byte from here on (the WAL is reused from
  // its start after a checkpoint, so "no growth" would not be enough; its log file
  // cannot be written either, until the end).
  SetFileSizeLimit(c.scheduler_pid(), 1);
  // Once a write has failed, `sweep status` (a read, still served) says so.
  CommandResult status;
  ASSERT_TRUE(WaitFor(
      [&] {
        status = c.Sweep({"status", sweep});
        return status.out.find("cannot write its database") != std::string::npos;
      },
      absl::Seconds(60)))
      << status.out << status.err << c.Logs();
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out, ::testing::HasSubstr(sweep));
  std::string before = db->Value(count_sql);
  // The trials go on writing lines, which the worker keeps offering: none is stored.
  ASSERT_TRUE(WaitFor([&] { return LinesWritten() >= std::stoi(before) + 10; },
                      absl::Seconds(60)));
  status = c.Sweep({"status", sweep});
  EXPECT_THAT(status.out, ::testing::HasSubstr("cannot write its database"));
  EXPECT_EQ(db->Value(count_sql), before) << "nothing is written while the disk is full";

  SetFileSizeLimit(c.scheduler_pid(), RLIM_INFINITY);
  ExpectEveryLineStoredOnce();
  EXPECT_THAT(ReadFile(c.dir() / "scheduler.log"),
              ::testing::HasSubstr("the database takes writes again"))
      << "writes failed and then worked again";
}

TEST_F(StorageFaultTest, ADatabaseLockedByAnotherProcessDelaysWritesAndLosesNothing) {
  // Another process takes the write lock and keeps it until the test lets go, past
  // the scheduler's busy timeout (5 s): until the scheduler has said that a write
  // of its failed on the lock.
  std::string script = c.dir() / "lock.sql";
  std::string held = c.dir() / "lock-held";
  std::string let_go = c.dir() / "lock-let-go";
  std::string hold = c.dir() / "hold.sh";  // gives up after 300 s, should the test die
  WriteFile(hold, "i=0; while [ ! -e '" + let_go +
                      "' ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i + 1)); done\n");
  WriteFile(script, "BEGIN IMMEDIATE;\n.shell touch '" + held + "'\n.shell sh '" + hold +
                        "'\nCOMMIT;\n");
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", "sqlite3 '" + c.db() + "' < '" + script + "'"};
  auto locker = ChildProcess::Spawn(o);
  ASSERT_TRUE(locker.ok()) << locker.status();
  ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(held); }, absl::Seconds(60)));
  std::string before = db->Value(count_sql);
  ASSERT_TRUE(WaitFor(
      [&] {
        return ReadFile(c.dir() / "scheduler.log").find("database is locked") !=
               std::string::npos;
      },
      absl::Seconds(120)))
      << c.Logs();
  EXPECT_EQ(db->Value(count_sql), before) << "nobody writes while the lock is held";
  CommandResult status = c.Sweep({"status", sweep});
  EXPECT_EQ(status.exit_code, 0) << status.err;  // reads are served meanwhile
  WriteFile(let_go, "");
  ASSERT_TRUE(locker->Wait(absl::Seconds(60)));
  ExpectEveryLineStoredOnce();
}

}  // namespace
}  // namespace sweep::testing
