#include "common/ids.h"

#include "absl/strings/str_format.h"

namespace sweep {

std::string NewSweepId(absl::BitGenRef gen) {
  return absl::StrFormat("%08x", absl::Uniform<uint32_t>(gen));
}

std::string NewWorkerId(absl::BitGenRef gen, std::string_view host, std::string_view slot) {
  return absl::StrFormat("%s/%s-%016x", host, slot, absl::Uniform<uint64_t>(gen));
}

std::string TrialId(std::string_view sweep_id, int64_t index) {
  return absl::StrFormat("%s-%04d", sweep_id, index);
}

std::string SweepIdOfTrial(std::string_view trial_id) {
  size_t dash = trial_id.rfind('-');
  if (dash == std::string_view::npos || dash == 0) return "";
  return std::string(trial_id.substr(0, dash));
}

}  // namespace sweep
