// Child processes: start a program (argv, no shell) in its own process group, wait
// for it with a timeout, and stop its whole group.
//
// Used by the worker for trial processes and by `sweep run` / `sweep worker --gpus`
// for daemon processes. A child started with `die_with_parent` gets SIGKILL when the
// thread that started it dies (PR_SET_PDEATHSIG), so a SIGKILLed worker takes its
// trials with it; a GroupGuard (one sweep-group-guard process) also kills the
// processes those trials started.
//
// Thread safety: a ChildProcess is used by one thread at a time; Signal() may be
// called from any thread while another waits. GroupGuard is thread-safe.
#ifndef SWEEP_COMMON_PROCESS_H_
#define SWEEP_COMMON_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sweep {

class GroupGuard;

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH if it has no '/'
  // The complete environment as "KEY=VALUE" strings. Empty: inherit ours.
  std::vector<std::string> env;
  std::string cwd;          // empty: inherit
  std::string stdout_path;  // file to append stdout to; empty: inherit
  std::string stderr_path;  // file to append stderr to; empty: inherit
  bool new_process_group = true;
  bool die_with_parent = true;
  // With a group of its own: the guard that kills the group if this process dies
  // (die_with_parent kills only the child itself, not what it started). Not owned.
  GroupGuard* group_guard = nullptr;
  int stdin_fd = -1;  // the child's stdin; -1: /dev/null
};

struct ExitStatus {
  int exit_code = 0;  // valid when signal == 0
  int signal = 0;     // the signal that ended the process, or 0
  bool ok() const { return signal == 0 && exit_code == 0; }
  std::string ToString() const;  // "exit code 3", "killed by SIGKILL"
};

// One sweep-group-guard process (common/group_guard.cc) for this process: it kills
// the process groups registered with it when this process ends, however it ends
// (SIGKILL included), so that nothing a trial started outlives its worker.
class GroupGuard {
 public:
  // Starts the guard at `path` (GroupGuardPath()). Errors as ChildProcess::Spawn.
  static absl::StatusOr<std::unique_ptr<GroupGuard>> Start(const std::string& path);
  ~GroupGuard();  // closes the pipe: the guard kills what is still registered, exits
  void Add(pid_t pgid);
  void Remove(pid_t pgid);

 private:
  GroupGuard(pid_t pid, int fd) : pid_(pid), fd_(fd) {}
  void Send(char op, pid_t pgid);
  pid_t pid_;
  int fd_;
};

class ChildProcess {
 public:
  // Starts the program. Returns InvalidArgument for an empty argv, NotFound when the
  // program cannot be found or executed (the message names it and says why), and
  // Internal when fork or a file fails.
  static absl::StatusOr<ChildProcess> Spawn(const SpawnOptions& options);

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // Kills the process group and reaps the child if it is still running.
  ~ChildProcess();

  pid_t pid() const { return pid_; }

  // Waits up to `timeout` for the child to exit. Returns its status once it has
  // exited (then, and on every later call), nullopt while it still runs. When the
  // child exits, whatever is left of its process group is killed before the child
  // is reaped, so no grandchild outlives it.
  std::optional<ExitStatus> Wait(absl::Duration timeout);

  // Sends `sig` to the child's process group (to the child alone when it has no
  // group of its own). No-op once the child has been reaped.
  void Signal(int sig);

  // SIGTERM to the group, then SIGKILL after `grace`; waits until the child is gone.
  // Returns its exit status.
  ExitStatus Stop(absl::Duration grace);

 private:
  friend class GroupGuard;  // starts its guard process as a ChildProcess
  ChildProcess(pid_t pid, int pidfd, bool own_group)
      : pid_(pid), pidfd_(pidfd), own_group_(own_group) {}
  void Release();

  GroupGuard* guard_ = nullptr;  // told before the child is reaped
  pid_t pid_ = -1;
  int pidfd_ = -1;
  bool own_group_ = true;
  std::optional<ExitStatus> status_;
};

// Returns the path of the running executable (/proc/self/exe resolved).
std::string SelfExecutable();

// sweep-group-guard next to the running executable, or "" when it is not there.
std::string GroupGuardPath();

}  // namespace sweep

#endif  // SWEEP_COMMON_PROCESS_H_
