// sweep-group-guard PGID PARENT: kills process group PGID when the thread that
// started it (the worker's, via ChildProcess with SpawnOptions::group_guard) dies.
//
// A trial's main process dies with its worker (PR_SET_PDEATHSIG), but processes it
// started itself would live on after a SIGKILLed worker and could run beside the
// trial's next attempt. This small process stands beside the trial, in a process
// group of its own, and turns the worker's death into SIGKILL for the trial's whole
// group. The worker kills it (before reaping the trial) when the trial ends, so the
// group id it holds is never reused while it lives; it also leaves on its own once
// the group is empty.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace {

pid_t group = 0;

void OnParentDeath(int) {
  kill(-group, SIGKILL);
  _exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  group = static_cast<pid_t>(std::atol(argv[1]));
  pid_t parent = static_cast<pid_t>(std::atol(argv[2]));
  if (group <= 1) return 2;
  // The parent-death signal (SIGUSR1) was set before exec and is blocked until the
  // handler is in place, so a death during start-up is not missed.
  struct sigaction sa {};
  sa.sa_handler = OnParentDeath;
  sigaction(SIGUSR1, &sa, nullptr);
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigprocmask(SIG_UNBLOCK, &usr1, nullptr);
  if (getppid() != parent) OnParentDeath(0);  // the whole process died already
  while (true) {
    sleep(1);
    if (kill(-group, 0) != 0 && errno == ESRCH) return 0;  // nothing left to guard
  }
}
