// A private single-node Slurm for the tests: munged, slurmctld and slurmd from
// Debian's packages (slurm-wlm, munge), each run in the foreground as a child of the
// test, with a slurm.conf of its own (passed as SLURM_CONF, never installed), its own
// munge key and socket, state, spool and log directories in a temporary directory,
// and free ports. Nothing of the machine's own Slurm or munge set-up is used.
//
// Needs root (slurmd runs jobs as their users). Start() says why Slurm cannot run
// when it cannot. Stop() (and the destructor) cancels every job, stops the daemons
// and kills whatever is left of the jobs (slurmstepd and its tasks are not our
// children): every process whose environment names this instance's slurm.conf.
#ifndef SWEEP_TESTS_SLURM_LOCAL_SLURM_H_
#define SWEEP_TESTS_SLURM_LOCAL_SLURM_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/testing.h"

namespace sweep::testing {


// The full path of `name` on PATH or in the sbin directories, or "".
inline std::string FindProgram(const std::string& name) {
  std::vector<std::string> dirs = absl::StrSplit(Env("PATH"), ':', absl::SkipEmpty());
  for (const char* d : {"/usr/local/sbin", "/usr/sbin", "/sbin"}) dirs.push_back(d);
  for (const std::string& d : dirs) {
    std::string p = d + "/" + name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

// A TCP port on 127.0.0.1 that was free a moment ago.
inline int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

class LocalSlurm {
 public:
  LocalSlurm() = default;
  LocalSlurm(const LocalSlurm&) = delete;
  LocalSlurm& operator=(const LocalSlurm&) = delete;
  ~LocalSlurm() { Stop(); }

  const TempDir& dir() const { return dir_; }
  std::string conf() const { return dir_ / "slurm.conf"; }
  // The environment a Slurm command needs to reach this instance.
  std::vector<std::string> Env() const { return {"SLURM_CONF=" + conf()}; }

  // Starts the daemons and waits until the node takes jobs. Returns "" then, else
  // why Slurm cannot run here (with the daemons' logs).
  std::string Start() {
    if (geteuid() != 0) return "not root: slurmd runs jobs as their users, so it needs root";
    for (const char* p : {"munged", "slurmctld", "slurmd", "sbatch", "srun", "scancel",
                          "scontrol", "squeue"}) {
      if (FindProgram(p).empty()) {
        return absl::StrCat(p, " not found: scripts/setup.sh installs slurm-wlm and munge");
      }
    }
    namespace fs = std::filesystem;
    // munged wants its socket's directories searchable by everyone.
    chmod(dir_.path().c_str(), 0755);
    for (const char* d : {"munge", "state", "spool", "log"}) fs::create_directories(dir_ / d);
    chmod((dir_ / "munge").c_str(), 0755);
    std::string key = dir_ / "munge/munge.key";
    {
      std::random_device rd;
      std::string bytes;
      for (int i = 0; i < 128; ++i) bytes += static_cast<char>(rd() & 0xff);
      WriteFile(key, bytes);
      chmod(key.c_str(), 0600);
    }
    std::string socket = dir_ / "munge/munge.socket";
    munged_ = Daemon({FindProgram("munged"), "-F", "--socket=" + socket, "--key-file=" + key,
                      "--pid-file=" + (dir_ / "munge/munged.pid"),
                      "--log-file=" + (dir_ / "log/munged.log"),
                      "--seed-file=" + (dir_ / "munge/munged.seed")},
                     "munged.out");
    if (!munged_ || !WaitFor([&] { return fs::exists(socket); }, absl::Seconds(10))) {
      return "munged did not start:\n" + Logs();
    }

    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    node_ = std::string(host).substr(0, std::string(host).find('.'));
    if (node_.empty()) node_ = "localhost";
    int ctld_port = FreePort(), slurmd_port = FreePort();
    while (slurmd_port == ctld_port) slurmd_port = FreePort();
    WriteFile(dir_ / "plugstack.conf", "");
    WriteFile(conf(), absl::StrCat(
        "ClusterName=sweeptest\n",
        "SlurmctldHost=", node_, "(127.0.0.1)\n",
        "SlurmctldPort=", ctld_port, "\n",
        "SlurmdPort=", slurmd_port, "\n",
        "SlurmUser=root\nSlurmdUser=root\n",
        "AuthType=auth/munge\nCredType=cred/munge\n",
        "AuthInfo=socket=", socket, "\n",
        "StateSaveLocation=", dir_ / "state", "\n",
        "SlurmdSpoolDir=", dir_ / "spool", "\n",
        "SlurmctldPidFile=", dir_ / "slurmctld.pid", "\n",
        "SlurmdPidFile=", dir_ / "slurmd.pid", "\n",
        "SlurmctldLogFile=", dir_ / "log/slurmctld.log", "\n",
        "SlurmdLogFile=", dir_ / "log/slurmd.log", "\n",
        "PlugStackConfig=", dir_ / "plugstack.conf", "\n",
        // No cgroups needed: tasks are tracked as a process tree.
        "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n",
        "SelectType=select/cons_tres\nSelectTypeParameters=CR_CPU\n",
        "SchedulerType=sched/builtin\n",
        "JobCompType=jobcomp/none\nJobAcctGatherType=jobacct_gather/none\n",
        "AccountingStorageType=accounting_storage/none\n",
        "MpiDefault=none\nReturnToService=2\nKillWait=5\n",
        // The node is declared, not probed: 2 CPUs whatever the machine has.
        "SlurmdParameters=config_overrides\n",
        "NodeName=", node_, " NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN\n",
        "PartitionName=sweeptest Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n"));
    slurmctld_ = Daemon({FindProgram("slurmctld"), "-D", "-i"}, "slurmctld.out");
    slurmd_ = Daemon({FindProgram("slurmd"), "-D", "-N", node_}, "slurmd.out");
    if (!slurmctld_ || !slurmd_) return "slurmctld or slurmd did not start:\n" + Logs();
    absl::Time deadline = absl::Now() + absl::Seconds(40);
    while (!NodeState().starts_with("IDLE")) {
      if (absl::Now() > deadline) {
        return "the Slurm node did not become idle within 40 s:\n" + Logs();
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
    return "";
  }

  // scontrol's `State=` of our node ("IDLE", "ALLOCATED", "DOWN*"...), or "".
  std::string NodeState() {
    CommandResult r = RunCommand({"scontrol", "show", "node", node_}, dir_, Env());
    return Field(r.out, "State");
  }

  // A field of `scontrol show job ID` ("JobState", "ExitCode", "RunTime"), or "".
  std::string JobField(const std::string& id, const std::string& field) {
    CommandResult r = RunCommand({"scontrol", "show", "job", id}, dir_, Env());
    return Field(r.out, field);
  }

  // Runs a Slurm command against this instance.
  CommandResult Tool(const std::vector<std::string>& argv) { return RunCommand(argv, dir_, Env()); }

  // The daemons' logs, last lines first trimmed to what fits in a failure message.
  std::string Logs() const {
    std::string out;
    for (const char* f : {"log/munged.log", "munged.out", "log/slurmctld.log", "slurmctld.out",
                          "log/slurmd.log", "slurmd.out"}) {
      std::string text = ReadFile(dir_ / f);
      if (text.size() > 3000) text = "..." + text.substr(text.size() - 3000);
      if (!text.empty()) absl::StrAppend(&out, "--- ", f, "\n", text, "\n");
    }
    return out;
  }

  void Stop() {
    if (slurmctld_) {
      CommandResult jobs = Tool({"squeue", "-h", "-o", "%i"});
      for (absl::string_view id : absl::StrSplit(jobs.out, '\n', absl::SkipWhitespace())) {
        Tool({"scancel", std::string(absl::StripAsciiWhitespace(id))});
      }
      absl::Time deadline = absl::Now() + absl::Seconds(20);
      while (!absl::StripAsciiWhitespace(Tool({"squeue", "-h"}).out).empty() &&
             absl::Now() < deadline) {
        absl::SleepFor(absl::Milliseconds(200));
      }
    }
    for (std::optional<ChildProcess>* d : {&slurmd_, &slurmctld_, &munged_}) {
      if (*d) (*d)->Stop(absl::Seconds(3));
      d->reset();
    }
    KillLeftovers();
  }

 private:
  std::optional<ChildProcess> Daemon(const std::vector<std::string>& argv,
                                     const std::string& log) {
    SpawnOptions o;
    o.argv = argv;
    o.env = EnvWith(Env());
    o.stdout_path = dir_ / log;
    o.stderr_path = dir_ / log;
    absl::StatusOr<ChildProcess> c = ChildProcess::Spawn(o);
    if (!c.ok()) {
      WriteFile(dir_ / log, std::string(c.status().message()));
      return std::nullopt;
    }
    return std::move(*c);
  }

  static std::string Field(const std::string& text, const std::string& name) {
    for (absl::string_view word : absl::StrSplit(text, absl::ByAnyChar(" \n"))) {
      if (absl::ConsumePrefix(&word, name + "=")) return std::string(word);
    }
    return "";
  }

  // slurmstepd and the job's processes are not our children; they are ours when
  // their environment names our slurm.conf.
  void KillLeftovers() {
    std::string mark = "SLURM_CONF=" + conf();
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
      std::string name = e.path().filename().string();
      if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
      pid_t pid = std::stoi(name);
      if (pid == getpid()) continue;
      for (absl::string_view kv :
           absl::StrSplit(ReadFile(e.path().string() + "/environ"), '\0')) {
        if (kv == mark) {
          kill(pid, SIGKILL);
          break;
        }
      }
    }
  }

  TempDir dir_;
  std::string node_;
  std::optional<ChildProcess> munged_, slurmctld_, slurmd_;
};

}  // namespace sweep::testing

#endif  // SWEEP_TESTS_SLURM_LOCAL_SLURM_H_
