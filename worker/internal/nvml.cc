#include "worker/internal/nvml.h"

#include <dlfcn.h>

#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace sweep::internal {
namespace {

// Looks `name` up in `lib` into `*fn`; false (with *missing set) when it is absent.
template <typename Fn>
bool Bind(void* lib, const char* name, Fn* fn, std::string* missing) {
  dlerror();
  *fn = reinterpret_cast<Fn>(dlsym(lib, name));
  if (*fn != nullptr) return true;
  if (missing->empty()) *missing = name;
  return false;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const Nvml>> Nvml::Open(const std::string& library) {
  static std::mutex mu;
  static auto* opened = new std::map<std::string, std::shared_ptr<const Nvml>>();
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = opened->find(library); it != opened->end()) return it->second;

  dlerror();
  void* lib = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = dlerror();
    return absl::NotFoundError(
        absl::StrCat("cannot load ", library, ": ", why ? why : "unknown reason"));
  }
  std::shared_ptr<Nvml> n(new Nvml());
  std::string missing;
  bool ok = Bind(lib, "nvmlInit_v2", &n->Init, &missing);
  ok &= Bind(lib, "nvmlShutdown", &n->Shutdown, &missing);
  ok &= Bind(lib, "nvmlErrorString", &n->ErrorString, &missing);
  ok &= Bind(lib, "nvmlDeviceGetCount_v2", &n->DeviceGetCount, &missing);
  ok &= Bind(lib, "nvmlDeviceGetHandleByIndex_v2", &n->DeviceGetHandleByIndex, &missing);
  ok &= Bind(lib, "nvmlDeviceGetUUID", &n->DeviceGetUUID, &missing);
  ok &= Bind(lib, "nvmlDeviceGetName", &n->DeviceGetName, &missing);
  ok &= Bind(lib, "nvmlDeviceGetMemoryInfo", &n->DeviceGetMemoryInfo, &missing);
  ok &= Bind(lib, "nvmlDeviceGetUtilizationRates", &n->DeviceGetUtilizationRates, &missing);
  ok &= Bind(lib, "nvmlDeviceGetPowerUsage", &n->DeviceGetPowerUsage, &missing);
  ok &= Bind(lib, "nvmlDeviceGetTotalEnergyConsumption", &n->DeviceGetTotalEnergyConsumption,
             &missing);
  ok &= Bind(lib, "nvmlDeviceGetComputeRunningProcesses_v3",
             &n->DeviceGetComputeRunningProcesses, &missing);
  ok &= Bind(lib, "nvmlDeviceGetMigMode", &n->DeviceGetMigMode, &missing);
  ok &= Bind(lib, "nvmlDeviceGetMaxMigDeviceCount", &n->DeviceGetMaxMigDeviceCount, &missing);
  ok &= Bind(lib, "nvmlDeviceGetMigDeviceHandleByIndex", &n->DeviceGetMigDeviceHandleByIndex,
             &missing);
  ok &= Bind(lib, "nvmlDeviceGetGpuInstanceId", &n->DeviceGetGpuInstanceId, &missing);
  ok &= Bind(lib, "nvmlEventSetCreate", &n->EventSetCreate, &missing);
  ok &= Bind(lib, "nvmlDeviceRegisterEvents", &n->DeviceRegisterEvents, &missing);
  ok &= Bind(lib, "nvmlEventSetWait_v2", &n->EventSetWait, &missing);
  ok &= Bind(lib, "nvmlEventSetFree", &n->EventSetFree, &missing);
  Dl_info info{};
  n->path_ = n->Init != nullptr && dladdr(reinterpret_cast<void*>(n->Init), &info) != 0 &&
                     info.dli_fname != nullptr
                 ? info.dli_fname
                 : library;
  if (!ok) {
    dlclose(lib);
    return absl::FailedPreconditionError(absl::StrCat(
        "the NVML library ", n->path_, " is too old for sweep: it has no ", missing,
        " (install a newer NVIDIA driver, R510 or later)"));
  }
  if (nvmlReturn_t r = n->Init(); r != NVML_SUCCESS) {
    std::string why = n->Error(r);
    dlclose(lib);
    return absl::FailedPreconditionError(absl::StrCat(
        "NVML (", n->path_, ") could not start: ", why,
        "; is the NVIDIA driver loaded (nvidia-smi, dmesg)?"));
  }
  (*opened)[library] = n;
  return std::shared_ptr<const Nvml>(n);
}

std::string Nvml::Error(nvmlReturn_t r) const {
  const char* s = ErrorString != nullptr ? ErrorString(r) : nullptr;
  return absl::StrCat(s != nullptr ? s : "unknown NVML error", " (NVML error ",
                      static_cast<int>(r), ")");
}

}  // namespace sweep::internal
