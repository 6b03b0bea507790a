// sweep-group-guard: kills the process groups it was told about once the process that
// started it is gone.
//
// A trial's main process dies with its worker (PR_SET_PDEATHSIG), but processes it
// started itself would live on after a SIGKILLed worker and could run beside the
// trial's next attempt. One guard runs beside each worker process, in a process
// group of its own, and reads lines from stdin, a pipe whose other end only the
// worker holds: "+PGID" when a trial's group starts, "-PGID" before the worker reaps
// the trial (so a group id is never used after it may have been reused). When the
// pipe reaches end of file (the worker exited or was killed), the guard sends
// SIGKILL to every group still listed and exits.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <set>
#include <string>

int main() {
  signal(SIGINT, SIG_IGN);  // a terminal's Ctrl-C is for the worker, not for us
  signal(SIGTERM, SIG_IGN);
  std::set<pid_t> groups;
  std::string line;
  char buf[4096];
  while (true) {
    ssize_t n = read(0, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the worker is gone (or stdin is unusable: act as if it were)
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] != '\n') {
        line.push_back(buf[i]);
        continue;
      }
      pid_t pgid = line.size() > 1 ? static_cast<pid_t>(std::atol(line.c_str() + 1)) : 0;
      if (pgid > 1 && line[0] == '+') groups.insert(pgid);
      if (pgid > 1 && line[0] == '-') groups.erase(pgid);
      line.clear();
    }
  }
  for (pid_t pgid : groups) kill(-pgid, SIGKILL);
  return 0;
}
