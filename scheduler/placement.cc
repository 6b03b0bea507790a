#include "scheduler/placement.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace sweep {

GpuNeed NeedOf(const spec::Resources& r) {
  return GpuNeed{.gpus = r.gpus_per_trial,
                 .trials_per_gpu = r.trials_per_gpu,
                 .memory_mib = r.gpu_memory_mib};
}

int64_t HeadroomMib(int64_t gpu_memory_mib) {
  return std::max<int64_t>(256, gpu_memory_mib / 50);
}

std::string FormatMib(int64_t mib) {
  if (mib < 1024) return absl::StrCat(mib, " MiB");
  return absl::StrFormat("%.1f GiB", static_cast<double>(mib) / 1024);
}

void AddTrial(const GpuNeed& need, GpuLoad& g) {
  ++g.trials;
  g.reserved_mib += need.memory_mib;
  g.share_limit = std::min(g.share_limit, need.ShareLimit());
}

bool FitsEmpty(const GpuNeed& need, int64_t memory_mib) {
  return need.memory_mib == 0 || need.memory_mib + HeadroomMib(memory_mib) <= memory_mib;
}

bool FitsNow(const GpuNeed& need, const GpuLoad& g, std::string* why) {
  auto no = [why](std::string reason) {
    if (why) *why = std::move(reason);
    return false;
  };
  if (g.held) return no("held by a trial of several GPUs");
  if (!FitsEmpty(need, g.memory_mib)) {
    return no(absl::StrCat("needs ", FormatMib(need.memory_mib), " plus ",
                           FormatMib(HeadroomMib(g.memory_mib)), " headroom; the GPU has ",
                           FormatMib(g.memory_mib)));
  }
  if (need.gpus >= 2 && g.IsMig()) {
    return no("a MIG device cannot be one of a trial's several GPUs (a process sees one)");
  }
  if (need.gpus >= 2 && g.trials > 0) return no("a trial of several GPUs needs it empty");
  int limit = std::min(need.ShareLimit(), g.share_limit);
  if (g.trials + 1 > limit) {
    return no(absl::StrCat(g.trials, " trial", g.trials == 1 ? "" : "s",
                           " already run there (at most ", limit, " share a GPU)"));
  }
  if (need.memory_mib > 0 &&
      g.reserved_mib + need.memory_mib + HeadroomMib(g.memory_mib) > g.memory_mib) {
    return no(absl::StrCat("its trials hold ", FormatMib(g.reserved_mib), " of ",
                           FormatMib(g.memory_mib), "; ", FormatMib(need.memory_mib),
                           " more does not fit"));
  }
  return true;
}

std::optional<std::vector<size_t>> PickExtraGpus(const GpuNeed& need,
                                                 const std::vector<GpuLoad>& gpus,
                                                 size_t own) {
  std::vector<size_t> candidates;
  for (size_t i = 0; i < gpus.size(); ++i) {
    const GpuLoad& g = gpus[i];
    if (i == own || g.host != gpus[own].host || g.uuid == gpus[own].uuid || g.IsMig()) {
      continue;
    }
    if (g.Empty() && g.slots > 0 && FitsEmpty(need, g.memory_mib)) candidates.push_back(i);
  }
  if (static_cast<int>(candidates.size()) < need.gpus - 1) return std::nullopt;
  std::stable_sort(candidates.begin(), candidates.end(),
                   [&](size_t a, size_t b) { return gpus[a].index < gpus[b].index; });
  candidates.resize(need.gpus - 1);
  return candidates;
}

namespace {

// How many trials of `need` fit in `memory_mib` of which `reserved_mib` is taken.
int64_t ByMemory(const GpuNeed& need, int64_t memory_mib, int64_t reserved_mib) {
  if (need.memory_mib == 0) return std::numeric_limits<int>::max();
  int64_t room = memory_mib - HeadroomMib(memory_mib) - reserved_mib;
  return std::max<int64_t>(0, room / need.memory_mib);
}

}  // namespace

Capacity CountCapacity(const GpuNeed& need, const std::vector<GpuLoad>& gpus) {
  Capacity c;
  if (need.gpus >= 2) {
    std::map<std::string, std::pair<int, int>> per_host;  // usable GPUs, empty ones
    for (const GpuLoad& g : gpus) {
      if (g.slots == 0 || g.IsMig() || !FitsEmpty(need, g.memory_mib)) continue;
      ++per_host[g.host].first;
      per_host[g.host].second += g.Empty();
    }
    for (const auto& [host, n] : per_host) {
      c.total += n.first / need.gpus;
      c.free += n.second / need.gpus;
    }
    return c;
  }
  for (const GpuLoad& g : gpus) {
    if (g.slots == 0 || !FitsEmpty(need, g.memory_mib)) continue;
    int64_t total = std::min<int64_t>({g.slots, need.ShareLimit(), ByMemory(need, g.memory_mib, 0)});
    c.total += static_cast<int>(total);
    if (g.held) continue;
    int64_t free = std::min<int64_t>({g.slots - g.trials,
                                      std::min(need.ShareLimit(), g.share_limit) - g.trials,
                                      ByMemory(need, g.memory_mib, g.reserved_mib)});
    c.free += static_cast<int>(std::max<int64_t>(0, free));
  }
  return c;
}

std::string NeverPlaceable(const GpuNeed& need, const std::vector<GpuLoad>& gpus) {
  if (need.gpus == 0 || gpus.empty()) return "";
  std::map<std::string, int> fitting_per_host;
  const GpuLoad* largest = nullptr;
  bool any_mig = false;
  for (const GpuLoad& g : gpus) {
    any_mig |= g.IsMig();
    if (need.gpus >= 2 && g.IsMig()) continue;
    if (FitsEmpty(need, g.memory_mib)) ++fitting_per_host[g.host];
    if (largest == nullptr || g.memory_mib > largest->memory_mib) largest = &g;
  }
  for (const auto& [host, n] : fitting_per_host) {
    if (n >= need.gpus) return "";
  }
  if (largest == nullptr) {
    return absl::StrCat("resources.gpus_per_trial: a trial needs ", need.gpus,
                        " GPUs on one node, but every connected GPU is a MIG device, and a "
                        "process sees at most one");
  }
  if (!FitsEmpty(need, largest->memory_mib)) {
    return absl::StrCat("resources.gpu_memory: a trial needs ", FormatMib(need.memory_mib),
                        " of GPU memory (plus ", FormatMib(HeadroomMib(largest->memory_mib)),
                        " headroom), but the largest connected GPU has ",
                        FormatMib(largest->memory_mib), " (", largest->name, " on ",
                        largest->host, ")");
  }
  std::string best_host;
  int best = 0;
  for (const auto& [host, n] : fitting_per_host) {
    if (n > best) best = n, best_host = host;
  }
  return absl::StrCat("resources.gpus_per_trial: a trial needs ", need.gpus,
                      " GPUs on one node", need.memory_mib > 0 ? " with enough memory" : "",
                      ", but the most any connected node has is ", best, " (", best_host,
                      ")", any_mig ? "; MIG devices do not count: a process sees one" : "");
}

}  // namespace sweep
