// GPU discovery and telemetry behind one interface each, so tests can fake the GPUs
// a node has.
//
// The real implementations talk to the NVIDIA driver through NVML
// (`libnvidia-ml.so.1`), loaded at run time by that name (worker/internal/nvml.h):
// nothing links it, so sweep builds and runs on machines without the driver, and
// LD_LIBRARY_PATH selects another copy (the tests put a fake one, built from
// tests/fake_nvml.cc, first on it). nvidia-smi is not run.
//
// Devices. A card is a slot device unless it is in MIG mode; then each of its MIG
// devices (slices) is one, named by its `MIG-...` UUID, with the slice's own memory.
//
// Thread safety: every function and method is thread-safe. NVML calls can take as
// long as the driver takes (seconds on a busy or failing node): call them only
// where waiting is harmless (start-up, GpuMonitor's sampler thread), never on the
// path of a heartbeat, a lease or a trial's start and end.
#ifndef SWEEP_WORKER_GPU_H_
#define SWEEP_WORKER_GPU_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sweep {

// The name NVML is loaded by.
inline constexpr char kNvmlLibrary[] = "libnvidia-ml.so.1";

// A card or a MIG device of a card.
struct Gpu {
  // The card's NVML index, which is CUDA's index under CUDA_DEVICE_ORDER=PCI_BUS_ID;
  // for a MIG device, its card's.
  int index = 0;
  std::string uuid;          // "GPU-..." for a card, "MIG-..." for a MIG device
  std::string name;          // "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-40GB MIG 1g.5gb"
  int64_t memory_mib = 0;    // a MIG device: the slice's own memory
  bool mig_enabled = false;  // a card in MIG mode: its MIG devices run trials, not it
  int mig_index = -1;        // a MIG device: its index among its card's; -1 for a card
  std::string parent_uuid;   // a MIG device: its card's UUID

  bool is_mig_device() const { return mig_index >= 0; }
  // Whether trials run on it: a card outside MIG mode, or a MIG device.
  bool runs_trials() const { return !mig_enabled; }
  // What CUDA_VISIBLE_DEVICES names it by: the index of a card, the UUID of a MIG
  // device.
  std::string CudaName() const;
  // For messages: "GPU 2", or "MIG device MIG-... (GPU 0)".
  std::string Label() const;
};

class GpuDiscovery {
 public:
  virtual ~GpuDiscovery() = default;
  // Returns the node's cards in index order, each card in MIG mode followed by its
  // MIG devices. A card that is lost or cannot be read is left out (with a warning
  // in the log). Errors:
  //   NotFound: no GPU here: NVML cannot be loaded (no NVIDIA driver; the message
  //     says why, in dlerror()'s words, and suggests --cpus N), or it lists none;
  //   FailedPrecondition: NVML is there but unusable: too old (names the missing
  //     function) or it failed to start (NVML's error).
  virtual absl::StatusOr<std::vector<Gpu>> Discover() = 0;
  // Where the GPUs come from, for people: "NVML (/usr/lib/.../libnvidia-ml.so.1)".
  // Meaningful after a successful Discover().
  virtual std::string Source() const = 0;
};

// Discovery through NVML loaded from `library`.
std::unique_ptr<GpuDiscovery> NewNvmlDiscovery(const std::string& library = kNvmlLibrary);

// One reading of one device (a card or a MIG device).
struct GpuSample {
  std::string uuid;
  int64_t memory_used_mib = 0;
  int64_t memory_total_mib = 0;
  std::optional<double> utilization;    // percent; none where the driver has none (MIG)
  std::optional<double> power_watts;    // none where not supported
  // The driver's energy counter (joules since it loaded; Volta and newer cards);
  // none where not supported (older cards, MIG devices).
  std::optional<double> energy_joules;
  // Not empty when the device could not be read: NVML's words. The other fields
  // are then zero or none.
  std::string error;
  // NVML_ERROR_GPU_IS_LOST: the card fell off the bus. It does not come back
  // without a reset: stop using it.
  bool lost = false;
};

// A process that holds memory on a device.
struct GpuProcess {
  int pid = 0;
  std::string uuid;            // of the device (for a MIG device, its MIG UUID)
  int64_t used_mib = 0;        // 0 when the driver does not say
};

// An Xid error the driver reported for a device (NVML's critical-Xid event; the
// kernel log says "NVRM: Xid (PCI:...): 79, ...").
struct GpuFault {
  std::string uuid;  // the device it hit: a card, or one MIG device of a card
  int64_t xid = 0;
};

// What an Xid means for the device and its trials. NVIDIA's Xid catalogue sorts
// them by cause; sweep acts on three kinds:
enum class XidKind {
  // The card is broken until a reset (an uncorrectable ECC error, fallen off the
  // bus, NVLink or GSP firmware failure): its slots take no more trials, and the
  // trials running there go back to the queue without using a retry.
  kDevice,
  // The hardware failed one application and contained it (a contained ECC
  // error): the trial that failed with it goes back to the queue without using a
  // retry; the device goes on.
  kTrial,
  // The program's own doing (an illegal address, a page fault, a kernel that
  // stopped), or an Xid sweep does not know: the trial's failure is its own; the
  // Xid is named in its message.
  kApplication,
};
XidKind ClassifyXid(int64_t xid);
// "Xid 79 (GPU has fallen off the bus)".
std::string XidText(int64_t xid);

// One sampling round.
struct GpuReading {
  std::vector<GpuSample> gpus;          // one per UUID asked for, in that order
  std::vector<GpuProcess> processes;    // on those devices
  // Xid errors reported since the previous round, for any device of the node (an
  // Xid on a card in MIG mode that names no GPU instance hits each of its MIG
  // devices).
  std::vector<GpuFault> faults;
};

class GpuProbe {
 public:
  virtual ~GpuProbe() = default;
  // Reads the devices with these UUIDs, now, and collects the Xid errors reported
  // since the last call (without waiting for any). A device that cannot be read (lost,
  // unknown UUID, an error) has its error in its sample; a figure the device does
  // not support (power on some cards, energy before Volta) is none, not an error.
  // Unavailable only when NVML itself cannot be used (not loaded, not started).
  // Inside a container without the host's PID namespace the process list may be
  // empty although memory is in use. May block as long as the driver does.
  virtual absl::StatusOr<GpuReading> Read(const std::vector<std::string>& uuids) = 0;
};

// Telemetry through NVML loaded from `library`.
std::unique_ptr<GpuProbe> NewNvmlProbe(const std::string& library = kNvmlLibrary);

// Picks the devices trials run on from `all` (Discover()'s answer) by a --gpus or
// --gpu value: "all", or a comma list of card indexes, card UUIDs (GPU-...) and MIG
// device UUIDs (MIG-...). A card in MIG mode stands for its MIG devices. Returns
// them without duplicates, in the order asked. InvalidArgument for a malformed
// list; NotFound for an index or UUID the node lacks, and for a card in MIG mode
// without MIG devices (each message names what was asked and what the node has).
absl::StatusOr<std::vector<Gpu>> SelectGpus(const std::vector<Gpu>& all,
                                            const std::string& which);

}  // namespace sweep

#endif  // SWEEP_WORKER_GPU_H_
