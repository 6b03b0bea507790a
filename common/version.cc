#include "common/version.h"

namespace sweep {

// SWEEP_VERSION is defined for this file only, by common/CMakeLists.txt.
std::string_view Version() { return SWEEP_VERSION; }

}  // namespace sweep
