// Logging set-up for the daemons and the CLI (spdlog).
//
// Daemons log to stderr with a timestamp and their role; the CLI logs only warnings
// and errors so that its stdout stays clean for scripts. Call once from main().
#ifndef SWEEP_COMMON_LOGGING_H_
#define SWEEP_COMMON_LOGGING_H_

#include <string_view>

namespace sweep {

// Sets the default logger's pattern and level. `role` shows in every line
// ("scheduler", "worker gpu0"). `level` is a spdlog level name ("info", "debug").
void InitLogging(std::string_view role, std::string_view level);

}  // namespace sweep

#endif  // SWEEP_COMMON_LOGGING_H_
