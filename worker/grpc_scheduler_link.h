// The SchedulerLink over gRPC: the only place in the worker that includes a gRPC
// header for the WorkerService.
//
// One channel for all the slots of a worker process (TLS when a CA is given, the
// shared token on every call; reconnect backoff at most 2 s, so a scheduler that
// comes back is found quickly). Each call has a deadline of 10 s (LeaseTrial: its
// wait_ms more). gRPC statuses become absl ones with the same code and message,
// except DEADLINE_EXCEEDED, which becomes Unavailable (the scheduler did not
// answer in time: retry).
//
// Thread-safe. Lifecycle: create once per worker process, outlive the slots.
#ifndef SWEEP_WORKER_GRPC_SCHEDULER_LINK_H_
#define SWEEP_WORKER_GRPC_SCHEDULER_LINK_H_

#include <memory>
#include <string>

#include "common/rpc.h"
#include "worker/scheduler_link.h"

namespace sweep {

// A link to the scheduler at `address`; it connects lazily (on the first call) and
// never fails to be created.
std::unique_ptr<SchedulerLink> NewGrpcSchedulerLink(const std::string& address,
                                                    const RpcSecurity& security);

}  // namespace sweep

#endif  // SWEEP_WORKER_GRPC_SCHEDULER_LINK_H_
