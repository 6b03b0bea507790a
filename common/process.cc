#include "common/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <utility>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace sweep {
namespace {

int PidfdOpen(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
  errno = ENOSYS;
  return -1;
#endif
}

std::vector<char*> CStrings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const std::string& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// Runs in the child, which shares our memory until it execs (CLONE_VM |
// CLONE_VFORK): only async-signal-safe calls, no allocation. On failure the child stores
// errno and a step number in err[0] and err[1] (the parent's memory, read once clone()
// returns) and exits 127.
[[noreturn]] void ChildAfterFork(const SpawnOptions& o, char** argv, char** envp,
                                 pid_t parent, int* err) {
  int step = 0;
  auto fail = [&](int s) {
    err[0] = errno;
    err[1] = s;
    _exit(127);
  };
  if (o.new_process_group && setpgid(0, 0) != 0) fail(step = 1);
  if (o.die_with_parent) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(step = 2);
    if (getppid() != parent) _exit(127);  // the parent died before prctl
  }
  // Undo signal state a daemon may have set up.
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  signal(SIGPIPE, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  if (!o.stdout_path.empty()) {
    int fd = open(o.stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0 || dup2(fd, 1) < 0) fail(step = 3);
    close(fd);
  }
  if (!o.stderr_path.empty()) {
    int fd = open(o.stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0 || dup2(fd, 2) < 0) fail(step = 4);
    close(fd);
  }
  if (o.stdin_fd == 0) {
    if (fcntl(0, F_SETFD, 0) != 0) fail(step = 3);  // dup2(0, 0) would keep CLOEXEC
  } else if (o.stdin_fd > 0) {
    if (dup2(o.stdin_fd, 0) < 0) fail(step = 3);
  } else if (int devnull = open("/dev/null", O_RDONLY); devnull >= 0) {
    dup2(devnull, 0);
    close(devnull);
  }
  if (!o.cwd.empty() && chdir(o.cwd.c_str()) != 0) fail(step = 5);
  execvpe(argv[0], argv, envp);
  fail(step = 6);
  _exit(127);
}

}  // namespace

std::string ExitStatus::ToString() const {
  if (signal != 0) {
    const char* name = sigabbrev_np(signal);
    return absl::StrCat("killed by SIG", name ? name : absl::StrCat(signal));
  }
  return absl::StrCat("exit code ", exit_code);
}

absl::StatusOr<ChildProcess> ChildProcess::Spawn(const SpawnOptions& o) {
  if (o.argv.empty() || o.argv[0].empty()) {
    return absl::InvalidArgumentError("cannot start a process: the command is empty");
  }
  std::vector<char*> argv = CStrings(o.argv);
  std::vector<char*> envp;
  if (o.env.empty()) {
    for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
    envp.push_back(nullptr);
  } else {
    envp = CStrings(o.env);
  }
  pid_t parent = getpid();
  // clone(CLONE_VM | CLONE_VFORK), as posix_spawn does, instead of fork(): no
  // page-table copy and no copy-on-write faults in a big multi-threaded parent (fork
  // was the largest single cost of dispatch, docs/BENCHMARKS.md). The child runs on
  // its own stack with every signal blocked until it has reset the handlers, then
  // execs; this thread resumes once the child exec'd or exited, so `payload` then
  // holds the child's error, if any (as posix_spawn does; no pipe to wait on).
  int payload[2] = {0, 0};
  struct Args {
    const SpawnOptions* o; char** argv; char** envp; pid_t parent; int* err;
  } args{&o, argv.data(), envp.data(), parent, payload};
  constexpr size_t kStack = 256 * 1024;
  void* stack = mmap(nullptr, kStack, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) {
    return absl::InternalError(absl::StrCat("mmap: ", strerror(errno)));
  }
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = clone(
      [](void* p) -> int {
        Args* a = static_cast<Args*>(p);
        // Handlers are the parent's code: reset them before any signal is let in.
        for (int sig = 1; sig < NSIG; ++sig) {
          struct sigaction sa {};
          if (sigaction(sig, nullptr, &sa) == 0 && sa.sa_handler != SIG_IGN &&
              sa.sa_handler != SIG_DFL) {
            sa.sa_handler = SIG_DFL;
            sa.sa_flags = 0;
            sigaction(sig, &sa, nullptr);
          }
        }
        ChildAfterFork(*a->o, a->argv, a->envp, a->parent, a->err);
      },
      static_cast<char*>(stack) + kStack, CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
  int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  munmap(stack, kStack);
  if (pid < 0) {
    return absl::InternalError(absl::StrCat("clone: ", strerror(clone_errno)));
  }
  // Set the group from the parent too, so that signalling the group right after
  // Spawn returns cannot race the child's own setpgid.
  if (o.new_process_group) setpgid(pid, pid);
  if (payload[1] != 0) {
    int status;
    waitpid(pid, &status, 0);
    static const char* kSteps[] = {"",           "setpgid", "prctl",
                                   "open stdout", "open stderr", "chdir", "exec"};
    std::string what = payload[1] == 5 ? absl::StrCat("cannot enter ", o.cwd)
                       : payload[1] == 3 ? absl::StrCat("cannot open ", o.stdout_path)
                       : payload[1] == 4 ? absl::StrCat("cannot open ", o.stderr_path)
                                         : std::string(kSteps[payload[1] % 7]);
    if (payload[1] == 6) {
      return absl::NotFoundError(absl::StrCat("cannot run '", o.argv[0],
                                              "': ", strerror(payload[0])));
    }
    return absl::InternalError(absl::StrCat("starting '", o.argv[0], "': ", what,
                                            ": ", strerror(payload[0])));
  }
  ChildProcess child(pid, PidfdOpen(pid), o.new_process_group);
  if (o.group_guard != nullptr && o.new_process_group) {
    child.guard_ = o.group_guard;
    child.guard_->Add(pid);
  }
  return child;
}

absl::StatusOr<std::unique_ptr<GroupGuard>> GroupGuard::Start(const std::string& path) {
  // Should the guard die first, a write to its pipe must fail, not kill this process.
  signal(SIGPIPE, SIG_IGN);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  }
  SpawnOptions o;
  o.argv = {path};
  o.env = {"PATH=/usr/bin:/bin"};
  o.stdin_fd = fds[0];
  // It must outlive us to do its work: no parent-death signal. It leaves when the
  // pipe's write end, which only this process holds, closes.
  o.die_with_parent = false;
  absl::StatusOr<ChildProcess> guard = ChildProcess::Spawn(o);
  close(fds[0]);
  if (!guard.ok()) {
    close(fds[1]);
    return guard.status();
  }
  pid_t pid = std::exchange(guard->pid_, -1);  // not stopped when `guard` goes
  if (guard->pidfd_ >= 0) close(std::exchange(guard->pidfd_, -1));
  return std::unique_ptr<GroupGuard>(new GroupGuard(pid, fds[1]));
}

GroupGuard::~GroupGuard() {
  close(fd_);
  while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
}

void GroupGuard::Add(pid_t pgid) { Send('+', pgid); }
void GroupGuard::Remove(pid_t pgid) { Send('-', pgid); }

void GroupGuard::Send(char op, pid_t pgid) {
  // One write of a short line: atomic on a pipe, so slots may call this at once.
  std::string line = absl::StrCat(std::string(1, op), pgid, "\n");
  (void)!write(fd_, line.data(), line.size());
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : guard_(std::exchange(other.guard_, nullptr)),
      pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::exchange(other.pidfd_, -1)),
      own_group_(other.own_group_),
      status_(std::move(other.status_)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    Release();
    guard_ = std::exchange(other.guard_, nullptr);
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::exchange(other.pidfd_, -1);
    own_group_ = other.own_group_;
    status_ = std::move(other.status_);
  }
  return *this;
}

ChildProcess::~ChildProcess() { Release(); }

void ChildProcess::Release() {
  if (pid_ > 0 && !status_) Stop(absl::ZeroDuration());
  if (pidfd_ >= 0) close(pidfd_);
  pidfd_ = -1;
  pid_ = -1;
}

std::optional<ExitStatus> ChildProcess::Wait(absl::Duration timeout) {
  if (status_ || pid_ <= 0) return status_;
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    siginfo_t info{};
    // Peek without reaping: the zombie keeps the group id reserved while we kill
    // what is left of the group.
    int rc = waitid(P_PID, pid_, &info, WEXITED | WNOHANG | WNOWAIT);
    if (rc == 0 && info.si_pid == pid_) {
      if (own_group_) kill(-pid_, SIGKILL);
      // Before the reap, while the zombie still holds the group id.
      if (guard_ != nullptr) guard_->Remove(pid_);
      int status = 0;
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      ExitStatus es;
      if (WIFSIGNALED(status)) {
        es.signal = WTERMSIG(status);
      } else {
        es.exit_code = WEXITSTATUS(status);
      }
      status_ = es;
      return status_;
    }
    if (rc < 0 && errno == ECHILD) {  // reaped elsewhere; nothing more to learn
      status_ = ExitStatus{.exit_code = -1};
      return status_;
    }
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return std::nullopt;
    int ms = static_cast<int>(
        std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, INT_MAX));
    if (pidfd_ >= 0) {
      pollfd p{.fd = pidfd_, .events = POLLIN, .revents = 0};
      poll(&p, 1, ms);
    } else {
      usleep(std::min(ms, 20) * 1000);
    }
  }
}

void ChildProcess::Signal(int sig) {
  if (pid_ <= 0 || status_) return;
  if (own_group_) {
    kill(-pid_, sig);
  } else {
    kill(pid_, sig);
  }
}

ExitStatus ChildProcess::Stop(absl::Duration grace) {
  if (status_) return *status_;
  if (grace > absl::ZeroDuration()) {
    Signal(SIGTERM);
    if (auto st = Wait(grace)) return *st;
  }
  Signal(SIGKILL);
  while (!Wait(absl::Seconds(1))) Signal(SIGKILL);
  return *status_;
}

std::string GroupGuardPath() {
  std::string self = SelfExecutable();
  std::string path = self.substr(0, self.rfind('/') + 1) + "sweep-group-guard";
  return access(path.c_str(), X_OK) == 0 ? path : "";
}

std::string SelfExecutable() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "sweep";
  return std::string(buf, n);
}

}  // namespace sweep
