// sweep-bench-sleep --d=SECONDS: the makespan benchmark's trial. Sleeps and exits; a
// tiny binary, so that its own start-up (unlike sh + sleep's) stays far below the 2%
// the benchmark is after.
#include <time.h>

#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
  double d = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--d=", 4) == 0) d = std::strtod(argv[i] + 4, nullptr);
  }
  timespec ts{static_cast<time_t>(d), static_cast<long>((d - static_cast<time_t>(d)) * 1e9)};
  while (nanosleep(&ts, &ts) != 0) {
  }
  return 0;
}
