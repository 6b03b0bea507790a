#include "common/process.h"

#include <signal.h>
#include <unistd.h>

#include <optional>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing.h"

namespace sweep {
namespace {

using ::sweep::testing::ReadFile;
using ::sweep::testing::TempDir;
using ::sweep::testing::WaitFor;

bool Alive(pid_t pid) { return kill(pid, 0) == 0; }

TEST(ProcessTest, ReportsExitCodeAndCapturesOutputWithTheGivenEnvironment) {
  TempDir dir;
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", "echo out:$FOO; echo err >&2; exit 3"};
  o.env = {"FOO=bar", "PATH=/usr/bin:/bin"};
  o.stdout_path = dir / "out";
  o.stderr_path = dir / "err";
  auto child = ChildProcess::Spawn(o);
  ASSERT_TRUE(child.ok()) << child.status();
  auto st = child->Wait(absl::Seconds(10));
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

TEST(ProcessTest, StopEndsTheWholeProcessGroupGrandchildrenIncluded) {
  TempDir dir;
  SpawnOptions o;
  // The grandchild ignores SIGTERM: only SIGKILL after the grace ends it.
  o.argv = {"/bin/sh", "-c",
            "sh -c 'trap \"\" TERM; echo $$ > " + (dir / "gc") +
                "; while :; do sleep 0.05; done' & wait"};
  auto child = ChildProcess::Spawn(o);
  ASSERT_TRUE(child.ok());
  ASSERT_TRUE(WaitFor([&] { return !ReadFile(dir / "gc").empty(); }, absl::Seconds(10)));
  pid_t grandchild = std::stoi(ReadFile(dir / "gc"));
  ASSERT_TRUE(Alive(grandchild));
  ExitStatus st = child->Stop(absl::Milliseconds(200));
  EXPECT_NE(st.signal, 0);
  EXPECT_TRUE(WaitFor([&] { return !Alive(grandchild); }, absl::Seconds(5)));
}

TEST(ProcessTest, GrandchildLeftBehindByAnExitedChildIsKilled) {
  TempDir dir;
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", "sleep 30 & echo $! > " + (dir / "bg") + "; exit 0"};
  auto child = ChildProcess::Spawn(o);
  ASSERT_TRUE(child.ok());
  auto st = child->Wait(absl::Seconds(10));
  ASSERT_TRUE(st);
  EXPECT_TRUE(st->ok());
  pid_t bg = std::stoi(ReadFile(dir / "bg"));
  EXPECT_TRUE(WaitFor([&] { return !Alive(bg); }, absl::Seconds(5)));
}

TEST(ProcessTest, WaitTimesOutWhileTheChildRuns) {
  SpawnOptions o;
  o.argv = {"sleep", "5"};
  auto child = ChildProcess::Spawn(o);
  ASSERT_TRUE(child.ok());
  EXPECT_FALSE(child->Wait(absl::Milliseconds(50)));
  ExitStatus st = child->Stop(absl::Seconds(2));
  EXPECT_EQ(st.signal, SIGTERM);
  EXPECT_EQ(st.ToString(), "killed by SIGTERM");
}

// Starts `sh` with a grandchild (sleep) from a thread that then ends, as a worker
// that is SIGKILLed ends: the parent-death signal fires. Returns the grandchild's pid.
pid_t StartFromAThreadThatDies(const TempDir& dir, const std::string& guard,
                               std::optional<ChildProcess>* out) {
  std::string pidfile = dir / "grandchild.pid";
  std::thread([&] {
    SpawnOptions o;
    o.argv = {"/bin/sh", "-c", "sleep 300 & echo $! > " + pidfile + "; wait"};
    o.group_guard = guard;
    auto child = ChildProcess::Spawn(o);
    ASSERT_TRUE(child.ok()) << child.status();
    EXPECT_TRUE(WaitFor([&] { return !ReadFile(pidfile).empty(); }, absl::Seconds(10)));
    out->emplace(std::move(*child));
  }).join();
  return static_cast<pid_t>(std::atol(ReadFile(pidfile).c_str()));
}

TEST(ProcessTest, WithAGroupGuardTheWholeGroupDiesWithTheStartingThread) {
  std::string guard = testing::SweepBin().substr(0, testing::SweepBin().rfind('/') + 1) +
                      "sweep-group-guard";
  ASSERT_EQ(access(guard.c_str(), X_OK), 0) << guard;
  TempDir dir;
  std::optional<ChildProcess> child;
  pid_t grandchild = StartFromAThreadThatDies(dir, guard, &child);
  ASSERT_GT(grandchild, 1);
  EXPECT_TRUE(WaitFor([&] { return !Alive(grandchild); }, absl::Seconds(10)))
      << "the grandchild outlived the thread that started its parent";
  auto st = child->Wait(absl::Seconds(10));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->signal, SIGKILL);
}

TEST(ProcessTest, WithoutAGroupGuardOnlyTheChildDiesWithTheStartingThread) {
  TempDir dir;
  std::optional<ChildProcess> child;
  pid_t grandchild = StartFromAThreadThatDies(dir, "", &child);
  ASSERT_GT(grandchild, 1);
  // The child is killed (a zombie until reaped) but its own child lives on: what a
  // SIGKILLed worker without the guard leaves behind.
  auto zombie = [&] {
    std::string stat = ReadFile(absl::StrCat("/proc/", child->pid(), "/stat"));
    size_t paren = stat.rfind(')');
    return paren != std::string::npos && stat.size() > paren + 2 && stat[paren + 2] == 'Z';
  };
  ASSERT_TRUE(WaitFor(zombie, absl::Seconds(10)));
  EXPECT_TRUE(Alive(grandchild));
  ASSERT_TRUE(child->Wait(absl::Seconds(10)));  // reaping kills what is left of the group
  EXPECT_TRUE(WaitFor([&] { return !Alive(grandchild); }, absl::Seconds(10)));
}

}  // namespace
}  // namespace sweep
