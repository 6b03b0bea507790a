// `sweep slurm workers`: the sbatch script it renders and the options it refuses,
// submission through a stand-in sbatch, and a real single-node Slurm (Debian's
// slurm-wlm and munge, started by the test in a temporary directory) that runs a
// sweep through the workers job, drains it on `scancel --batch --signal=TERM` and
// before its time limit, and stops it on a plain `scancel`.
//
// The real-Slurm test needs root; where Slurm cannot start it skips and says why
// (with SWEEP_REQUIRE_SLURM=1 it fails instead).
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <functional>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "cli/slurm.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/slurm/local_slurm.h"

namespace sweep::testing {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

SlurmWorkersOptions CpuNodes() {
  SlurmWorkersOptions o;
  o.nodes = 3;
  o.cpus_per_node = 8;
  o.scheduler.address = "head:50051";
  o.scheduler.token_file = "/shared/sweep.token";
  o.sweep_bin = "/opt/sweep/bin/sweep";
  o.work_dir = "/shared/runs";
  o.output = "/shared/logs/sweep-workers-%j.out";
  return o;
}

std::string Render(const SlurmWorkersOptions& o) {
  absl::StatusOr<std::string> s = RenderSlurmWorkersScript(o);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.value_or("");
}

// The #SBATCH lines of a script, in order.
std::vector<std::string> SbatchLines(const std::string& script) {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(script, '\n')) {
    if (absl::StartsWith(line, "#SBATCH ")) out.emplace_back(line.substr(8));
  }
  return out;
}

// The argv the script starts the worker with, as bash expands it: the script's
// variable assignments run, then print "$sweep_bin" "${worker_args[@]}".
std::vector<std::string> WorkerArgv(const std::string& script, const TempDir& dir) {
  size_t begin = script.find("sweep_bin=");
  size_t end = script.find("\n)\n", begin);
  EXPECT_NE(begin, std::string::npos);
  EXPECT_NE(end, std::string::npos);
  std::string code = script.substr(begin, end + 3 - begin) +
                     "printf '%s\\0' \"$sweep_bin\" \"${worker_args[@]}\"\n";
  CommandResult r = RunCommand({"bash", "-c", code}, dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> argv = absl::StrSplit(r.out, '\0');
  if (!argv.empty() && argv.back().empty()) argv.pop_back();
  return argv;
}

TEST(SlurmScriptTest, CpuNodesAskForTheirCpusAndRunThatManyCpuSlots) {
  SlurmWorkersOptions o = CpuNodes();
  o.partition = "cpu";
  o.time = "4:00:00";
  std::string script = Render(o);
  EXPECT_THAT(SbatchLines(script),
              ElementsAre("--job-name=sweep-workers", "--nodes=3", "--ntasks-per-node=1",
                          "--cpus-per-task=8", "--partition=cpu", "--time=4:00:00",
                          "--output=/shared/logs/sweep-workers-%j.out",
                          "--signal=B:TERM@100"));
  TempDir dir;
  EXPECT_THAT(WorkerArgv(script, dir),
              ElementsAre("/opt/sweep/bin/sweep", "--scheduler", "head:50051", "--token-file",
                          "/shared/sweep.token", "--work-dir", "/shared/runs",
                          "--drain-timeout", "60", "--kill-grace", "10", "--cpus", "8"));
  EXPECT_THAT(script, HasSubstr("\"$sweep_bin\" worker \"${worker_args[@]}\""));
  CommandResult syntax = RunCommand({"bash", "-n", "-c", script}, dir);
  EXPECT_EQ(syntax.exit_code, 0) << syntax.err;
}

TEST(SlurmScriptTest, GpuNodesAskForGpusAndRunOneSlotPerAllocatedGpu) {
  SlurmWorkersOptions o = CpuNodes();
  o.gpus_per_node = 4;
  o.cpus_per_node = 0;
  o.scheduler.tls_ca = "/shared/ca.pem";
  o.account = "lab-ml";
  o.sbatch_options = {"--constraint=h200", "--exclusive"};
  std::string script = Render(o);
  std::vector<std::string> lines = SbatchLines(script);
  EXPECT_THAT(lines, ::testing::Contains("--gpus-per-node=4"));
  EXPECT_THAT(lines, ::testing::Contains("--account=lab-ml"));
  EXPECT_THAT(lines, Not(::testing::Contains(HasSubstr("--cpus-per-task"))));
  // Extra options come last, so they can refine what sweep asked for.
  EXPECT_THAT(std::vector<std::string>(lines.end() - 2, lines.end()),
              ElementsAre("--constraint=h200", "--exclusive"));
  TempDir dir;
  std::vector<std::string> argv = WorkerArgv(script, dir);
  EXPECT_THAT(std::vector<std::string>(argv.end() - 2, argv.end()), ElementsAre("--gpus", "all"));
  EXPECT_THAT(argv, ::testing::Contains("/shared/ca.pem"));
}

TEST(SlurmScriptTest, ValuesReachTheWorkerVerbatimWithoutRunningAnything) {
  TempDir dir;
  std::string marker = dir / "pwned";
  SlurmWorkersOptions o = CpuNodes();
  o.work_dir = "/data/it's $(touch " + marker + ") `touch " + marker + "`; touch " + marker;
  o.scheduler.token_file = "/shared/a b/\"tok\"$HOME";
  o.sweep_bin = "/opt/my sweep/sweep";
  std::vector<std::string> argv = WorkerArgv(Render(o), dir);
  ASSERT_GE(argv.size(), 7u);
  EXPECT_EQ(argv[0], o.sweep_bin);
  EXPECT_EQ(argv[4], o.scheduler.token_file);
  EXPECT_EQ(argv[6], o.work_dir);
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST(SlurmScriptTest, WorkersDrainBeforeTheTimeLimitWithTimeToSpare) {
  SlurmWorkersOptions o = CpuNodes();
  o.drain_timeout = 300;
  o.kill_grace = 20;
  EXPECT_EQ(DrainBeforeSeconds(o), 350);
  EXPECT_THAT(Render(o), HasSubstr("\n#SBATCH --signal=B:TERM@350\n"));
  o.drain_before = 900;
  EXPECT_THAT(Render(o), HasSubstr("\n#SBATCH --signal=B:TERM@900\n"));
  // The drain goes to the batch shell, which signals each node's worker task alone.
  std::string script = Render(o);
  EXPECT_THAT(script, HasSubstr("trap drain TERM"));
  EXPECT_THAT(script, HasSubstr("scontrol listpids \"${SLURM_JOB_ID}.0\""));
  EXPECT_THAT(script, HasSubstr("srun --overlap"));
}

TEST(SlurmScriptTest, RefusesOptionsThatAreUnsafeOrCannotWork) {
  struct Case {
    std::string flag;
    std::function<void(SlurmWorkersOptions&)> set;
  };
  std::vector<Case> cases = {
      {"--gpus-per-node", [](auto& o) { o.cpus_per_node = 0; }},
      {"--nodes", [](auto& o) { o.nodes = 0; }},
      {"--partition", [](auto& o) { o.partition = "gpu; rm -rf ~"; }},
      {"--partition", [](auto& o) { o.partition = "gpu\n#SBATCH --uid=0"; }},
      {"--account", [](auto& o) { o.account = "lab ml"; }},
      {"--job-name", [](auto& o) { o.job_name = "a$(id)"; }},
      {"--time", [](auto& o) { o.time = "4h"; }},
      {"--time", [](auto& o) { o.time = "1"; }},  // 60 s: shorter than the drain warning
      {"--drain-before", [](auto& o) { o.drain_before = 60; }},  // < drain + grace
      {"--output", [](auto& o) { o.output = "/shared/my logs/%j.out"; }},
      {"--work-dir", [](auto& o) { o.work_dir = "/shared/runs\nrm -rf /"; }},
      {"--token-file", [](auto& o) { o.scheduler.token_file = "/a\rb"; }},
      {"--scheduler", [](auto& o) { o.scheduler.address = ""; }},
      {"--sbatch-option", [](auto& o) { o.sbatch_options = {"constraint=a100"}; }},
      {"--sbatch-option", [](auto& o) { o.sbatch_options = {"--exclusive\n--uid=0"}; }},
  };
  for (const Case& c : cases) {
    SlurmWorkersOptions o = CpuNodes();
    c.set(o);
    absl::Status st = ValidateSlurmWorkers(o);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << c.flag;
    EXPECT_THAT(std::string(st.message()), HasSubstr(c.flag));
    EXPECT_EQ(RenderSlurmWorkersScript(o).status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(SlurmTimeTest, ParsesEveryFormSlurmAccepts) {
  EXPECT_EQ(ParseSlurmTime("30").value(), 1800);
  EXPECT_EQ(ParseSlurmTime("30:15").value(), 1815);
  EXPECT_EQ(ParseSlurmTime("4:00:00").value(), 14400);
  EXPECT_EQ(ParseSlurmTime("2-12").value(), 2 * 86400 + 12 * 3600);
  EXPECT_EQ(ParseSlurmTime("1-00:30").value(), 86400 + 1800);
  EXPECT_EQ(ParseSlurmTime("1-00:00:05").value(), 86405);
  for (const char* bad : {"", "4h", "1:2:3:4", "-5", "1-", ":30", "1-2-3", "UNLIMITED", "1.5"}) {
    EXPECT_EQ(ParseSlurmTime(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(SlurmTimeTest, ShellQuoteKeepsEveryByteOfOneWord) {
  EXPECT_EQ(ShellQuote("plain"), "'plain'");
  EXPECT_EQ(ShellQuote("it's"), "'it'\\''s'");
  EXPECT_EQ(ShellQuote(""), "''");
}

// The command as users run it, with a stand-in sbatch on PATH.
class SlurmCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(dir_ / "sweep.token", "s3cret-token-value\n");
    std::filesystem::create_directories(dir_ / "bin");
  }
  // Puts an `sbatch` that runs `body` first on PATH.
  std::vector<std::string> FakeSbatch(const std::string& body) {
    std::string path = dir_ / "bin/sbatch";
    WriteFile(path, "#!/bin/sh\n" + body);
    chmod(path.c_str(), 0755);
    return {"PATH=" + (dir_ / "bin") + ":" + Env("PATH")};
  }
  std::vector<std::string> Args(std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"slurm", "workers", "--nodes", "2", "--gpus-per-node", "0",
                                  "--cpus-per-node", "3", "--scheduler", "head:50051",
                                  "--token-file", "sweep.token", "--work-dir", "runs"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  TempDir dir_;
};

TEST_F(SlurmCommandTest, DryRunPrintsTheScriptWithAbsolutePathsAndNoToken) {
  CommandResult r = RunSweep(Args({"--dry-run"}), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, AllOf(HasSubstr("#SBATCH --nodes=2\n"),
                           HasSubstr("#SBATCH --cpus-per-task=3\n"),
                           HasSubstr("#SBATCH --output=" + (dir_ / "sweep-workers-%j.out")),
                           Not(HasSubstr("s3cret"))));
  std::vector<std::string> argv = WorkerArgv(r.out, dir_);
  ASSERT_GE(argv.size(), 7u);
  EXPECT_EQ(argv[0], std::filesystem::canonical(SweepBin()).string());
  EXPECT_EQ(argv[4], dir_ / "sweep.token");
  EXPECT_EQ(argv[6], dir_ / "runs");
}

TEST_F(SlurmCommandTest, SubmitsWithSbatchAndPrintsTheJobIdAndHowToStopIt) {
  std::string copy = dir_ / "submitted.sh";
  auto env = FakeSbatch("echo \"$@\" > " + (dir_ / "args") + "\ncp \"$2\" " + copy +
                        "\necho '4242;cluster1'\n");
  CommandResult r = RunSweep(Args(), dir_, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "4242\n");
  EXPECT_THAT(r.err, HasSubstr("scancel --batch --signal=TERM 4242"));
  EXPECT_THAT(ReadFile(dir_ / "args"), HasSubstr("--parsable"));
  EXPECT_THAT(ReadFile(copy), AllOf(HasSubstr("#SBATCH --nodes=2\n"), Not(HasSubstr("s3cret"))));
}

TEST_F(SlurmCommandTest, SbatchErrorsAreShownWithExitCodeOne) {
  auto env = FakeSbatch(
      "echo 'sbatch: error: Batch job submission failed: Invalid partition name specified' >&2\n"
      "exit 1\n");
  CommandResult r = RunSweep(Args({"--partition", "nope"}), dir_, env);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("Invalid partition name specified"));
  EXPECT_EQ(r.out, "");

  r = RunSweep(Args(), dir_, {"PATH=" + (dir_ / "empty")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("sbatch"));
}

TEST_F(SlurmCommandTest, BadFlagsExitTwoBeforeAnythingIsSubmitted) {
  auto env = FakeSbatch("touch " + (dir_ / "submitted") + "\necho 1\n");
  for (const std::vector<std::string>& extra :
       std::vector<std::vector<std::string>>{{"--partition", "a b"},
                                             {"--time", "soon"},
                                             {"--token-file", "missing.token"},
                                             {"--cpus-per-node", "0"},
                                             {"--nodes", "0"},
                                             {"--no-such-flag"}}) {
    CommandResult r = RunSweep(Args(extra), dir_, env);
    EXPECT_EQ(r.exit_code, 2) << extra[0] << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr(extra[0]));
  }
  EXPECT_FALSE(std::filesystem::exists(dir_ / "submitted"));
}

// ---- a real Slurm ----------------------------------------------------------

class SlurmClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    start_ = absl::Now();
    std::string why = slurm_.Start();
    if (!why.empty()) {
      if (Env("SWEEP_REQUIRE_SLURM") == "1") FAIL() << "Slurm cannot start: " << why;
      GTEST_SKIP() << "Slurm cannot start here, skipping: " << why;
    }
    WriteFile(work_ / "sweep.token", "slurm-test-token\n");
    SpawnOptions o;
    o.argv = {SweepBin(), "scheduler", "--listen", "127.0.0.1:0", "--db", db(),
              "--http", "off", "--port-file", work_ / "port", "--token-file",
              work_ / "sweep.token", "--lease-timeout", "5", "--heartbeat-interval", "0.5"};
    o.stdout_path = work_ / "scheduler.log";
    o.stderr_path = work_ / "scheduler.log";
    auto child = ChildProcess::Spawn(o);
    ASSERT_TRUE(child.ok()) << child.status();
    scheduler_.emplace(std::move(*child));
    ASSERT_TRUE(WaitFor([&] { return !ReadFile(work_ / "port").empty(); }, absl::Seconds(20)))
        << ReadFile(work_ / "scheduler.log");
    address_ = std::string(absl::StripAsciiWhitespace(ReadFile(work_ / "port")));
  }

  void TearDown() override {
    scheduler_.reset();
    slurm_.Stop();
  }

  std::string db() const { return work_ / "sweeps.db"; }

  // Progress on stderr, with the seconds since the test began.
  void Note(const std::string& what) {
    std::cerr << absl::StrFormat("[%5.1f s] ", absl::ToDoubleSeconds(absl::Now() - start_))
              << what << "\n";
  }

  // `sweep slurm workers` for one node with 2 CPU slots; returns the job id.
  std::string SubmitWorkers(const std::string& time, int drain_before) {
    CommandResult r = RunSweep(
        {"slurm", "workers", "--nodes", "1", "--gpus-per-node", "0", "--cpus-per-node", "2",
         "--time", time, "--drain-before", absl::StrCat(drain_before), "--drain-timeout", "2",
         "--kill-grace", "1", "--job-name", "sweep-test", "--scheduler", address_,
         "--token-file", work_ / "sweep.token", "--work-dir", work_ / "runs", "--output",
         work_ / "slurm-%j.out"},
        work_, slurm_.Env());
    EXPECT_EQ(r.exit_code, 0) << r.err << slurm_.Logs();
    std::string job = std::string(absl::StripAsciiWhitespace(r.out));
    EXPECT_FALSE(job.empty());
    EXPECT_TRUE(std::all_of(job.begin(), job.end(), ::isdigit)) << job;
    EXPECT_THAT(r.err, HasSubstr("scancel --batch --signal=TERM " + job));
    return job;
  }

  // Polls `scontrol show job` (4 times a second: each poll is a process) until the
  // job is in `state`.
  bool WaitJob(const std::string& job, const std::string& state, absl::Duration timeout) {
    absl::Time deadline = absl::Now() + timeout;
    while (slurm_.JobField(job, "JobState") != state) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(250));
    }
    return true;
  }

  std::string SubmitSweep(const std::string& values, int sleep_s) {
    std::string file = work_ / absl::StrCat("spec", ++specs_, ".yaml");
    WriteFile(file, absl::StrCat("program: ", SourceDir(), "/tests/slurm/trial.sh\n",
                                 "command: [\"/bin/sh\", \"${program}\", \"${args}\"]\n",
                                 "method: grid\nparameters:\n  x: {values: ", values,
                                 "}\n  sleep: {value: ", sleep_s, "}\n"));
    CommandResult r = RunSweep(
        {"submit", file, "--scheduler", address_, "--token-file", work_ / "sweep.token"}, work_);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return std::string(absl::StripAsciiWhitespace(r.out));
  }

  std::string Count(const std::string& sweep, const std::string& where) {
    Db d(db());
    return d.Value("SELECT COUNT(*) FROM trials WHERE sweep_id='" + sweep + "' AND " + where);
  }

  // The seen.txt files the trials of `sweep` wrote (one per attempt directory;
  // the database learns a trial's directory only when it ends).
  std::vector<std::map<std::string, std::string>> Seen(const std::string& sweep) {
    std::vector<std::map<std::string, std::string>> out;
    std::error_code ec;
    for (const auto& e :
         std::filesystem::recursive_directory_iterator(work_ / ("runs/" + sweep), ec)) {
      if (e.path().filename() != "seen.txt") continue;
      std::map<std::string, std::string> kv;
      for (absl::string_view line : absl::StrSplit(ReadFile(e.path().string()), '\n')) {
        size_t eq = line.find('=');
        if (eq != absl::string_view::npos) {
          kv[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
        }
      }
      out.push_back(std::move(kv));
    }
    return out;
  }

  // The pids of the trials of `sweep` that ran in Slurm job `job`.
  std::vector<pid_t> TrialPids(const std::string& sweep, const std::string& job) {
    std::vector<pid_t> pids;
    for (auto& kv : Seen(sweep)) {
      if (kv["SLURM_JOB_ID"] == job && !kv["PID"].empty()) pids.push_back(std::stoi(kv["PID"]));
    }
    return pids;
  }

  // Waits until `n` trials of `sweep` run, all started in Slurm job `job`.
  bool WaitRunningIn(const std::string& sweep, size_t n, const std::string& job) {
    return WaitFor(
        [&] {
          return Count(sweep, "state='running'") == absl::StrCat(n) &&
                 TrialPids(sweep, job).size() == n;
        },
        absl::Seconds(30));
  }

  // The pids of the worker processes that registered so far.
  std::vector<pid_t> WorkerPids() {
    std::vector<pid_t> pids;
    Db d(db());
    for (const auto& row : d.Query("SELECT DISTINCT pid FROM workers")) {
      pids.push_back(std::stoi(row[0]));
    }
    return pids;
  }

  std::string Diagnostics(const std::string& job) {
    return absl::StrCat("--- slurm job log\n", ReadFile(work_ / ("slurm-" + job + ".out")),
                        "--- scheduler\n", ReadFile(work_ / "scheduler.log"), slurm_.Logs());
  }

  absl::Time start_;
  LocalSlurm slurm_;
  TempDir work_;
  std::optional<ChildProcess> scheduler_;
  std::string address_;
  int specs_ = 0;
};

bool Alive(pid_t pid) { return kill(pid, 0) == 0; }

TEST_F(SlurmClusterTest, WorkersJobRunsASweepAndDrainsOnCancelAndBeforeItsTimeLimit) {
  // 1. The workers job runs a sweep: every trial in that job, through the token.
  Note("Slurm is up");
  std::string job = SubmitWorkers("10", 30);
  ASSERT_TRUE(WaitJob(job, "RUNNING", absl::Seconds(30))) << Diagnostics(job);
  Note("workers job " + job + " runs");
  std::string sweep = SubmitSweep("[1, 2, 3, 4, 5, 6]", 0);
  ASSERT_TRUE(WaitFor([&] { return Count(sweep, "state='completed'") == "6"; },
                      absl::Seconds(40)))
      << Diagnostics(job);
  auto seen = Seen(sweep);
  EXPECT_EQ(seen.size(), 6u);
  for (auto& kv : seen) EXPECT_EQ(kv["SLURM_JOB_ID"], job);

  // 2. scancel --batch --signal=TERM drains: the running trials go back to the queue
  // (not failed), the workers exit and the job ends COMPLETED with exit code 0.
  std::string slow = SubmitSweep("[1, 2]", 300);
  ASSERT_TRUE(WaitRunningIn(slow, 2, job)) << Diagnostics(job);
  std::vector<pid_t> pids = TrialPids(slow, job);
  std::vector<pid_t> workers = WorkerPids();
  pids.insert(pids.end(), workers.begin(), workers.end());
  Note("sweep done; draining job " + job);
  CommandResult r = slurm_.Tool({"scancel", "--batch", "--signal=TERM", job});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(WaitJob(job, "COMPLETED", absl::Seconds(30))) << Diagnostics(job);
  EXPECT_EQ(slurm_.JobField(job, "ExitCode"), "0:0");
  EXPECT_EQ(Count(slow, "state='queued' AND message LIKE 'released by worker%'"), "2")
      << Diagnostics(job);
  EXPECT_THAT(ReadFile(work_ / ("slurm-" + job + ".out")),
              HasSubstr("draining the workers of job " + job));
  for (pid_t pid : pids) EXPECT_FALSE(Alive(pid)) << pid;

  // 3. A job that reaches its time limit drains before it: Slurm signals the batch
  // shell 50 s before the 1-minute limit, and the job ends COMPLETED, not TIMEOUT.
  // slurmctld looks at time limits every 30 s, so the signal comes at the first look
  // with 50 s or less left: 10 to 40 s after the job started.
  Note("job " + job + " drained");
  std::string timed = SubmitWorkers("1", 50);
  ASSERT_TRUE(WaitRunningIn(slow, 2, timed)) << Diagnostics(timed);
  Note("trials run in job " + timed + "; waiting for its time limit's warning");
  ASSERT_TRUE(WaitJob(timed, "COMPLETED", absl::Seconds(75))) << Diagnostics(timed);
  Note("job " + timed + " drained before its time limit");
  EXPECT_EQ(Count(slow, "state='queued' AND message LIKE 'released by worker%'"), "2")
      << Diagnostics(timed);
  EXPECT_EQ(Count(slow, "state IN ('failed', 'running')"), "0") << Diagnostics(timed);

  // 4. A plain scancel is Slurm's kill: every process of the job gets SIGTERM, then
  // SIGKILL. Nothing of the job is left, and no trial stays leased to it.
  std::string killed = SubmitWorkers("10", 30);
  ASSERT_TRUE(WaitRunningIn(slow, 2, killed)) << Diagnostics(killed);
  pids = TrialPids(slow, killed);
  workers = WorkerPids();
  pids.insert(pids.end(), workers.begin(), workers.end());
  Note("trials run in job " + killed + "; scancel");
  r = slurm_.Tool({"scancel", killed});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(WaitJob(killed, "CANCELLED", absl::Seconds(30))) << Diagnostics(killed);
  EXPECT_TRUE(WaitFor(
      [&] {
        return std::none_of(pids.begin(), pids.end(), Alive) &&
               Count(slow, "state='running'") == "0";
      },
      absl::Seconds(20)))
      << Diagnostics(killed);
  Note("job " + killed + " cancelled; nothing of it is left");
}

}  // namespace
}  // namespace sweep::testing
