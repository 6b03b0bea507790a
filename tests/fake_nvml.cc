// A fake libnvidia-ml.so.1: the test double of the NVIDIA driver at the boundary
// sweep really crosses (the NVML C functions it loads with dlopen). Tests put the
// directory of this library first in LD_LIBRARY_PATH of the processes under test,
// or dlopen it by path.
//
// It is scripted by a JSON file named by $SWEEP_FAKE_NVML, read again whenever it
// changes (write a new file and rename it over the old one), so a test can change
// the node mid-run. Without $SWEEP_FAKE_NVML, nvmlInit_v2 fails with "Driver Not
// Loaded". The file:
//
//   {
//     "delay_s": 0,                 every call but nvmlErrorString first sleeps this long
//     "init_error": "DRIVER_NOT_LOADED",   nvmlInit_v2 fails so (optional)
//     "processes_file": "/path",    lines "pid, uuid, MiB": while process pid lives
//                                   (and is no zombie), it holds MiB on device uuid
//     "queries_file": "/path",      each process query appends a line once it has read
//                                   processes_file (a test trial can wait until a sample
//                                   has seen it)
//     "gpus": [{
//       "uuid": "GPU-fake-0", "name": "Fake GPU", "memory_mib": 16384,
//       "used_mib": 0,              held by no listed process
//       "utilization": 50,          percent
//       "power_w": 100,             nvmlDeviceGetPowerUsage
//       "energy_w": 100,            the energy counter rises at this rate (default power_w)
//       "energy_j_per_read": 600,   or by this much with each read (a test on a fake
//                                   clock knows then exactly what it must see)
//       "power_error": "NOT_SUPPORTED",    nvmlDeviceGetPowerUsage fails so (optional)
//       "energy_error": "NOT_SUPPORTED",   nvmlDeviceGetTotalEnergyConsumption too
//       "lost": false,              true: every call on it (and its MIG devices) answers
//                                   NVML_ERROR_GPU_IS_LOST
//       "xids": [79, {"xid": 94, "gpu_instance": 2}]
//                                   Xid errors the card reported, oldest first: each
//                                   event set that the card is registered with hands
//                                   out each one once (nvmlEventSetWait_v2), with the
//                                   GPU instance given (none: the whole card)
//       "mig": [{"uuid": "MIG-...", "name": "...", "memory_mib": 4864, "slot": 0,
//                "gpu_instance": 1}]
//                                   present: the card is in MIG mode with these MIG
//                                   devices (at MIG device index "slot", default their
//                                   position; 7 slots; GPU instance id default slot +
//                                   1); MIG devices have no utilization, power or
//                                   energy (NOT_SUPPORTED)
//     }]
//   }
//
// Built twice (tests/CMakeLists.txt): fake-nvml/libnvidia-ml.so.1, and
// fake-nvml-old/libnvidia-ml.so.1 with FAKE_NVML_OLD, which lacks
// nvmlDeviceGetComputeRunningProcesses_v3 like an NVML older than sweep needs.
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "nlohmann/json.hpp"
#include "worker/internal/nvml_api.h"

namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;
constexpr unsigned long long kMiB = 1ULL << 20;
constexpr int kMigSlots = 7;

std::mutex mu;
Json config;                  // the last file that parsed
std::string config_key;       // path, inode, size and mtime it was read at
int init_count = 0;
struct Energy {
  double mj = 0;
  Clock::time_point last;
  bool started = false;
};
Energy energy[64];            // per card

// Reads the file again when it changed. Returns the config; the lock is held.
const Json& Config() {
  const char* path = std::getenv("SWEEP_FAKE_NVML");
  if (path == nullptr || *path == '\0') {
    config = Json();
    config_key.clear();
    return config;
  }
  struct stat st {};
  if (stat(path, &st) != 0) return config;
  std::string key = std::string(path) + ":" + std::to_string(st.st_ino) + ":" +
                    std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
                    std::to_string(st.st_mtim.tv_nsec);
  if (key == config_key) return config;
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  Json j = Json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded() && j.is_object()) {
    config = std::move(j);
    config_key = key;
  }
  return config;
}

// The cards of the config, with the lock held.
const Json& Gpus() {
  static const Json none = Json::array();
  const Json& c = Config();
  return c.is_object() && c.contains("gpus") && c["gpus"].is_array() ? c["gpus"] : none;
}

// The MIG devices of a card.
const Json& Migs(const Json& card) {
  static const Json none = Json::array();
  return card.contains("mig") && card["mig"].is_array() ? card["mig"] : none;
}

// Sleeps the configured delay (without the lock, so calls from several threads
// overlap as they do in the driver).
void Delay() {
  double s;
  {
    std::lock_guard<std::mutex> lock(mu);
    s = Config().value("delay_s", 0.0);
  }
  if (s > 0) std::this_thread::sleep_for(std::chrono::duration<double>(s));
}

nvmlReturn_t Code(const std::string& name) {
  if (name == "NOT_SUPPORTED") return NVML_ERROR_NOT_SUPPORTED;
  if (name == "GPU_IS_LOST") return NVML_ERROR_GPU_IS_LOST;
  if (name == "NO_PERMISSION") return NVML_ERROR_NO_PERMISSION;
  if (name == "DRIVER_NOT_LOADED") return NVML_ERROR_DRIVER_NOT_LOADED;
  if (name == "TIMEOUT") return NVML_ERROR_TIMEOUT;
  return NVML_ERROR_UNKNOWN;
}

// Handles: (card + 1) << 8 | (MIG slot + 1), so they stay valid across config edits.
nvmlDevice_t Handle(int card, int mig) {
  return reinterpret_cast<nvmlDevice_t>(static_cast<uintptr_t>(((card + 1) << 8) | (mig + 1)));
}

// What a handle points at, with the lock held. NVML_SUCCESS and *card (and *mig,
// null for a card) set, or the error to return.
nvmlReturn_t Resolve(nvmlDevice_t h, const Json** card, const Json** mig, int* index = nullptr) {
  if (init_count == 0) return NVML_ERROR_UNINITIALIZED;
  uintptr_t v = reinterpret_cast<uintptr_t>(h);
  int c = static_cast<int>(v >> 8) - 1, m = static_cast<int>(v & 0xff) - 1;
  const Json& gpus = Gpus();
  if (c < 0 || c >= static_cast<int>(gpus.size())) return NVML_ERROR_INVALID_ARGUMENT;
  *card = &gpus[c];
  if (index) *index = c;
  if ((*card)->value("lost", false)) return NVML_ERROR_GPU_IS_LOST;
  *mig = nullptr;
  if (m >= 0) {
    const Json& migs = Migs(**card);
    for (size_t i = 0; i < migs.size(); ++i) {
      if (migs[i].value("slot", static_cast<int>(i)) == m) *mig = &migs[i];
    }
    if (*mig == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  }
  return NVML_SUCCESS;
}

bool Alive(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = text.rfind(')');
  return close != std::string::npos && close + 2 < text.size() && text[close + 2] != 'Z';
}

struct Proc {
  unsigned int pid;
  std::string uuid;
  unsigned long long mib;
};

// The live processes of the processes file, with the lock held.
std::vector<Proc> Processes() {
  std::vector<Proc> out;
  std::string path = Config().value("processes_file", "");
  if (path.empty()) return out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    for (char& ch : line) {
      if (ch == ',') ch = ' ';
    }
    std::istringstream f(line);
    Proc p{};
    if (f >> p.pid >> p.uuid >> p.mib && Alive(static_cast<int>(p.pid))) out.push_back(p);
  }
  return out;
}

unsigned long long UsedMib(const Json& dev, const std::vector<Proc>& procs) {
  unsigned long long used = dev.value("used_mib", 0ULL);
  std::string uuid = dev.value("uuid", "");
  for (const Proc& p : procs) {
    if (p.uuid == uuid) used += p.mib;
  }
  for (const Json& m : Migs(dev)) used += UsedMib(m, procs);
  return used;
}

nvmlReturn_t CopyText(const std::string& s, char* out, unsigned int length) {
  if (out == nullptr || s.size() + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
  std::memcpy(out, s.c_str(), s.size() + 1);
  return NVML_SUCCESS;
}

// An event set: the cards registered with it and how many of each card's "xids"
// it has handed out.
struct EventSet {
  std::set<int> cards;
  std::map<int, size_t> delivered;
};

}  // namespace

struct nvmlEventSet_st : EventSet {};

extern "C" {

nvmlReturn_t nvmlInit_v2(void) {
  Delay();
  std::lock_guard<std::mutex> lock(mu);
  const Json& c = Config();
  if (!c.is_object()) return NVML_ERROR_DRIVER_NOT_LOADED;
  if (c.contains("init_error")) return Code(c["init_error"].get<std::string>());
  ++init_count;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlShutdown(void) {
  Delay();
  std::lock_guard<std::mutex> lock(mu);
  if (init_count == 0) return NVML_ERROR_UNINITIALIZED;
  --init_count;
  return NVML_SUCCESS;
}

const char* nvmlErrorString(nvmlReturn_t r) {
  switch (r) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_TIMEOUT: return "Timeout";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    default: return "Unknown Error";
  }
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* count) {
  Delay();
  std::lock_guard<std::mutex> lock(mu);
  if (init_count == 0) return NVML_ERROR_UNINITIALIZED;
  *count = static_cast<unsigned int>(Gpus().size());
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* device) {
  Delay();
  std::lock_guard<std::mutex> lock(mu);
  if (init_count == 0) return NVML_ERROR_UNINITIALIZED;
  if (index >= Gpus().size()) return NVML_ERROR_INVALID_ARGUMENT;
  *device = Handle(static_cast<int>(index), -1);
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char* uuid, unsigned int length) {
  Delay();
  std::lock_guard<std::mutex> lock(mu);
  const Json *card, *mig;
  if (nvmlReturn_t r = Resolve(d, &card, &mig); r != NVML_SUCCESS) return r;
  return CopyText((mig ? mig : card)->value("uuid", ""), uuid, length);
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char* name, unsigned int length) {
  Delay();
  std::lock_guard<std::mutex> lock(mu);
  const Json *card, *mig;
  if (nvmlReturn_t r = Resolve(d, &card, &mig); r != NVML_SUCCESS) return r;
  return CopyText((mig ? mig : card)->value("name", "Fake GPU"), name, length);
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t* memory) {
  Delay();
  std::lock_guard<std::mutex> lock(mu);
  const Json *card, *mig;
  if (nvmlReturn_t r = Resolve(d, &card, &mig); r != NVML_SUCCESS) return r;
  const Json& dev = mig ? *mig : *card;
  unsigned long long total = dev.value("memory_mib", 16384ULL) * kMiB;
  unsigned long long used = std::min(UsedMib(dev, Processes()) * kMiB, total);
  *memory = nvmlMemory_t{.total = total, .free = total - used, .used = used};
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t* u) {
  Delay();
  std::lock_guard<std::mutex> lock(mu);
  const Json *card, *mig;
  if (nvmlReturn_t r = Resolve(d, &card, &mig); r != NVML_SUCCESS) return r;
  if (mig) return NVML_ERROR_NOT_SUPPORTED;
  *u = nvmlUtilization_t{.gpu = card->value("utilization", 0u), .memory = 0};
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int* power) {
  Delay();
  std::lock_guard<std::mutex> lock(mu);
  const Json *card, *mig;
  if (nvmlReturn_t r = Resolve(d, &card, &mig); r != NVML_SUCCESS) return r;
  if (mig) return NVML_ERROR_NOT_SUPPORTED;
  if (card->contains("power_error")) return Code((*card)["power_error"].get<std::string>());
  *power = static_cast<unsigned int>(card->value("power_w", 0.0) * 1000);
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t d, unsigned long long* mj) {
  Delay();
  std::lock_guard<std::mutex> lock(mu);
  const Json *card, *mig;
  int index = 0;
  if (nvmlReturn_t r = Resolve(d, &card, &mig, &index); r != NVML_SUCCESS) return r;
  if (mig) return NVML_ERROR_NOT_SUPPORTED;
  if (card->contains("energy_error")) return Code((*card)["energy_error"].get<std::string>());
  // The counter rises by energy_j_per_read with each read after the first, or else
  // at energy_w from the first time it is read.
  Energy& e = energy[index % 64];
  Clock::time_point now = Clock::now();
  if (e.started && card->contains("energy_j_per_read")) {
    e.mj += (*card)["energy_j_per_read"].get<double>() * 1000;
  } else if (e.started) {
    double watts = card->value("energy_w", card->value("power_w", 0.0));
    e.mj += watts * 1000 * std::chrono::duration<double>(now - e.last).count();
  }
  e.started = true;
  e.last = now;
  *mj = 1000000ULL + static_cast<unsigned long long>(e.mj);
  return NVML_SUCCESS;
}

#ifndef FAKE_NVML_OLD
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int* count,
                                                     nvmlProcessInfo_t* infos) {
  Delay();
  std::lock_guard<std::mutex> lock(mu);
  const Json *card, *mig;
  if (nvmlReturn_t r = Resolve(d, &card, &mig); r != NVML_SUCCESS) return r;
  std::vector<std::string> uuids;
  if (mig) {
    uuids.push_back(mig->value("uuid", ""));
  } else {
    uuids.push_back(card->value("uuid", ""));
    for (const Json& m : Migs(*card)) uuids.push_back(m.value("uuid", ""));
  }
  std::vector<nvmlProcessInfo_t> found;
  for (const Proc& p : Processes()) {
    for (size_t i = 0; i < uuids.size(); ++i) {
      if (p.uuid != uuids[i]) continue;
      found.push_back(nvmlProcessInfo_t{.pid = p.pid,
                                        .usedGpuMemory = p.mib * kMiB,
                                        .gpuInstanceId = i == 0 && !mig ? 0xFFFFFFFFu : 1u,
                                        .computeInstanceId = i == 0 && !mig ? 0xFFFFFFFFu : 0u});
    }
  }
  if (const Json& c = Config(); c.contains("queries_file") && c["queries_file"].is_string()) {
    std::ofstream(c["queries_file"].get<std::string>(), std::ios::app) << "query\n";
  }
  unsigned int room = *count;
  *count = static_cast<unsigned int>(found.size());
  if (found.size() > room) return NVML_ERROR_INSUFFICIENT_SIZE;
  for (size_t i = 0; i < found.size(); ++i) infos[i] = found[i];
  return NVML_SUCCESS;
}
#endif

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t d, unsigned int* current, unsigned int* pending) {
  Delay();
  std::lock_guard<std::mutex> lock(mu);
  const Json *card, *mig;
  if (nvmlReturn_t r = Resolve(d, &card, &mig); r != NVML_SUCCESS) return r;
  if (mig || !card->contains("mig")) return NVML_ERROR_NOT_SUPPORTED;
  *current = *pending = NVML_DEVICE_MIG_ENABLE;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t d, unsigned int* count) {
  Delay();
  std::lock_guard<std::mutex> lock(mu);
  const Json *card, *mig;
  if (nvmlReturn_t r = Resolve(d, &card, &mig); r != NVML_SUCCESS) return r;
  if (mig || !card->contains("mig")) return NVML_ERROR_NOT_SUPPORTED;
  *count = kMigSlots;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t d, unsigned int index,
                                                 nvmlDevice_t* out) {
  Delay();
  std::lock_guard<std::mutex> lock(mu);
  const Json *card, *mig;
  int c = 0;
  if (nvmlReturn_t r = Resolve(d, &card, &mig, &c); r != NVML_SUCCESS) return r;
  if (mig || !card->contains("mig")) return NVML_ERROR_NOT_SUPPORTED;
  const Json& migs = Migs(*card);
  for (size_t i = 0; i < migs.size(); ++i) {
    if (migs[i].value("slot", static_cast<int>(i)) == static_cast<int>(index)) {
      *out = Handle(c, static_cast<int>(index));
      return NVML_SUCCESS;
    }
  }
  return NVML_ERROR_NOT_FOUND;
}

nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t d, unsigned int* id) {
  Delay();
  std::lock_guard<std::mutex> lock(mu);
  const Json *card, *mig;
  if (nvmlReturn_t r = Resolve(d, &card, &mig); r != NVML_SUCCESS) return r;
  if (mig == nullptr) return NVML_ERROR_NOT_SUPPORTED;
  int slot = static_cast<int>(reinterpret_cast<uintptr_t>(d) & 0xff) - 1;
  *id = mig->value("gpu_instance", static_cast<unsigned int>(slot + 1));
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t* set) {
  Delay();
  std::lock_guard<std::mutex> lock(mu);
  if (init_count == 0) return NVML_ERROR_UNINITIALIZED;
  *set = new nvmlEventSet_st();
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t d, unsigned long long types,
                                      nvmlEventSet_t set) {
  Delay();
  std::lock_guard<std::mutex> lock(mu);
  const Json *card, *mig;
  int c = 0;
  if (nvmlReturn_t r = Resolve(d, &card, &mig, &c); r != NVML_SUCCESS) return r;
  if (mig != nullptr) return NVML_ERROR_NOT_SUPPORTED;  // as the driver: cards only
  if ((types & ~nvmlEventTypeXidCriticalError) != 0) return NVML_ERROR_NOT_SUPPORTED;
  set->cards.insert(c);
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t* data,
                                 unsigned int timeoutms) {
  Delay();
  {
    std::lock_guard<std::mutex> lock(mu);
    const Json& gpus = Gpus();
    for (int c : set->cards) {
      if (c >= static_cast<int>(gpus.size()) || !gpus[c].contains("xids")) continue;
      const Json& xids = gpus[c]["xids"];
      size_t& next = set->delivered[c];
      if (!xids.is_array() || next >= xids.size()) continue;
      const Json& x = xids[next++];
      *data = nvmlEventData_t{};
      data->device = Handle(c, -1);
      data->eventType = nvmlEventTypeXidCriticalError;
      data->eventData = x.is_object() ? x.value("xid", 0ULL) : x.get<unsigned long long>();
      data->gpuInstanceId = x.is_object() ? x.value("gpu_instance", NVML_NO_GPU_INSTANCE)
                                          : NVML_NO_GPU_INSTANCE;
      data->computeInstanceId = NVML_NO_GPU_INSTANCE;
      return NVML_SUCCESS;
    }
  }
  // Nothing waiting: no test needs an event that arrives during the wait.
  if (timeoutms > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(timeoutms, 10u)));
  }
  return NVML_ERROR_TIMEOUT;
}

nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set) {
  delete set;
  return NVML_SUCCESS;
}

}  // extern "C"
