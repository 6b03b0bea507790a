// What the worker knows of sweep-train: the contract between the two programs, in
// one header that includes nothing of LibTorch, so that the worker (which never
// links the trainer) and the trainer name the same things (docs/trainer.md).
//
//  - The binary is called kBinaryName; the worker gives it special treatment (the
//    memory estimate before the start, exit code kExitOutOfMemory read as `oom`)
//    only when the trial's argv[0] has that file name.
//  - `sweep-train ARGS --estimate-memory` prints, as its last stdout line, a JSON
//    object with the estimate in bytes under kEstimateTotalKey (and its parts),
//    exits 0, and loads no data.
#ifndef SWEEP_TRAINER_CONTRACT_H_
#define SWEEP_TRAINER_CONTRACT_H_

namespace sweep::trainer {

inline constexpr char kBinaryName[] = "sweep-train";
inline constexpr char kEstimateMemoryFlag[] = "--estimate-memory";
inline constexpr char kEstimateTotalKey[] = "total_bytes";

// sweep-train's exit codes.
inline constexpr int kExitTrained = 0;
inline constexpr int kExitInternal = 1;
inline constexpr int kExitBadInput = 2;      // parameters, data files, checkpoints
inline constexpr int kExitNoCuda = 3;        // device cuda asked for, CUDA not available
inline constexpr int kExitDiverged = 4;      // the training loss became NaN or infinite
inline constexpr int kExitOutOfMemory = 5;   // the device (or host) ran out of memory
inline constexpr int kExitStopped = 128 + 15;  // SIGTERM: stopped at a step boundary

}  // namespace sweep::trainer

#endif  // SWEEP_TRAINER_CONTRACT_H_
