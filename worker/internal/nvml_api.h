// The part of NVML's C API (nvml.h, NVIDIA Management Library) that sweep uses,
// declared here instead of included.
//
// Why our own declarations: nvml.h ships in Debian's `libnvidia-ml-dev`, which is
// in the non-free section that a fresh machine's apt sources lack, and nothing here
// links NVML anyway: worker/internal/nvml.cc loads `libnvidia-ml.so.1` at run time
// with dlopen and looks each function up by name. The types and layouts below are
// copied from nvml.h (CUDA 12) and are ABI: do not reorder, resize or "tidy" them.
// Each function is the versioned entry point that nvml.h's macros map the plain
// name to (nvmlInit -> nvmlInit_v2, ...), because that is the symbol the library
// exports with today's semantics.
//
// tests/fake_nvml.cc implements these same symbols (the test double of
// libnvidia-ml.so.1), so it is compiled against exactly these declarations.
#ifndef SWEEP_WORKER_INTERNAL_NVML_API_H_
#define SWEEP_WORKER_INTERNAL_NVML_API_H_

extern "C" {

// nvmlReturn_t: what every call returns.
typedef enum nvmlReturn_enum {
  NVML_SUCCESS = 0,
  NVML_ERROR_UNINITIALIZED = 1,
  NVML_ERROR_INVALID_ARGUMENT = 2,
  NVML_ERROR_NOT_SUPPORTED = 3,
  NVML_ERROR_NO_PERMISSION = 4,
  NVML_ERROR_ALREADY_INITIALIZED = 5,
  NVML_ERROR_NOT_FOUND = 6,
  NVML_ERROR_INSUFFICIENT_SIZE = 7,
  NVML_ERROR_INSUFFICIENT_POWER = 8,
  NVML_ERROR_DRIVER_NOT_LOADED = 9,
  NVML_ERROR_TIMEOUT = 10,
  NVML_ERROR_IRQ_ISSUE = 11,
  NVML_ERROR_LIBRARY_NOT_FOUND = 12,
  NVML_ERROR_FUNCTION_NOT_FOUND = 13,
  NVML_ERROR_CORRUPTED_INFOROM = 14,
  NVML_ERROR_GPU_IS_LOST = 15,
  NVML_ERROR_RESET_REQUIRED = 16,
  NVML_ERROR_OPERATING_SYSTEM = 17,
  NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18,
  NVML_ERROR_IN_USE = 19,
  NVML_ERROR_MEMORY = 20,
  NVML_ERROR_NO_DATA = 21,
  NVML_ERROR_UNKNOWN = 999
} nvmlReturn_t;

// An opaque handle to a GPU or a MIG device.
typedef struct nvmlDevice_st* nvmlDevice_t;

// nvmlDeviceGetMemoryInfo (v1 layout: no version field), bytes.
typedef struct nvmlMemory_st {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
} nvmlMemory_t;

// nvmlDeviceGetUtilizationRates, percent over the driver's last sample period.
typedef struct nvmlUtilization_st {
  unsigned int gpu;
  unsigned int memory;
} nvmlUtilization_t;

// nvmlDeviceGetComputeRunningProcesses_v3 fills these (nvml.h's
// nvmlProcessInfo_t, the same layout as nvmlProcessInfo_v2_t: 24 bytes).
typedef struct nvmlProcessInfo_st {
  unsigned int pid;
  unsigned long long usedGpuMemory;  // bytes; NVML_VALUE_NOT_AVAILABLE when unknown
  unsigned int gpuInstanceId;        // 0xFFFFFFFF outside MIG
  unsigned int computeInstanceId;
} nvmlProcessInfo_t;

// An opaque set of devices' events (nvmlEventSetCreate).
typedef struct nvmlEventSet_st* nvmlEventSet_t;

// What nvmlEventSetWait_v2 fills in (nvml.h's nvmlEventData_t).
typedef struct nvmlEventData_st {
  nvmlDevice_t device;                // the card the event is about
  unsigned long long eventType;       // one nvmlEventType* bit
  unsigned long long eventData;       // for an Xid event: the Xid
  unsigned int gpuInstanceId;         // MIG: the GPU instance; 0xFFFFFFFF: the whole card
  unsigned int computeInstanceId;
} nvmlEventData_t;

// The driver reported an Xid error it counts as critical (the kernel log's "NVRM: Xid").
#define nvmlEventTypeXidCriticalError 0x0000000000000008LL
#define NVML_NO_GPU_INSTANCE 0xFFFFFFFFu

#define NVML_VALUE_NOT_AVAILABLE (~0ULL)
#define NVML_DEVICE_MIG_DISABLE 0x0
#define NVML_DEVICE_MIG_ENABLE 0x1
#define NVML_DEVICE_UUID_V2_BUFFER_SIZE 96
#define NVML_DEVICE_NAME_V2_BUFFER_SIZE 96

nvmlReturn_t nvmlInit_v2(void);
nvmlReturn_t nvmlShutdown(void);
const char* nvmlErrorString(nvmlReturn_t result);
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* deviceCount);
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* device);
nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char* uuid, unsigned int length);
nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char* name, unsigned int length);
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory);
nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device,
                                           nvmlUtilization_t* utilization);
// Milliwatts.
nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int* power);
// Millijoules since the driver was last loaded (Volta and newer).
nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device,
                                                 unsigned long long* energy);
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device,
                                                     unsigned int* infoCount,
                                                     nvmlProcessInfo_t* infos);
nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int* currentMode,
                                  unsigned int* pendingMode);
nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int* count);
nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index,
                                                 nvmlDevice_t* migDevice);
nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t device, unsigned int* id);
nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t* set);
nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t device, unsigned long long eventTypes,
                                      nvmlEventSet_t set);
// Waits up to timeoutms for an event of the set (0: does not wait); NVML_ERROR_TIMEOUT
// when there is none.
nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t* data,
                                 unsigned int timeoutms);
nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set);

}  // extern "C"

#endif  // SWEEP_WORKER_INTERNAL_NVML_API_H_
