// The LibTorch side of `sweep-train doctor`. LibTorch calls go through
// TorchCall; the NVIDIA driver is asked through dlopen'ed entry points whose
// C signatures are declared here, so this builds against any LibTorch.
#include "trainer/doctor.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <sched.h>
#include <torch/cuda.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "trainer/internal/torch_guard.h"
#include "trainer/trainer.h"

namespace sweep::trainer {
namespace {

using Json = nlohmann::ordered_json;
using internal::TorchCall;

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
// A GPU product may use TF32; anything further off than this is wrong.
constexpr double kMatmulTolerance = 1e-2;

struct DeviceInfo {
  int index = 0;
  std::string name;
  int64_t total_bytes = -1;  // -1: unknown
  int64_t free_bytes = -1;
};

// What the NVIDIA driver says, asked directly (libcuda.so.1).
struct DriverInfo {
  bool loaded = false;
  std::string error;  // why it could not tell, or ""
  int version = 0;    // e.g. 12040
  int device_count = 0;
  std::vector<DeviceInfo> devices;
};

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// The driver API entry points used here (CUresult is an int, CUdevice an int,
// CUcontext an opaque pointer).
DriverInfo ProbeDriver(bool free_memory) {
  DriverInfo d;
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    d.error = "libcuda.so.1 not found: no NVIDIA driver on this machine";
    return d;
  }
  d.loaded = true;
  using InitFn = int (*)(unsigned);
  using IntFn = int (*)(int*);
  using GetFn = int (*)(int*, int);
  using NameFn = int (*)(char*, int, int);
  using TotalFn = int (*)(size_t*, int);
  using RetainFn = int (*)(void**, int);
  using PushFn = int (*)(void*);
  using PopFn = int (*)(void**);
  using MemFn = int (*)(size_t*, size_t*);
  using ReleaseFn = int (*)(int);
  using ErrFn = int (*)(int, const char**);
  auto sym = [&](const char* name) { return dlsym(lib, name); };
  auto init = reinterpret_cast<InitFn>(sym("cuInit"));
  auto version = reinterpret_cast<IntFn>(sym("cuDriverGetVersion"));
  auto count = reinterpret_cast<IntFn>(sym("cuDeviceGetCount"));
  auto get = reinterpret_cast<GetFn>(sym("cuDeviceGet"));
  auto name = reinterpret_cast<NameFn>(sym("cuDeviceGetName"));
  auto total = reinterpret_cast<TotalFn>(sym("cuDeviceTotalMem_v2"));
  auto retain = reinterpret_cast<RetainFn>(sym("cuDevicePrimaryCtxRetain"));
  auto push = reinterpret_cast<PushFn>(sym("cuCtxPushCurrent_v2"));
  auto pop = reinterpret_cast<PopFn>(sym("cuCtxPopCurrent_v2"));
  auto mem = reinterpret_cast<MemFn>(sym("cuMemGetInfo_v2"));
  auto release =
      reinterpret_cast<ReleaseFn>(sym("cuDevicePrimaryCtxRelease_v2"));
  auto err = reinterpret_cast<ErrFn>(sym("cuGetErrorString"));
  if (!init || !version || !count || !get || !name || !total) {
    d.error = "libcuda.so.1 lacks the driver API's basic entry points";
    return d;
  }
  auto why = [&](const char* call, int rc) {
    const char* text = nullptr;
    if (err) err(rc, &text);
    return absl::StrCat(call, " failed: error ", rc, " (",
                        text ? text : "unknown", ")");
  };
  version(&d.version);
  if (int rc = init(0); rc != 0) {
    d.error = why("cuInit", rc);
    return d;
  }
  if (int rc = count(&d.device_count); rc != 0) {
    d.error = why("cuDeviceGetCount", rc);
    return d;
  }
  for (int i = 0; i < d.device_count; ++i) {
    DeviceInfo info;
    info.index = i;
    int dev = 0;
    if (get(&dev, i) != 0) continue;
    char buf[256] = {};
    if (name(buf, sizeof(buf) - 1, dev) == 0) info.name = buf;
    size_t bytes = 0;
    if (total(&bytes, dev) == 0) info.total_bytes = static_cast<int64_t>(bytes);
    void* ctx = nullptr;
    // Free memory needs a context: the primary one, which LibTorch uses too.
    if (free_memory && retain && push && pop && mem && release &&
        retain(&ctx, dev) == 0) {
      size_t free_b = 0, total_b = 0;
      if (push(ctx) == 0) {
        if (mem(&free_b, &total_b) == 0)
          info.free_bytes = static_cast<int64_t>(free_b);
        pop(&ctx);
      }
      release(dev);
    }
    d.devices.push_back(info);
  }
  return d;
}

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
      .count();
}

void Sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize(d.index());
}

// Median microseconds of one scalar multiplication: the operand copied to `d`,
// multiplied there, and the product copied back to the host.
double ScalarMicros(const torch::Device& d, int reps) {
  torch::Tensor a = torch::full({}, 1.5f);
  std::vector<double> us;
  double sink = 0;
  for (int i = -10; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    torch::Tensor x = a.to(d);
    sink += (x * x).item<float>();  // item(): back to the host, synchronized
    if (i >= 0) us.push_back(Since(t0) * 1e6);
  }
  std::nth_element(us.begin(), us.begin() + us.size() / 2, us.end());
  return sink > 0 ? us[us.size() / 2] : -1;
}

struct Matmul {
  int64_t size = 0;
  int warmup = 0, reps = 0;
  double seconds = 0;  // per product
  double gflops = 0;
  Json ToJson() const {
    return {{"size", size},
            {"warmup", warmup},
            {"reps", reps},
            {"seconds", seconds},
            {"gflops", gflops}};
  }
};

// Times a x b for n x n fp32 matrices made on the host and copied to `d`
// (not timed); `product` gets the result, on the host.
Matmul TimeMatmul(const torch::Device& d, int64_t n, int warmup, int reps,
                  torch::Tensor* product = nullptr) {
  torch::manual_seed(0);
  torch::Tensor a = torch::randn({n, n}).to(d);
  torch::Tensor b = torch::randn({n, n}).to(d);
  torch::Tensor c;
  for (int i = 0; i < warmup; ++i) c = torch::mm(a, b);
  Sync(d);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) c = torch::mm(a, b);
  Sync(d);
  Matmul m{.size = n, .warmup = warmup, .reps = reps};
  m.seconds = Since(t0) / reps;
  m.gflops = 2.0 * n * n * n / m.seconds / 1e9;
  if (product) *product = c.to(torch::kCPU);
  return m;
}

std::string Bytes(int64_t b) {
  return b < 0 ? "unknown" : absl::StrFormat("%.1f GiB", b / kGiB);
}

std::string Speedup(double x) {
  return x >= 1 ? absl::StrFormat("%.1fx faster on the GPU", x)
                : absl::StrFormat("%.2fx: slower on the GPU", x);
}

}  // namespace

absl::StatusOr<DoctorOptions> ParseDoctorArgs(
    const std::vector<std::string>& args) {
  DoctorOptions o;
  for (const std::string& a : args) {
    std::string key = a.substr(0, a.find('='));
    std::string value =
        a.find('=') == std::string::npos ? "" : a.substr(a.find('=') + 1);
    int64_t* number = key == "--cpu-size"   ? &o.cpu_size
                      : key == "--gpu-size" ? &o.gpu_size
                      : key == "--device"   ? &o.device
                      : key == "--threads"  ? &o.threads
                                            : nullptr;
    if (a == "--json" || a == "doctor" || a == "--doctor") {
      o.json = o.json || a == "--json";
    } else if (key == "--json-file" && !value.empty()) {
      o.json_file = value;
    } else if (number != nullptr) {
      if (!absl::SimpleAtoi(value, number) || *number < 0 ||
          (absl::EndsWith(key, "-size") && (*number < 16 || *number > 65536)) ||
          (key == "--threads" && (*number < 1 || *number > 1024))) {
        return absl::InvalidArgumentError(absl::StrCat(
            "doctor: ", key,
            key == "--device"    ? " wants a device index >= 0"
            : key == "--threads" ? " wants a thread count in [1, 1024]"
                                 : " wants a matrix size in [16, 65536]",
            ", got '", value, "'"));
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "doctor: unknown argument ", a,
          " (known: --json, --json-file=PATH, --cpu-size=N, --gpu-size=N, "
          "--device=N, --threads=N)"));
    }
  }
  return o;
}

int RunDoctor(const DoctorOptions& o) {
  Json j;
  std::vector<std::string> lines, problems;
  auto say = [&](std::string line) { lines.push_back(std::move(line)); };

  // CUDA as LibTorch sees it, and as the driver does.
  bool built = TorchBuiltWithCuda();
  bool available = false;
  int64_t count = 0;
  absl::Status probe =
      TorchCall("probing CUDA", absl::StatusCode::kInternal, [&] {
        available = torch::cuda::is_available();
        count = static_cast<int64_t>(torch::cuda::device_count());
      });
  DriverInfo driver = ProbeDriver(/*free_memory=*/true);
  std::string visible = std::getenv("CUDA_VISIBLE_DEVICES")
                            ? absl::StrCat("CUDA_VISIBLE_DEVICES=\"",
                                           Env("CUDA_VISIBLE_DEVICES"), "\"")
                            : "CUDA_VISIBLE_DEVICES unset";
  std::string reason;
  if (!probe.ok()) {
    reason = std::string(probe.message());
  } else if (!built) {
    reason =
        "this LibTorch was built without CUDA (a CPU-only build such as "
        "Debian's libtorch; build sweep-train against PyTorch's CUDA "
        "LibTorch, see docs/trainer.md)";
  } else if (!available || count == 0) {
    if (!driver.error.empty()) {
      reason =
          absl::StrCat("no usable device: ", driver.error, " (", visible, ")");
    } else if (driver.device_count > 0) {
      reason = absl::StrCat(
          "the driver sees ", driver.device_count,
          " device(s) but LibTorch none: is the driver (version ",
          driver.version,
          ") older than LibTorch's CUDA runtime? LibTorch's warning on stderr "
          "says more (",
          visible, ")");
    } else {
      reason = absl::StrCat("no CUDA device is visible (", visible, ")");
    }
  }
  available = available && count > 0 && reason.empty();
  if (!available) count = 0;

  j["libtorch"] = TORCH_VERSION;
  j["built_with_cuda"] = built;
  j["cuda_available"] = available;
  if (!available) j["cuda_unavailable_because"] = reason;
  j["device_count"] = count;
  j["cuda_visible_devices"] = std::getenv("CUDA_VISIBLE_DEVICES")
                                  ? Json(Env("CUDA_VISIBLE_DEVICES"))
                                  : Json(nullptr);
  Json jd = {{"loaded", driver.loaded}, {"device_count", driver.device_count}};
  if (driver.version) jd["version"] = driver.version;
  if (!driver.error.empty()) jd["error"] = driver.error;
  j["driver"] = jd;
  j["devices"] = Json::array();
  for (const DeviceInfo& d : driver.devices) {
    j["devices"].push_back({{"index", d.index},
                            {"name", d.name},
                            {"total_bytes", d.total_bytes},
                            {"free_bytes", d.free_bytes}});
  }

  say(absl::StrCat("LibTorch ", TORCH_VERSION,
                   ", built with CUDA: ", built ? "yes" : "no"));
  say(absl::StrCat("NVIDIA driver: ",
                   driver.error.empty()
                       ? absl::StrCat("version ", driver.version, ", ",
                                      driver.device_count, " device(s)")
                       : driver.error));
  if (available) {
    say(absl::StrCat("CUDA: usable, ", count, " device(s) (", visible, ")"));
  } else {
    say(absl::StrCat("CUDA: not usable: ", reason));
  }
  for (const DeviceInfo& d : driver.devices) {
    say(absl::StrCat("  cuda:", d.index, " ", d.name, ": ",
                     Bytes(d.total_bytes), " total, ", Bytes(d.free_bytes),
                     " free"));
  }
  if (available && driver.devices.empty()) {
    say("  device names and memory: unknown (LibTorch does not tell them "
        "and the driver could not be asked)");
  }
  if (!available && driver.device_count > 0) {
    problems.push_back(
        absl::StrCat("the NVIDIA driver sees ", driver.device_count,
                     " GPU(s) but this LibTorch cannot use CUDA: ", reason,
                     ". Trials with device=cuda will fail (exit code 3)"));
  }
  if (available && o.device >= count) {
    problems.push_back(absl::StrCat("--device=", o.device, ": only ", count,
                                    " CUDA device(s) visible"));
  }

  // The same work on the CPU (all of it, unless told) and on the GPU.
  int64_t threads = o.threads;
  if (threads == 0) {
    cpu_set_t cpus;
    threads = sched_getaffinity(0, sizeof(cpus), &cpus) == 0
                  ? std::max(1, CPU_COUNT(&cpus))
                  : 1;
  }
  SetTorchThreads(threads);
  j["cpu"] = {{"threads", at::get_num_threads()}};
  double cpu_scalar = 0;
  Matmul cpu_mm;
  torch::Tensor cpu_product;
  absl::Status cpu_st =
      TorchCall("timing the CPU", absl::StatusCode::kInternal, [&] {
        cpu_scalar = ScalarMicros(torch::kCPU, 200);
        cpu_mm = TimeMatmul(torch::kCPU, o.cpu_size, 1, 3, &cpu_product);
      });
  if (!cpu_st.ok()) {
    problems.push_back(std::string(cpu_st.message()));
  } else {
    j["cpu"]["scalar_multiply_us"] = cpu_scalar;
    j["cpu"]["matmul"] = cpu_mm.ToJson();
  }
  if (!available) {
    say("no CUDA device: measuring the CPU only");
    j["gpu"] = nullptr;
  }
  if (cpu_st.ok()) {
    say(absl::StrFormat("CPU, %d thread(s):", at::get_num_threads()));
    say(absl::StrFormat("  scalar multiply: %.1f us (median of 200)",
                        cpu_scalar));
    say(absl::StrFormat(
        "  matmul %dx%d fp32: %.4f s, %.1f GFLOP/s (%d reps after %d warm-up)",
        cpu_mm.size, cpu_mm.size, cpu_mm.seconds, cpu_mm.gflops, cpu_mm.reps,
        cpu_mm.warmup));
  }

  if (available && o.device < count) {
    torch::Device dev(torch::kCUDA, static_cast<c10::DeviceIndex>(o.device));
    double gpu_scalar = 0, difference = 0;
    Matmul same, large;
    absl::Status gpu_st =
        TorchCall("timing the GPU", absl::StatusCode::kInternal, [&] {
          gpu_scalar = ScalarMicros(dev, 200);
          torch::Tensor product;
          same = TimeMatmul(dev, o.cpu_size, 3, 20, &product);
          if (cpu_product.defined()) {
            difference =
                ((product - cpu_product).abs().max() / cpu_product.abs().max())
                    .item<double>();
          }
          large = TimeMatmul(dev, o.gpu_size, 2, 10);
        });
    if (!gpu_st.ok()) {
      problems.push_back(std::string(gpu_st.message()));
      j["gpu"] = nullptr;
    } else {
      std::string name = absl::StrCat("cuda:", o.device);
      j["gpu"] = {{"device", name},
                  {"scalar_multiply_us", gpu_scalar},
                  {"matmul", same.ToJson()},
                  {"matmul_large", large.ToJson()},
                  {"max_relative_difference", difference}};
      say(absl::StrCat("GPU ", name, ":"));
      say(absl::StrFormat(
          "  scalar multiply, host -> device -> host: %.1f us (median of "
          "200)",
          gpu_scalar));
      say(absl::StrFormat(
          "  matmul %dx%d fp32: %.5f s, %.1f GFLOP/s (%d reps after %d "
          "warm-up)",
          same.size, same.size, same.seconds, same.gflops, same.reps,
          same.warmup));
      say(absl::StrFormat(
          "  matmul %dx%d fp32: %.5f s, %.1f GFLOP/s (%d reps after %d "
          "warm-up)",
          large.size, large.size, large.seconds, large.gflops, large.reps,
          large.warmup));
      if (cpu_st.ok()) {
        double s_scalar = cpu_scalar / gpu_scalar;
        double s_mm = cpu_mm.seconds / same.seconds;
        double s_rate = large.gflops / cpu_mm.gflops;
        j["speedup"] = {{"scalar_multiply", s_scalar},
                        {"matmul", s_mm},
                        {"matmul_large_gflops", s_rate}};
        say("GPU / CPU:");
        say(absl::StrCat("  scalar multiply: ", Speedup(s_scalar),
                         " (the transfers dominate)"));
        say(absl::StrFormat("  matmul %dx%d: %s", same.size, same.size,
                            Speedup(s_mm)));
        say(absl::StrFormat("  GFLOP/s, GPU at %d vs CPU at %d: %.0fx",
                            large.size, cpu_mm.size, s_rate));
        say(absl::StrFormat(
            "  the GPU's %dx%d product matches the CPU's (max relative "
            "difference %.2g)",
            same.size, same.size, difference));
        if (!(difference <= kMatmulTolerance)) {
          problems.push_back(absl::StrFormat(
              "the GPU's matrix product differs from the CPU's by %g "
              "(relative): the GPU computes wrong results",
              difference));
        }
      }
    }
  }

  j["problems"] = problems;
  j["ok"] = problems.empty();
  if (!o.json_file.empty()) {
    std::ofstream f(o.json_file);
    f << j.dump() << "\n";
    f.close();
    if (!f) {
      std::cerr << "sweep-train doctor: cannot write " << o.json_file << "\n";
      return 2;
    }
  }
  if (o.json) {
    std::cout << j.dump() << std::endl;
  } else {
    for (const std::string& l : lines) std::cout << l << "\n";
    for (const std::string& p : problems) std::cout << "PROBLEM: " << p << "\n";
    std::cout << (problems.empty() ? "ok" : "not ok") << std::endl;
  }
  return problems.empty() ? 0 : 1;
}

}  // namespace sweep::trainer
