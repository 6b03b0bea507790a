// The version of sweep, from the top-level CMakeLists.txt's project(VERSION): the one
// place it is written. `sweep --version` prints it and workers send it when they
// register. Thread-safe (a constant).
#ifndef SWEEP_COMMON_VERSION_H_
#define SWEEP_COMMON_VERSION_H_

#include <string_view>

namespace sweep {

// Returns sweep's version, "MAJOR.MINOR.PATCH" ("0.1.0").
std::string_view Version();

}  // namespace sweep

#endif  // SWEEP_COMMON_VERSION_H_
