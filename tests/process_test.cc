#include "common/process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing.h"

namespace sweep {
namespace {

using ::sweep::testing::ReadFile;
using ::sweep::testing::TempDir;
using ::sweep::testing::WaitFor;

bool Alive(pid_t pid) { return kill(pid, 0) == 0; }

// Whether `pid` is gone or a zombie (dead, not yet reaped by whoever adopted it).
bool Dead(pid_t pid) {
  std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  size_t paren = stat.rfind(')');
  return stat.empty() || paren == std::string::npos || stat.substr(paren + 2, 1) == "Z";
}

TEST(ProcessTest, ReportsExitCodeAndCapturesOutputWithTheGivenEnvironment) {
  TempDir dir;
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", "echo out:$FOO; echo err >&2; exit 3"};
  o.env = {"FOO=bar", "PATH=/usr/bin:/bin"};
  o.stdout_path = dir / "out";
  o.stderr_path = dir / "err";
  auto child = ChildProcess::Spawn(o);
  ASSERT_TRUE(child.ok()) << child.status();
  auto st = child->Wait(absl::Seconds(60));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->exit_code, 3);
  EXPECT_EQ(st->ToString(), "exit code 3");
  EXPECT_EQ(ReadFile(dir / "out"), "out:bar\n");
  EXPECT_EQ(ReadFile(dir / "err"), "err\n");
}

TEST(ProcessTest, MissingProgramIsNotFoundWithItsName) {
  SpawnOptions o;
  o.argv = {"/no/such/program", "--x"};
  auto child = ChildProcess::Spawn(o);
  EXPECT_EQ(child.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(std::string(child.status().message()),
            "cannot run '/no/such/program': No such file or directory");
}

TEST(ProcessTest, AStepThatFailsBeforeExecNamesTheStepAndTheCause) {
  TempDir dir;
  SpawnOptions o;
  o.argv = {"/bin/true"};
  o.cwd = dir / "missing";
  auto child = ChildProcess::Spawn(o);
  EXPECT_EQ(child.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(std::string(child.status().message()),
            "starting '/bin/true': cannot enter " + o.cwd + ": No such file or directory");
  o.cwd.clear();
  o.stdout_path = dir / "missing/out.log";
  child = ChildProcess::Spawn(o);
  EXPECT_EQ(child.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(std::string(child.status().message()),
            "starting '/bin/true': cannot open " + o.stdout_path +
                ": No such file or directory");
  o.stdout_path.clear();
  child = ChildProcess::Spawn(o);  // no error is left over for the next spawn
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_EQ(child->Wait(absl::Seconds(60))->exit_code, 0);
}

TEST(ProcessTest, StopEndsTheWholeProcessGroupGrandchildrenIncluded) {
  TempDir dir;
  SpawnOptions o;
  // The grandchild ignores SIGTERM: only SIGKILL after the grace ends it.
  o.argv = {"/bin/sh", "-c",
            "sh -c 'trap \"\" TERM; echo $$ > " + (dir / "gc") +
                "; while :; do sleep 0.05; done' & wait"};
  auto child = ChildProcess::Spawn(o);
  ASSERT_TRUE(child.ok());
  ASSERT_TRUE(WaitFor([&] { return !ReadFile(dir / "gc").empty(); }, absl::Seconds(60)));
  pid_t grandchild = std::stoi(ReadFile(dir / "gc"));
  ASSERT_TRUE(Alive(grandchild));
  ExitStatus st = child->Stop(absl::Milliseconds(200));
  EXPECT_NE(st.signal, 0);
  EXPECT_TRUE(WaitFor([&] { return !Alive(grandchild); }, absl::Seconds(60)));
}

TEST(ProcessTest, GrandchildLeftBehindByAnExitedChildIsKilled) {
  TempDir dir;
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", "sleep 30 & echo $! > " + (dir / "bg") + "; exit 0"};
  auto child = ChildProcess::Spawn(o);
  ASSERT_TRUE(child.ok());
  auto st = child->Wait(absl::Seconds(60));
  ASSERT_TRUE(st);
  EXPECT_TRUE(st->ok());
  pid_t bg = std::stoi(ReadFile(dir / "bg"));
  EXPECT_TRUE(WaitFor([&] { return !Alive(bg); }, absl::Seconds(60)));
}

TEST(ProcessTest, WaitTimesOutWhileTheChildRuns) {
  SpawnOptions o;
  o.argv = {"sleep", "infinity"};  // ends only when stopped
  auto child = ChildProcess::Spawn(o);
  ASSERT_TRUE(child.ok());
  EXPECT_FALSE(child->Wait(absl::Milliseconds(50)));
  ExitStatus st = child->Stop(absl::Seconds(2));
  EXPECT_EQ(st.signal, SIGTERM);
  EXPECT_EQ(st.ToString(), "killed by SIGTERM");
}

// In a forked process that stands for a worker: starts `sh` with a grandchild (sleep)
// under `guard_path` (none when empty), then SIGKILLs itself. Returns the grandchild's
// pid once the "worker" is dead; the pid of the `sh` (the trial) is in dir/trial.pid.
pid_t GrandchildOfAKilledWorker(const TempDir& dir, const std::string& guard_path) {
  std::string pidfile = dir / "grandchild.pid";
  std::string trial_pidfile = dir / "trial.pid";
  pid_t worker = fork();
  if (worker == 0) {
    std::unique_ptr<GroupGuard> guard;
    if (!guard_path.empty()) {
      auto started = GroupGuard::Start(guard_path);
      if (!started.ok()) _exit(3);
      guard = std::move(*started);
    }
    SpawnOptions o;
    o.argv = {"/bin/sh", "-c", "echo $$ > " + trial_pidfile + "; sleep 300 & echo $! > " +
                                   pidfile + ".tmp; mv " + pidfile + ".tmp " + pidfile +
                                   "; wait"};
    o.group_guard = guard.get();
    auto child = ChildProcess::Spawn(o);
    if (!child.ok()) _exit(4);
    while (ReadFile(pidfile).empty()) usleep(10000);
    raise(SIGKILL);
  }
  int status = 0;
  waitpid(worker, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  return static_cast<pid_t>(std::atol(ReadFile(pidfile).c_str()));
}

TEST(ProcessTest, WithAGroupGuardNothingATrialStartedOutlivesAKilledWorker) {
  std::string guard = testing::SweepBin().substr(0, testing::SweepBin().rfind('/') + 1) +
                      "sweep-group-guard";
  ASSERT_EQ(access(guard.c_str(), X_OK), 0) << guard;
  TempDir dir;
  pid_t grandchild = GrandchildOfAKilledWorker(dir, guard);
  ASSERT_GT(grandchild, 1);
  EXPECT_TRUE(WaitFor([&] { return !Alive(grandchild); }, absl::Seconds(60)))
      << "the trial's child outlived its worker";
}

TEST(ProcessTest, WithoutAGroupGuardATrialsChildOutlivesAKilledWorker) {
  TempDir dir;
  pid_t grandchild = GrandchildOfAKilledWorker(dir, "");
  ASSERT_GT(grandchild, 1);
  // The trial's main process died with its parent (PR_SET_PDEATHSIG); its own child
  // did not: what the guard is for.
  pid_t trial = static_cast<pid_t>(std::atol(ReadFile(dir / "trial.pid").c_str()));
  ASSERT_GT(trial, 1);
  EXPECT_TRUE(WaitFor([&] { return Dead(trial); }, absl::Seconds(60)));
  EXPECT_TRUE(Alive(grandchild));
  kill(grandchild, SIGKILL);
}

}  // namespace
}  // namespace sweep
