// Network addresses: where the scheduler listens by default, and which addresses only
// this machine can reach: the one loopback rule that the scheduler (may it listen
// without a token?), the dashboard (its Host check and token) and `sweep slurm
// workers` (a scheduler address that workers elsewhere cannot reach) share.
// Thread-safe (constants and pure functions).
#ifndef SWEEP_COMMON_ADDRESS_H_
#define SWEEP_COMMON_ADDRESS_H_

#include <string_view>

namespace sweep {

// The scheduler's gRPC address and its dashboard's, by default: loopback, so that
// nothing beyond this machine reaches them until told to. Clients (workers, the
// CLI) dial kDefaultSchedulerAddress unless told otherwise.
inline constexpr char kDefaultSchedulerAddress[] = "127.0.0.1:50051";
inline constexpr char kDefaultDashboardAddress[] = "127.0.0.1:8080";

// Returns whether `host` names this machine's loopback interface only: "localhost"
// (any case), an IPv4 address in 127.0.0.0/8 written as a dotted quad, or the IPv6
// loopback (::1 in any spelling, or ::ffff:127.x.y.z), with or without brackets.
// False for everything else: other names (even "127.example.com"), the wildcard
// addresses (0.0.0.0, ::), the empty string and shorthand forms such as "127.1".
bool IsLoopbackHost(std::string_view host);

// As IsLoopbackHost for the host of an address as gRPC, the dashboard or a Host
// header give it: "HOST:PORT", "[V6]:PORT", "HOST", "[V6]", a bare IPv6 address,
// each optionally after gRPC's "ipv4:", "ipv6:" or "dns:" (with or without
// "//AUTHORITY/") scheme. ":PORT" (every interface) and an unclosed "[" are not
// loopback.
bool IsLoopbackAddress(std::string_view address);

}  // namespace sweep

#endif  // SWEEP_COMMON_ADDRESS_H_
