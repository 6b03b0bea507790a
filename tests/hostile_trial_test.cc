// A trial is someone's code: trials that turn their metrics file into a FIFO, a
// link to /dev/zero or to a file of the worker's, that flood it, or that flood
// their stderr, each next to a well-behaved trial on the same worker (a real
// scheduler, a real `sweep worker --cpus 2`, real trial processes). The worker
// must stay responsive: the other trial completes, heartbeats go on, a cancel
// stops the hostile trial, SIGTERM drains the worker, its memory stays small, and
// the user sees what the worker did (`trial_notice` events, `sweep trials`).
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster.h"

namespace sweep::testing {
namespace {

using ::testing::HasSubstr;

// The most memory the process ever held (VmHWM), in MiB; -1 when unknown.
int64_t PeakMib(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view v(line);
    if (!absl::ConsumePrefix(&v, "VmHWM:")) continue;
    int64_t kib = 0;
    std::vector<std::string> parts = absl::StrSplit(absl::StripAsciiWhitespace(v), ' ');
    if (!parts.empty() && absl::SimpleAtoi(parts[0], &kib)) return kib / 1024;
  }
  return -1;
}

struct Hostile {
  std::string script;     // /bin/sh; `touch "$STARTED"` once it did its harm
  bool ends_itself;       // false: it runs until cancelled
  std::vector<std::string> worker_args;
};

class HostileTrialTest : public ::testing::Test {
 protected:
  // Runs a sweep of two trials on one worker with two CPU slots: `h`, and a good
  // trial that waits until `h` did its harm, then reports three points and ends.
  // Returns the sweep id; the hostile trial's id is in hostile_.
  std::string Run(const Hostile& h) {
    c_.StartScheduler();
    std::vector<std::string> args = {"--cpus", "2"};
    args.insert(args.end(), h.worker_args.begin(), h.worker_args.end());
    worker_ = c_.StartWorkerWith(args, {});
    const std::string dir = c_.dir().path().string();
    WriteFile(c_.dir() / "hostile.sh", absl::StrCat("STARTED='", dir, "/started'\n", h.script));
    WriteFile(c_.dir() / "good.sh",
              absl::StrCat("while [ ! -e '", dir, "/started' ]; do sleep 0.01; done\n",
                           "for i in 0 1 2; do echo \"{\\\"step\\\": $i, \\\"loss\\\": 0.5}\" "
                           ">> \"$SWEEP_METRICS_FILE\"; done\n"));
    WriteFile(c_.dir() / "run.sh", absl::StrCat("case \"$1\" in --role=hostile) exec /bin/sh '",
                                                dir, "/hostile.sh';; *) exec /bin/sh '", dir,
                                                "/good.sh';; esac\n"));
    std::string sweep = c_.Submit(absl::StrCat(
        "name: hostile\nmethod: grid\nmax_retries: 0\nprogram: run.sh\ncommand: [/bin/sh, '",
        dir, "/run.sh', '${args}']\nparameters:\n  role:\n    values: [hostile, good]\n"));
    Db db(c_.db());
    EXPECT_TRUE(WaitFor(
        [&] {
          return db.Value("SELECT state FROM trials WHERE sweep_id='" + sweep +
                          "' AND params LIKE '%good%'") == "completed";
        },
        absl::Seconds(60)))
        << "the good trial completes next to the hostile one\n"
        << c_.Logs();
    hostile_ = db.Value("SELECT id FROM trials WHERE sweep_id='" + sweep +
                        "' AND params LIKE '%hostile%'");
    EXPECT_EQ(db.Value("SELECT value FROM metrics m JOIN trials t ON t.id = m.trial_id WHERE "
                       "t.params LIKE '%good%' AND m.step = 2"),
              "0.5");
    if (!h.ends_itself) {
      // Heartbeats of the hostile trial's slot go on (its row is written again at
      // least every 10 s), and a cancel stops it.
      const std::string q = "SELECT last_heartbeat FROM workers WHERE trial_id='" + hostile_ + "'";
      std::string before = db.Value(q);
      EXPECT_FALSE(before.empty()) << "the hostile trial runs";
      EXPECT_TRUE(WaitFor([&] { return db.Value(q) != before; }, absl::Seconds(30)))
          << c_.Logs();
      EXPECT_EQ(c_.Sweep({"cancel", sweep}).exit_code, 0);
    }
    EXPECT_TRUE(c_.WaitEnded(sweep, absl::Seconds(60))) << c_.Logs();
    int64_t peak = PeakMib(c_.worker(worker_).pid());
    EXPECT_GT(peak, 0);
    EXPECT_LT(peak, 256) << "MiB of worker memory";
    // SIGTERM drains it: it exits 0.
    c_.worker(worker_).Signal(SIGTERM);
    std::optional<ExitStatus> exit = c_.worker(worker_).Wait(absl::Seconds(60));
    EXPECT_TRUE(exit && exit->ok()) << c_.Logs();
    return sweep;
  }

  std::string Notices() {
    Db db(c_.db());
    std::string out;
    for (const auto& row : db.Query("SELECT message FROM events WHERE kind='trial_notice' AND "
                                    "trial_id='" + hostile_ + "'")) {
      out += row[0] + "\n";
    }
    return out;
  }

  Cluster c_;
  size_t worker_ = 0;
  std::string hostile_;
};

TEST_F(HostileTrialTest, AMetricsFileTurnedIntoAFifoIsNeverOpenedForReading) {
  Run({.script = "rm -f \"$SWEEP_METRICS_FILE\"; mkfifo \"$SWEEP_METRICS_FILE\"\n"
                 "touch \"$STARTED\"; exec sleep 1000\n",
       .ends_itself = false});
  EXPECT_THAT(Notices(), HasSubstr("the metrics file is a FIFO"));
}

TEST_F(HostileTrialTest, AMetricsFileLinkedToDevZeroIsNotFollowed) {
  Run({.script = "ln -sf /dev/zero \"$SWEEP_METRICS_FILE\"\ntouch \"$STARTED\"; exec sleep 1000\n",
       .ends_itself = false});
  EXPECT_THAT(Notices(), HasSubstr("a symbolic link"));
}

TEST_F(HostileTrialTest, AMetricsFileLinkedToAFileOfTheWorkerLeaksNothing) {
  WriteFile(c_.dir() / "secret", "{\"leak\": 1}\n{\"leak\": 2}\n");
  std::string sweep = Run(
      {.script = absl::StrCat("ln -sf '", c_.dir() / "secret",
                              "' \"$SWEEP_METRICS_FILE\"\ntouch \"$STARTED\"; exec sleep 1000\n"),
       .ends_itself = false});
  Db db(c_.db());
  EXPECT_EQ(db.Value("SELECT COUNT(*) FROM metrics WHERE name = 'leak'"), "0");
  EXPECT_THAT(Notices(), HasSubstr("a symbolic link"));
  CommandResult trials = c_.Sweep({"trials", sweep});
  EXPECT_THAT(trials.out, HasSubstr(hostile_ + ": the metrics file is a symbolic link"));
}

TEST_F(HostileTrialTest, ATrialThatFloodsItsMetricsIsStoppedNotTheWorker) {
  Run({.script = "touch \"$STARTED\"; exec yes '{\"loss\": 1.5}' > \"$SWEEP_METRICS_FILE\"\n",
       .ends_itself = true,
       .worker_args = {"--max-metric-points-per-second", "2000", "--max-metrics-backlog-mib",
                       "1"}});
  Db db(c_.db());
  auto t = db.Query("SELECT state, failure_kind, message FROM trials WHERE id='" + hostile_ + "'");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0][0], "failed");
  EXPECT_EQ(t[0][1], "metrics_flood");
  EXPECT_THAT(t[0][2], HasSubstr("faster than they can be taken"));
  EXPECT_THAT(Notices(), HasSubstr("reading them is throttled"));
}

TEST_F(HostileTrialTest, AFloodOfStderrKeepsItsHeadAndTailWithinTheBound) {
  Run({.script = "echo FIRST-LINE >&2; touch \"$STARTED\"\n"
                 "yes 'the middle of a long log' | head -c 30000000 >&2\n"
                 "echo LAST-LINE >&2\n",
       .ends_itself = true,
       .worker_args = {"--max-log-mib", "1"}});
  Db db(c_.db());
  std::string dir = db.Value("SELECT trial_dir FROM trials WHERE id='" + hostile_ + "'");
  struct stat st {};
  ASSERT_EQ(stat((dir + "/stderr.log").c_str(), &st), 0);
  EXPECT_LE(st.st_size, 1 << 20);
  std::string log = ReadFile(dir + "/stderr.log");
  EXPECT_TRUE(absl::StartsWith(log, "FIRST-LINE\n"));
  EXPECT_TRUE(absl::EndsWith(log, "LAST-LINE\n"));
  EXPECT_THAT(log, HasSubstr("bytes of this log were cut here"));
  EXPECT_EQ(db.Value("SELECT state FROM trials WHERE id='" + hostile_ + "'"), "completed");
  EXPECT_LE(std::stoi(db.Value("SELECT LENGTH(stderr_tail) FROM trials WHERE id='" + hostile_ +
                               "'")),
            8192);
  EXPECT_THAT(Notices(), HasSubstr("stderr.log passed 1 MiB"));
}

}  // namespace
}  // namespace sweep::testing
