// Driving tests/fake_nvml.cc, the fake libnvidia-ml.so.1, from a test: where the
// library is, and a config file written atomically so the processes under test
// (which read it again whenever it changes) never see half of it.
#ifndef SWEEP_TESTS_FAKE_NVML_H_
#define SWEEP_TESTS_FAKE_NVML_H_

#include <dlfcn.h>
#include <stdio.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tests/testing.h"

namespace sweep::testing {

// The folders holding the fake libnvidia-ml.so.1, and one lacking
// nvmlDeviceGetComputeRunningProcesses_v3 (an NVML too old).
inline std::string FakeNvmlDir() { return FAKE_NVML_DIR; }
inline std::string OldFakeNvmlDir() { return FAKE_NVML_OLD_DIR; }
inline std::string FakeNvmlLibrary() { return FakeNvmlDir() + "/libnvidia-ml.so.1"; }

// Whether this machine has a real NVML the dynamic linker finds (then tests of a
// node without the driver do not apply).
inline bool RealNvmlPresent() {
  void* h = dlopen("libnvidia-ml.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (h) dlclose(h);
  return h != nullptr;
}

// The fake's config (tests/fake_nvml.cc says what it holds).
class FakeNvml {
 public:
  explicit FakeNvml(std::string path) : path_(std::move(path)) {}
  const std::string& path() const { return path_; }
  nlohmann::json& config() { return config_; }

  // Writes config() to the file, atomically.
  void Write() {
    std::string tmp = path_ + ".tmp";
    WriteFile(tmp, config_.dump(2));
    rename(tmp.c_str(), path_.c_str());
  }
  void Write(nlohmann::json config) {
    config_ = std::move(config);
    Write();
  }
  // The environment that makes a process under test load the fake and read this
  // config ("KEY=VALUE", for Cluster::StartWorkerWith and RunSweep).
  std::vector<std::string> Env() const {
    std::string ld = Env("LD_LIBRARY_PATH");
    return {"LD_LIBRARY_PATH=" + FakeNvmlDir() + (ld.empty() ? "" : ":" + ld),
            "SWEEP_FAKE_NVML=" + path_};
  }

 private:
  static std::string Env(const char* name) { return ::sweep::testing::Env(name); }
  std::string path_;
  nlohmann::json config_;
};

// `n` cards GPU-fake-0... of `memory_mib`, at 50% utilization drawing 100 W, whose
// processes are listed in `processes_file` ("pid, uuid, MiB" lines).
inline nlohmann::json FakeCards(int n, int64_t memory_mib = 16384,
                                const std::string& processes_file = "") {
  nlohmann::json gpus = nlohmann::json::array();
  for (int i = 0; i < n; ++i) {
    gpus.push_back({{"uuid", absl::StrCat("GPU-fake-", i)},
                    {"name", "Fake GPU"},
                    {"memory_mib", memory_mib},
                    {"utilization", 50},
                    {"power_w", 100}});
  }
  nlohmann::json c = {{"gpus", gpus}};
  if (!processes_file.empty()) c["processes_file"] = processes_file;
  return c;
}

}  // namespace sweep::testing

#endif  // SWEEP_TESTS_FAKE_NVML_H_
