// Network namespaces for the multi-node tests: a NetLab makes namespaces ("nodes")
// and veth links between them with iproute2, and deletes them all when it goes out
// of scope, also when the test fails. Processes are started in a namespace with
// `ip netns exec NAME argv...`; ip execs the program, so the ChildProcess's pid is the
// program's own and PR_SET_PDEATHSIG still applies to it.
//
// Names are unique per test process and lab (they carry the pid and a counter), so
// tests may run in parallel. A lab left behind by a test process that crashed is
// removed by the next lab made on the machine.
//
// Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and the `ip` program; where either is
// missing, NetLab::Make returns the reason and the test skips.
#ifndef SWEEP_TESTS_NETNS_H_
#define SWEEP_TESTS_NETNS_H_

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "common/status_util.h"
#include "tests/testing.h"

namespace sweep::testing {


// Whether `pid` runs (a zombie waiting to be reaped does not).
inline bool Running(pid_t pid) {
  std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

class NetLab {
 public:
  // A lab whose names start with a prefix unique to this process and call. On
  // failure (no `ip`, namespaces refused) returns the reason, for GTEST_SKIP.
  static absl::StatusOr<std::unique_ptr<NetLab>> Make() {
    static std::atomic<int> labs{0};
    std::unique_ptr<NetLab> lab(new NetLab(absl::StrCat(getpid(), "x", labs++)));
    lab->RemoveAbandoned();
    CommandResult probe = RunCommand({"ip", "-V"}, lab->dir_);
    if (probe.exit_code != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("iproute2's `ip` cannot be run here: ", probe.err));
    }
    return lab;
  }

  ~NetLab() {
    // Deleting a namespace destroys its veth ends, and with them their peers.
    for (auto it = namespaces_.rbegin(); it != namespaces_.rend(); ++it) {
      RunCommand({"ip", "netns", "del", *it}, dir_);
    }
  }

  // Makes a namespace for `role` ("sched", "a", ...) with loopback up; returns its name.
  absl::StatusOr<std::string> AddNode(const std::string& role) {
    std::string name = absl::StrCat(kPrefix, tag_, "-", role);
    CommandResult r = RunCommand({"ip", "netns", "add", name}, dir_);
    if (r.exit_code != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot create network namespace ", name, " (`ip netns add` exit ", r.exit_code,
          "): ", absl::StripAsciiWhitespace(r.err),
          "; this test needs root and a kernel/container that allows namespaces"));
    }
    namespaces_.push_back(name);
    SWEEP_RETURN_IF_ERROR(Ip({"-n", name, "link", "set", "lo", "up"}));
    return name;
  }

  // The two ends of a veth link.
  struct Veth {
    std::string a, b;  // interface names in the first and the second namespace
  };

  // Joins namespaces `a` and `b` with a veth pair, address `cidr_a` (e.g.
  // "10.1.2.1/24") on `a`'s end and `cidr_b` on `b`'s, both up. The ends are made
  // in their namespaces directly, so their names never appear in ours.
  absl::StatusOr<Veth> Link(const std::string& a, const std::string& cidr_a,
                            const std::string& b, const std::string& cidr_b) {
    int k = links_++;
    Veth v{absl::StrCat("v", tag_, "l", k, "a"), absl::StrCat("v", tag_, "l", k, "b")};
    SWEEP_RETURN_IF_ERROR(Ip({"link", "add", v.a, "netns", a, "type", "veth", "peer",
                              "name", v.b, "netns", b}));
    SWEEP_RETURN_IF_ERROR(Ip({"-n", a, "addr", "add", cidr_a, "dev", v.a}));
    SWEEP_RETURN_IF_ERROR(Ip({"-n", b, "addr", "add", cidr_b, "dev", v.b}));
    SWEEP_RETURN_IF_ERROR(Ip({"-n", a, "link", "set", v.a, "up"}));
    SWEEP_RETURN_IF_ERROR(Ip({"-n", b, "link", "set", v.b, "up"}));
    return v;
  }

  // Takes the interface `dev` in namespace `ns` down (`up` false) or up again.
  absl::Status SetLink(const std::string& ns, const std::string& dev, bool up) {
    return Ip({"-n", ns, "link", "set", dev, up ? "up" : "down"});
  }

  // `argv` to run in namespace `ns`.
  static std::vector<std::string> In(const std::string& ns, std::vector<std::string> argv) {
    argv.insert(argv.begin(), {"ip", "netns", "exec", ns});
    return argv;
  }

  // The inode of namespace `ns`: what `readlink /proc/self/ns/net` shows inside it,
  // as "net:[INODE]".
  static std::string Identity(const std::string& ns) {
    struct stat st {};
    if (stat(absl::StrCat("/run/netns/", ns).c_str(), &st) != 0) return "";
    return absl::StrCat("net:[", st.st_ino, "]");
  }

  // "10.N.`i`": a /24 of 10.0.0.0/8 for link `i`, N from our pid. Addresses only have
  // to be unique within a lab (its links live in its own namespaces), but distinct
  // ones make logs of parallel tests easier to tell apart.
  static std::string Subnet(int i) { return absl::StrCat("10.", 1 + getpid() % 250, ".", i); }

 private:
  static constexpr char kPrefix[] = "sweeptest-";

  explicit NetLab(std::string tag) : tag_(std::move(tag)) {}

  // Runs `ip ARGS...`; a failure names the command and ip's message.
  absl::Status Ip(std::vector<std::string> args) {
    args.insert(args.begin(), "ip");
    CommandResult r = RunCommand(args, dir_);
    if (r.exit_code == 0) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(
        "`", absl::StrJoin(args, " "), "` failed (exit ", r.exit_code,
        "): ", absl::StripAsciiWhitespace(r.err)));
  }

  // Deletes namespaces of earlier labs whose test process is gone (it crashed before
  // its destructors ran).
  void RemoveAbandoned() {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/run/netns", ec)) {
      std::string name = e.path().filename().string();
      if (!absl::StartsWith(name, kPrefix)) continue;
      std::string pid_text = name.substr(sizeof(kPrefix) - 1);
      pid_text = pid_text.substr(0, pid_text.find('x'));
      int pid = 0;
      if (!absl::SimpleAtoi(pid_text, &pid) || pid <= 0) continue;
      if (kill(pid, 0) == 0 || errno != ESRCH) continue;  // its owner still runs
      RunCommand({"ip", "netns", "del", name}, dir_);
    }
  }

  TempDir dir_;  // the output of the ip commands
  std::string tag_;
  int links_ = 0;
  std::vector<std::string> namespaces_;
};

}  // namespace sweep::testing

#endif  // SWEEP_TESTS_NETNS_H_
