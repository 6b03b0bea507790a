// Loads NVML (libnvidia-ml.so.1, part of the NVIDIA driver) at run time and holds
// its functions, so that sweep builds and runs on machines without the driver.
//
// Loading: dlopen by the name given (a bare name is searched as the dynamic linker
// does: LD_LIBRARY_PATH first, so a test or a user can select another copy), then
// every function sweep uses is looked up (worker/internal/nvml_api.h) and
// nvmlInit_v2 is called. A library is loaded and initialized once per process and
// name and never unloaded: NVML's shutdown can take as long as any other call, and
// nothing is gained by paying it at exit.
//
// Thread safety: Nvml::Open is thread-safe; the function pointers are immutable
// after it returns, and NVML's own calls are thread-safe.
#ifndef SWEEP_WORKER_INTERNAL_NVML_H_
#define SWEEP_WORKER_INTERNAL_NVML_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "worker/internal/nvml_api.h"

namespace sweep::internal {

class Nvml {
 public:
  // The loaded and initialized NVML of `library` (shared: the same object for the
  // same name, for the life of the process). Errors, each naming the library and
  // what went wrong:
  //   NotFound: the library cannot be loaded (the message carries dlerror()),
  //     which on a node without the NVIDIA driver is the normal case;
  //   FailedPrecondition: a function sweep needs is missing (an NVML too old;
  //     names the function), or nvmlInit_v2 failed (NVML's error string, e.g.
  //     "Driver Not Loaded").
  // A failure is not remembered: the next call tries again.
  static absl::StatusOr<std::shared_ptr<const Nvml>> Open(const std::string& library);

  // NVML's words for `r` ("GPU is lost"), with its number.
  std::string Error(nvmlReturn_t r) const;
  // The file the library was loaded from (as the dynamic linker reports it).
  const std::string& path() const { return path_; }

  decltype(&::nvmlInit_v2) Init = nullptr;
  decltype(&::nvmlShutdown) Shutdown = nullptr;
  decltype(&::nvmlErrorString) ErrorString = nullptr;
  decltype(&::nvmlDeviceGetCount_v2) DeviceGetCount = nullptr;
  decltype(&::nvmlDeviceGetHandleByIndex_v2) DeviceGetHandleByIndex = nullptr;
  decltype(&::nvmlDeviceGetUUID) DeviceGetUUID = nullptr;
  decltype(&::nvmlDeviceGetName) DeviceGetName = nullptr;
  decltype(&::nvmlDeviceGetMemoryInfo) DeviceGetMemoryInfo = nullptr;
  decltype(&::nvmlDeviceGetUtilizationRates) DeviceGetUtilizationRates = nullptr;
  decltype(&::nvmlDeviceGetPowerUsage) DeviceGetPowerUsage = nullptr;
  decltype(&::nvmlDeviceGetTotalEnergyConsumption) DeviceGetTotalEnergyConsumption = nullptr;
  decltype(&::nvmlDeviceGetComputeRunningProcesses_v3) DeviceGetComputeRunningProcesses =
      nullptr;
  decltype(&::nvmlDeviceGetMigMode) DeviceGetMigMode = nullptr;
  decltype(&::nvmlDeviceGetMaxMigDeviceCount) DeviceGetMaxMigDeviceCount = nullptr;
  decltype(&::nvmlDeviceGetMigDeviceHandleByIndex) DeviceGetMigDeviceHandleByIndex = nullptr;
  decltype(&::nvmlDeviceGetGpuInstanceId) DeviceGetGpuInstanceId = nullptr;
  decltype(&::nvmlEventSetCreate) EventSetCreate = nullptr;
  decltype(&::nvmlDeviceRegisterEvents) DeviceRegisterEvents = nullptr;
  decltype(&::nvmlEventSetWait_v2) EventSetWait = nullptr;
  decltype(&::nvmlEventSetFree) EventSetFree = nullptr;

 private:
  Nvml() = default;
  std::string path_;
};

}  // namespace sweep::internal

#endif  // SWEEP_WORKER_INTERNAL_NVML_H_
