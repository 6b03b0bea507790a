#include "worker/gpu.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "spdlog/spdlog.h"
#include "worker/internal/nvml.h"

namespace sweep {
namespace {

using internal::Nvml;

constexpr int64_t kMiB = 1 << 20;

// A device as NVML knows it.
struct Device {
  Gpu gpu;
  nvmlDevice_t handle = nullptr;
};

std::string Text(nvmlReturn_t (*fn)(nvmlDevice_t, char*, unsigned int), nvmlDevice_t d,
                 nvmlReturn_t* r) {
  char buf[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {0};
  *r = fn(d, buf, sizeof(buf));
  buf[sizeof(buf) - 1] = '\0';
  return *r == NVML_SUCCESS ? std::string(buf) : "";
}

// Reads UUID, name and memory of `d` into `g`. The first error, else NVML_SUCCESS.
nvmlReturn_t Describe(const Nvml& n, nvmlDevice_t d, Gpu* g) {
  nvmlReturn_t r;
  g->uuid = Text(n.DeviceGetUUID, d, &r);
  if (r != NVML_SUCCESS) return r;
  g->name = Text(n.DeviceGetName, d, &r);
  if (r != NVML_SUCCESS) return r;
  nvmlMemory_t mem{};
  if (r = n.DeviceGetMemoryInfo(d, &mem); r != NVML_SUCCESS) return r;
  g->memory_mib = static_cast<int64_t>(mem.total / kMiB);
  return NVML_SUCCESS;
}

// Every card of the node, each card in MIG mode followed by its MIG devices.
absl::StatusOr<std::vector<Device>> Enumerate(const Nvml& n) {
  unsigned int count = 0;
  if (nvmlReturn_t r = n.DeviceGetCount(&count); r != NVML_SUCCESS) {
    return absl::FailedPreconditionError(
        absl::StrCat("NVML (", n.path(), ") cannot count the GPUs: ", n.Error(r)));
  }
  std::vector<Device> out;
  for (unsigned int i = 0; i < count; ++i) {
    Device card;
    card.gpu.index = static_cast<int>(i);
    nvmlReturn_t r = n.DeviceGetHandleByIndex(i, &card.handle);
    if (r == NVML_SUCCESS) r = Describe(n, card.handle, &card.gpu);
    if (r != NVML_SUCCESS) {
      spdlog::warn("GPU {} cannot be read, leaving it out: {}", i, n.Error(r));
      continue;
    }
    unsigned int current = 0, pending = 0;
    card.gpu.mig_enabled = n.DeviceGetMigMode(card.handle, &current, &pending) == NVML_SUCCESS &&
                           current == NVML_DEVICE_MIG_ENABLE;
    out.push_back(card);
    if (!card.gpu.mig_enabled) continue;
    unsigned int slots = 0;
    if (r = n.DeviceGetMaxMigDeviceCount(card.handle, &slots); r != NVML_SUCCESS) {
      spdlog::warn("GPU {} is in MIG mode but its MIG devices cannot be listed: {}", i,
                   n.Error(r));
      continue;
    }
    for (unsigned int m = 0; m < slots; ++m) {
      Device mig;
      r = n.DeviceGetMigDeviceHandleByIndex(card.handle, m, &mig.handle);
      if (r == NVML_ERROR_NOT_FOUND || r == NVML_ERROR_INVALID_ARGUMENT) continue;  // empty
      if (r == NVML_SUCCESS) r = Describe(n, mig.handle, &mig.gpu);
      if (r != NVML_SUCCESS) {
        spdlog::warn("MIG device {} of GPU {} cannot be read, leaving it out: {}", m, i,
                     n.Error(r));
        continue;
      }
      mig.gpu.index = static_cast<int>(i);
      mig.gpu.mig_index = static_cast<int>(m);
      mig.gpu.parent_uuid = card.gpu.uuid;
      out.push_back(mig);
    }
  }
  return out;
}

absl::StatusOr<std::shared_ptr<const Nvml>> OpenForGpus(const std::string& library) {
  absl::StatusOr<std::shared_ptr<const Nvml>> n = Nvml::Open(library);
  if (absl::IsNotFound(n.status())) {
    return absl::NotFoundError(absl::StrCat(
        "no NVIDIA GPU found: NVML could not be loaded (", n.status().message(),
        "); it comes with the NVIDIA driver. Use --cpus N on a machine without GPUs"));
  }
  return n;
}

class NvmlDiscovery final : public GpuDiscovery {
 public:
  explicit NvmlDiscovery(std::string library) : library_(std::move(library)) {}

  absl::StatusOr<std::vector<Gpu>> Discover() override {
    absl::StatusOr<std::shared_ptr<const Nvml>> n = OpenForGpus(library_);
    if (!n.ok()) return n.status();
    {
      absl::MutexLock lock(&mu_);
      source_ = absl::StrCat("NVML (", (*n)->path(), ")");
    }
    absl::StatusOr<std::vector<Device>> devices = Enumerate(**n);
    if (!devices.ok()) return devices.status();
    std::vector<Gpu> out;
    for (const Device& d : *devices) out.push_back(d.gpu);
    if (out.empty()) {
      return absl::NotFoundError(absl::StrCat(
          "no NVIDIA GPU found: NVML (", (*n)->path(),
          ") lists none. Use --cpus N on a machine without GPUs"));
    }
    return out;
  }

  std::string Source() const override {
    absl::MutexLock lock(&mu_);
    return source_;
  }

 private:
  const std::string library_;
  mutable absl::Mutex mu_;
  std::string source_ ABSL_GUARDED_BY(mu_) = "NVML";
};

class NvmlProbe final : public GpuProbe {
 public:
  explicit NvmlProbe(std::string library) : library_(std::move(library)) {}
  ~NvmlProbe() override {
    absl::MutexLock lock(&mu_);
    if (events_ != nullptr && nvml_ != nullptr) nvml_->EventSetFree(events_);
  }

  absl::StatusOr<GpuReading> Read(const std::vector<std::string>& uuids) override {
    absl::StatusOr<std::shared_ptr<const Nvml>> n = Nvml::Open(library_);
    if (!n.ok()) return absl::UnavailableError(n.status().message());
    const Nvml& nvml = **n;
    absl::MutexLock lock(&mu_);  // one round at a time: handles_ is shared
    nvml_ = *n;
    if (!listening_) {
      Refresh(nvml);
      listening_ = true;
    }
    GpuReading out;
    for (const std::string& uuid : uuids) {
      auto it = handles_.find(uuid);
      if (it == handles_.end()) {
        Refresh(nvml);  // new MIG devices get new handles
        it = handles_.find(uuid);
      }
      GpuSample s;
      s.uuid = uuid;
      if (it == handles_.end()) {
        s.error = "NVML does not list this device (any more)";
      } else {
        ReadOne(nvml, it->second, &s, &out.processes);
      }
      out.gpus.push_back(std::move(s));
    }
    CollectFaults(nvml, &out.faults);
    return out;
  }

 private:
  // A card as the Xid events name it.
  struct Card {
    std::string uuid;
    std::map<unsigned int, std::string> migs;  // GPU instance id -> MIG device UUID
  };

  // Learns the node's devices again and listens for Xid errors of every card not
  // yet listened to.
  void Refresh(const Nvml& nvml) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::StatusOr<std::vector<Device>> devices = Enumerate(nvml);
    if (!devices.ok()) return;
    std::map<std::string, nvmlDevice_t> card_of;  // card UUID -> handle
    for (const Device& d : *devices) {
      handles_[d.gpu.uuid] = d.handle;
      if (!d.gpu.is_mig_device()) {
        card_of[d.gpu.uuid] = d.handle;
        cards_[d.handle].uuid = d.gpu.uuid;
        cards_[d.handle].migs.clear();
      }
    }
    for (const Device& d : *devices) {
      unsigned int gi = 0;
      if (d.gpu.is_mig_device() && card_of.count(d.gpu.parent_uuid) &&
          nvml.DeviceGetGpuInstanceId(d.handle, &gi) == NVML_SUCCESS) {
        cards_[card_of[d.gpu.parent_uuid]].migs[gi] = d.gpu.uuid;
      }
    }
    if (events_ == nullptr) {
      if (nvmlReturn_t r = nvml.EventSetCreate(&events_); r != NVML_SUCCESS) {
        events_ = nullptr;
        if (!events_warned_) {
          spdlog::warn("NVML cannot report Xid errors here ({}); a failing GPU is found "
                       "only when it stops answering", nvml.Error(r));
          events_warned_ = true;
        }
        return;
      }
    }
    for (auto& [handle, card] : cards_) {
      if (registered_.count(handle)) continue;
      nvmlReturn_t r =
          nvml.DeviceRegisterEvents(handle, nvmlEventTypeXidCriticalError, events_);
      if (r != NVML_SUCCESS) {
        spdlog::warn("NVML cannot report Xid errors of {} ({}); a failure is found only "
                     "when it stops answering", card.uuid, nvml.Error(r));
      }
      registered_.insert(handle);  // tried once; a card that cannot will not later
    }
  }

  // Takes every Xid event waiting in the set, without waiting for more.
  void CollectFaults(const Nvml& nvml, std::vector<GpuFault>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (events_ == nullptr) return;
    // Bounded: a driver that reports without end cannot hold the sampler here.
    for (int i = 0; i < 256; ++i) {
      nvmlEventData_t e{};
      if (nvml.EventSetWait(events_, &e, 0) != NVML_SUCCESS) return;
      if ((e.eventType & nvmlEventTypeXidCriticalError) == 0) continue;
      auto it = cards_.find(e.device);
      if (it == cards_.end()) continue;
      const Card& card = it->second;
      auto mig = card.migs.find(e.gpuInstanceId);
      if (mig != card.migs.end()) {
        out->push_back(GpuFault{.uuid = mig->second, .xid = static_cast<int64_t>(e.eventData)});
        continue;
      }
      // The whole card: the card itself and, in MIG mode, each of its MIG devices.
      out->push_back(GpuFault{.uuid = card.uuid, .xid = static_cast<int64_t>(e.eventData)});
      for (const auto& [gi, uuid] : card.migs) {
        out->push_back(GpuFault{.uuid = uuid, .xid = static_cast<int64_t>(e.eventData)});
      }
    }
  }

  // One device into `s`; its processes appended to `procs`.
  static void ReadOne(const Nvml& n, nvmlDevice_t d, GpuSample* s,
                      std::vector<GpuProcess>* procs) {
    // A lost card answers every call with NVML_ERROR_GPU_IS_LOST: the first one
    // marks it and ends the reading. Memory is needed; any other figure that
    // cannot be had (not supported, or another error) is left out.
    auto failed = [&](nvmlReturn_t r) {
      if (r != NVML_ERROR_GPU_IS_LOST) return false;
      s->error = n.Error(r);
      s->lost = true;
      return true;
    };
    nvmlMemory_t mem{};
    nvmlReturn_t r = n.DeviceGetMemoryInfo(d, &mem);
    if (r == NVML_SUCCESS) {
      s->memory_total_mib = static_cast<int64_t>(mem.total / kMiB);
      s->memory_used_mib = static_cast<int64_t>(mem.used / kMiB);
    } else if (r != NVML_ERROR_NOT_SUPPORTED) {
      s->error = n.Error(r);
      s->lost = r == NVML_ERROR_GPU_IS_LOST;
      return;
    }
    nvmlUtilization_t util{};
    r = n.DeviceGetUtilizationRates(d, &util);
    if (r == NVML_SUCCESS) s->utilization = util.gpu;
    if (failed(r)) return;
    unsigned int mw = 0;
    r = n.DeviceGetPowerUsage(d, &mw);
    if (r == NVML_SUCCESS) s->power_watts = mw / 1000.0;
    if (failed(r)) return;
    unsigned long long mj = 0;
    r = n.DeviceGetTotalEnergyConsumption(d, &mj);
    if (r == NVML_SUCCESS) s->energy_joules = static_cast<double>(mj) / 1000.0;
    if (failed(r)) return;
    std::vector<nvmlProcessInfo_t> infos(32);
    for (int attempt = 0; attempt < 4; ++attempt) {
      unsigned int count = static_cast<unsigned int>(infos.size());
      r = n.DeviceGetComputeRunningProcesses(d, &count, infos.data());
      if (r == NVML_ERROR_INSUFFICIENT_SIZE) {
        infos.resize(std::max<size_t>(count, infos.size()) * 2);
        continue;
      }
      if (r == NVML_SUCCESS) {
        for (unsigned int i = 0; i < count && i < infos.size(); ++i) {
          const nvmlProcessInfo_t& p = infos[i];
          procs->push_back(GpuProcess{
              .pid = static_cast<int>(p.pid),
              .uuid = s->uuid,
              .used_mib = p.usedGpuMemory == NVML_VALUE_NOT_AVAILABLE
                              ? 0
                              : static_cast<int64_t>(p.usedGpuMemory / kMiB)});
        }
      }
      break;
    }
    failed(r);
  }

  const std::string library_;
  absl::Mutex mu_;
  std::shared_ptr<const Nvml> nvml_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, nvmlDevice_t> handles_ ABSL_GUARDED_BY(mu_);  // by UUID
  std::map<nvmlDevice_t, Card> cards_ ABSL_GUARDED_BY(mu_);
  bool listening_ ABSL_GUARDED_BY(mu_) = false;  // the first Refresh ran
  nvmlEventSet_t events_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::set<nvmlDevice_t> registered_ ABSL_GUARDED_BY(mu_);
  bool events_warned_ ABSL_GUARDED_BY(mu_) = false;
};

std::string Indexes(const std::vector<Gpu>& all) {
  std::vector<std::string> out;
  for (const Gpu& g : all) {
    if (!g.is_mig_device()) out.push_back(absl::StrCat(g.index));
  }
  return absl::StrJoin(out, ", ");
}

}  // namespace

std::string Gpu::CudaName() const { return is_mig_device() ? uuid : absl::StrCat(index); }

std::string Gpu::Label() const {
  return is_mig_device() ? absl::StrCat("MIG device ", uuid, " (GPU ", index, ")")
                         : absl::StrCat("GPU ", index);
}

namespace {

// What sweep knows of the Xids that NVML reports as critical, from NVIDIA's Xid
// catalogue (docs.nvidia.com/deploy/xid-errors), in our words.
struct XidInfo {
  int64_t xid;
  XidKind kind;
  const char* what;
};
constexpr XidInfo kXids[] = {
    {13, XidKind::kApplication, "graphics engine exception"},
    {31, XidKind::kApplication, "GPU memory page fault"},
    {32, XidKind::kApplication, "invalid or corrupted push buffer stream"},
    {43, XidKind::kApplication, "GPU stopped processing"},
    {45, XidKind::kApplication, "preemptive cleanup after an earlier error"},
    {48, XidKind::kDevice, "double-bit ECC error"},
    {61, XidKind::kDevice, "internal micro-controller breakpoint"},
    {62, XidKind::kDevice, "internal micro-controller halt"},
    {63, XidKind::kApplication, "ECC page retirement or row remapping recorded"},
    {64, XidKind::kDevice, "ECC page retirement or row remapping failed"},
    {68, XidKind::kApplication, "video processor exception"},
    {69, XidKind::kApplication, "graphics engine class error"},
    {74, XidKind::kDevice, "NVLink error"},
    {79, XidKind::kDevice, "GPU has fallen off the bus"},
    {92, XidKind::kApplication, "high single-bit ECC error rate"},
    {94, XidKind::kTrial, "contained ECC error"},
    {95, XidKind::kDevice, "uncontained ECC error"},
    {119, XidKind::kDevice, "GSP RPC timeout"},
    {120, XidKind::kDevice, "GSP error"},
    {140, XidKind::kDevice, "unrecovered ECC error"},
};

const XidInfo* FindXid(int64_t xid) {
  for (const XidInfo& x : kXids) {
    if (x.xid == xid) return &x;
  }
  return nullptr;
}

}  // namespace

XidKind ClassifyXid(int64_t xid) {
  const XidInfo* x = FindXid(xid);
  // An Xid we do not know is not taken for a broken card: draining a slot costs a
  // GPU, and the trial's own exit status still says whether it failed.
  return x != nullptr ? x->kind : XidKind::kApplication;
}

std::string XidText(int64_t xid) {
  const XidInfo* x = FindXid(xid);
  return x != nullptr ? absl::StrCat("Xid ", xid, " (", x->what, ")") : absl::StrCat("Xid ", xid);
}

std::unique_ptr<GpuDiscovery> NewNvmlDiscovery(const std::string& library) {
  return std::make_unique<NvmlDiscovery>(library);
}

std::unique_ptr<GpuProbe> NewNvmlProbe(const std::string& library) {
  return std::make_unique<NvmlProbe>(library);
}

absl::StatusOr<std::vector<Gpu>> SelectGpus(const std::vector<Gpu>& all,
                                            const std::string& which) {
  std::vector<Gpu> out;
  std::set<std::string> seen;
  auto add = [&](const Gpu& g) {
    if (seen.insert(g.uuid).second) out.push_back(g);
  };
  // A card stands for itself, or in MIG mode for its MIG devices.
  auto add_card = [&](const Gpu& card) -> absl::Status {
    if (!card.mig_enabled) {
      add(card);
      return absl::OkStatus();
    }
    bool any = false;
    for (const Gpu& g : all) {
      if (g.parent_uuid == card.uuid) {
        add(g);
        any = true;
      }
    }
    if (any) return absl::OkStatus();
    return absl::NotFoundError(absl::StrCat(
        "GPU ", card.index, " (", card.uuid, ") is in MIG mode but has no MIG devices: "
        "create some (nvidia-smi mig -cgi ... -C) or turn MIG mode off"));
  };
  if (which == "all") {
    for (const Gpu& g : all) {
      if (!g.is_mig_device()) {
        if (absl::Status st = add_card(g); !st.ok()) {
          spdlog::warn("{}; leaving it out", std::string(st.message()));
        }
      }
    }
    if (out.empty()) return absl::NotFoundError("this node has no GPU that can run trials");
    return out;
  }
  for (absl::string_view raw : absl::StrSplit(which, ',')) {
    std::string part(absl::StripAsciiWhitespace(raw));
    if (absl::StartsWith(part, "MIG-")) {
      auto it = std::find_if(all.begin(), all.end(), [&](const Gpu& g) { return g.uuid == part; });
      if (it == all.end()) {
        std::vector<std::string> migs;
        for (const Gpu& g : all) {
          if (g.is_mig_device()) migs.push_back(absl::StrCat(g.uuid, " (", g.name, ")"));
        }
        return absl::NotFoundError(absl::StrCat(
            "this node has no MIG device ", part, " (it has ",
            migs.empty() ? "none" : absl::StrJoin(migs, ", "), ")"));
      }
      add(*it);
      continue;
    }
    if (absl::StartsWith(part, "GPU-")) {
      auto it = std::find_if(all.begin(), all.end(), [&](const Gpu& g) { return g.uuid == part; });
      if (it == all.end()) {
        std::vector<std::string> cards;
        for (const Gpu& g : all) {
          if (!g.is_mig_device()) cards.push_back(absl::StrCat(g.index, ": ", g.uuid));
        }
        return absl::NotFoundError(absl::StrCat("this node has no GPU ", part, " (it has ",
                                                absl::StrJoin(cards, ", "), ")"));
      }
      if (absl::Status st = add_card(*it); !st.ok()) return st;
      continue;
    }
    int index;
    if (!absl::SimpleAtoi(part, &index) || index < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--gpus: expected 'all' or a comma-separated list of GPU indexes, GPU UUIDs "
          "(GPU-...) and MIG device UUIDs (MIG-...), got '", which, "'"));
    }
    auto it = std::find_if(all.begin(), all.end(),
                           [&](const Gpu& g) { return !g.is_mig_device() && g.index == index; });
    if (it == all.end()) {
      size_t cards = std::count_if(all.begin(), all.end(),
                                   [](const Gpu& g) { return !g.is_mig_device(); });
      return absl::NotFoundError(absl::StrCat("this node has no GPU ", index, " (it has ",
                                              cards, ": ", Indexes(all), ")"));
    }
    if (absl::Status st = add_card(*it); !st.ok()) return st;
  }
  return out;
}

}  // namespace sweep
