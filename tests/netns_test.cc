// Several nodes as network namespaces made by the test itself: the scheduler in one,
// workers in others, each worker node joined to the scheduler's namespace by its own
// veth link, and a partition made by taking a link down. Real processes, real gRPC
// over the veth links, real SQLite. Skips where namespaces cannot be made.
#include "absl/strings/numbers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/netns.h"

namespace sweep::testing {
namespace {

using ::testing::HasSubstr;

// A scheduler in namespace "sched" and worker nodes in namespaces "n0", "n1", ...;
// node i reaches the scheduler at 10.N.i.1 over its own veth link (10.N.i.2 on its
// side). The nodes cannot reach each other, nor anything of this test's namespace.
// The scheduler listens on 0.0.0.0, so it needs the token, as on a real cluster.
class NetCluster {
 public:
  ~NetCluster() {
    for (ChildProcess& w : workers_) w.Stop(absl::Seconds(5));
    if (scheduler_) scheduler_->Stop(absl::Seconds(5));
  }

  // Makes the namespaces and links. An error says why they cannot be made here.
  absl::Status Build(int nodes) {
    SWEEP_ASSIGN_OR_RETURN(lab_, NetLab::Make());
    SWEEP_ASSIGN_OR_RETURN(sched_ns_, lab_->AddNode("sched"));
    for (int i = 0; i < nodes; ++i) {
      SWEEP_ASSIGN_OR_RETURN(std::string ns, lab_->AddNode(absl::StrCat("n", i)));
      std::string net = NetLab::Subnet(i);
      SWEEP_ASSIGN_OR_RETURN(NetLab::Veth v,
                             lab_->Link(sched_ns_, net + ".1/24", ns, net + ".2/24"));
      nodes_.push_back(Node{ns, v.b, net + ".1"});
    }
    WriteFile(token_file(), "netns-test-token\n");
    return absl::OkStatus();
  }

  const TempDir& dir() const { return dir_; }
  std::string db() const { return dir_ / "sweeps.db"; }
  std::string token_file() const { return dir_ / "token"; }
  std::string node_ns(int i) const { return nodes_[i].ns; }

  void StartScheduler(double lease_timeout, double heartbeat) {
    std::string port_file = dir_ / "port";
    SpawnOptions o;
    o.argv = NetLab::In(sched_ns_, {SweepBin(), "scheduler", "--listen", "0.0.0.0:0",
                                    "--token-file", token_file(), "--db", db(), "--http",
                                    "off", "--port-file", port_file, "--lease-timeout",
                                    absl::StrCat(lease_timeout), "--heartbeat-interval",
                                    absl::StrCat(heartbeat), "--log-level", "debug"});
    o.stdout_path = dir_ / "scheduler.log";
    o.stderr_path = dir_ / "scheduler.log";
    auto child = ChildProcess::Spawn(o);
    ASSERT_TRUE(child.ok()) << child.status();
    scheduler_.emplace(std::move(*child));
    ASSERT_TRUE(WaitFor([&] { return !ReadFile(port_file).empty(); }, absl::Seconds(20)))
        << ReadFile(dir_ / "scheduler.log");
    std::string bound(absl::StripAsciiWhitespace(ReadFile(port_file)));
    port_ = bound.substr(bound.rfind(':') + 1);
  }

  // Starts `sweep worker --cpus N` in node `node`'s namespace; returns its pid.
  pid_t StartWorker(int node, int cpus, const std::string& work_dir) {
    SpawnOptions o;
    size_t n = workers_.size();
    o.argv = NetLab::In(nodes_[node].ns,
                        {SweepBin(), "worker", "--scheduler",
                         absl::StrCat(nodes_[node].scheduler_ip, ":", port_), "--token-file",
                         token_file(), "--cpus", absl::StrCat(cpus), "--work-dir",
                         dir_ / work_dir, "--kill-grace", "1", "--drain-timeout", "2",
                         "--log-level", "debug"});
    o.stdout_path = WorkerLog(n);
    o.stderr_path = WorkerLog(n);
    auto child = ChildProcess::Spawn(o);
    EXPECT_TRUE(child.ok()) << child.status();
    if (!child.ok()) return -1;
    workers_.push_back(std::move(*child));
    return workers_.back().pid();
  }

  std::string WorkerLog(size_t i) const { return dir_ / absl::StrCat("worker", i, ".log"); }

  // Cuts node `node` off (its end of the link down), or joins it again.
  absl::Status SetConnected(int node, bool up) {
    return lab_->SetLink(nodes_[node].ns, nodes_[node].dev, up);
  }

  // Runs `sweep ARGS...` in the scheduler's namespace, against it on loopback.
  CommandResult Sweep(std::vector<std::string> args) {
    args.insert(args.begin(), SweepBin());
    args.insert(args.end(), {"--scheduler", "127.0.0.1:" + port_});
    return RunCommand(NetLab::In(sched_ns_, args), dir_,
                      {"SWEEP_TOKEN_FILE=" + token_file()});
  }

  std::string Submit(const std::string& yaml) {
    WriteFile(dir_ / "spec.yaml", yaml);
    CommandResult r = Sweep({"submit", dir_ / "spec.yaml"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return std::string(absl::StripAsciiWhitespace(r.out));
  }

  bool WaitEnded(const std::string& sweep, absl::Duration timeout) {
    Db db(this->db());
    return WaitFor(
        [&] {
          return db.Value("SELECT state FROM sweeps WHERE id='" + sweep + "'") != "running" &&
                 db.Value("SELECT COUNT(*) FROM trials WHERE sweep_id='" + sweep +
                          "' AND state IN ('running','queued')") == "0";
        },
        timeout);
  }

  std::string Logs() const {
    std::string out = "--- scheduler\n" + ReadFile(dir_ / "scheduler.log");
    for (size_t i = 0; i < workers_.size(); ++i) {
      out += absl::StrCat("--- worker", i, "\n", ReadFile(WorkerLog(i)));
    }
    return out;
  }

 private:
  struct Node {
    std::string ns;            // its namespace
    std::string dev;           // its end of the link to the scheduler
    std::string scheduler_ip;  // the scheduler's address on that link
  };

  TempDir dir_;
  std::unique_ptr<NetLab> lab_;  // after dir_, before the processes: deleted after them
  std::string sched_ns_;
  std::vector<Node> nodes_;
  std::optional<ChildProcess> scheduler_;
  std::vector<ChildProcess> workers_;
  std::string port_;
};

// A grid over x of tests/data/resume.sh trials.
std::string ResumeSpec(const std::string& xs, int steps, double pause, double pause1 = 0) {
  return absl::StrCat("program: ", SourceDir(), R"(/tests/data/resume.sh
command: ["/bin/sh", "${program}", "${args}"]
method: grid
metric: {name: v, goal: maximize}
max_retries: 3
parameters:
  x: {values: )", xs, R"(}
  steps: {value: )", steps, R"(}
  pause: {value: )", pause, "}\n",
                      pause1 > 0 ? absl::StrCat("  pause1: {value: ", pause1, "}\n") : "");
}

int Int(const std::string& s) {
  int v = -1;
  EXPECT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(s), &v)) << "'" << s << "'";
  return v;
}

size_t Lines(const std::string& path) {
  std::string text = ReadFile(path);
  return std::count(text.begin(), text.end(), '\n');
}

TEST(NetnsTest, SweepCompletesAcrossTwoNodesThatReachTheSchedulerOnlyOverVeth) {
  NetCluster c;
  if (absl::Status st = c.Build(2); !st.ok()) GTEST_SKIP() << st.message();
  ASSERT_NO_FATAL_FAILURE(c.StartScheduler(/*lease_timeout=*/10, /*heartbeat=*/0.2));
  pid_t node_pid[2] = {c.StartWorker(0, 2, "node0"), c.StartWorker(1, 2, "node1")};
  Db db(c.db());
  // All four slots wait for work before the sweep comes: both nodes get trials.
  ASSERT_TRUE(WaitFor([&] { return Int(db.Value("SELECT COUNT(*) FROM workers")) >= 4; },
                      absl::Seconds(30)))
      << c.Logs();
  std::string sweep = c.Submit(ResumeSpec("[1, 2, 3, 4, 5, 6, 7, 8]", /*steps=*/4, 0.25));
  ASSERT_EQ(sweep.size(), 8u);
  ASSERT_TRUE(c.WaitEnded(sweep, absl::Seconds(60))) << c.Logs();

  EXPECT_EQ(db.Value("SELECT state FROM sweeps WHERE id='" + sweep + "'"), "finished");
  auto trials = db.Query(
      "SELECT t.id, t.state, t.attempt, t.params, t.trial_dir, w.pid, t.final_metric "
      "FROM trials t LEFT JOIN workers w ON w.id = t.worker WHERE t.sweep_id='" + sweep +
      "' ORDER BY t.idx");
  ASSERT_EQ(trials.size(), 8u);
  int per_node[2] = {0, 0};
  for (const auto& t : trials) {
    SCOPED_TRACE(t[0]);
    EXPECT_EQ(t[1], "completed");
    EXPECT_EQ(t[2], "1");
    int x = nlohmann::json::parse(t[3])["x"];
    int node = Int(t[5]) == node_pid[0] ? 0 : Int(t[5]) == node_pid[1] ? 1 : -1;
    ASSERT_NE(node, -1) << "ran by worker pid " << t[5];
    ++per_node[node];
    // Its process ran in the node's namespace, in the node's work directory.
    EXPECT_THAT(t[4], ::testing::StartsWith(c.dir() / absl::StrCat("node", node) + "/"));
    EXPECT_EQ(absl::StripAsciiWhitespace(ReadFile(t[4] + "/netns")),
              NetLab::Identity(c.node_ns(node)));
    EXPECT_TRUE(std::filesystem::exists(t[4] + "/done"));
    auto rows = db.Query("SELECT step, value FROM metrics WHERE trial_id='" + t[0] +
                         "' AND name='v' ORDER BY step");
    ASSERT_EQ(rows.size(), 4u);
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(rows[i][0], absl::StrCat(i + 1));
      EXPECT_EQ(std::stod(rows[i][1]), 1000 * x + i + 1);
    }
    EXPECT_EQ(std::stod(t[6]), 1000 * x + 4);
    EXPECT_EQ(db.Value("SELECT COUNT(*) FROM events WHERE kind='trial_ended' AND trial_id='" +
                       t[0] + "'"),
              "1");
  }
  EXPECT_GT(per_node[0], 0) << "node 0 ran no trial";
  EXPECT_GT(per_node[1], 0) << "node 1 ran no trial";

  // The CLI in the scheduler's namespace (with the token) reads the same.
  CommandResult status = c.Sweep({"status", sweep, "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  nlohmann::json s = nlohmann::json::parse(status.out)["sweeps"][0];
  EXPECT_EQ(s["completed"], 8);
  EXPECT_EQ(s["state"], "finished");
}

TEST(NetnsTest, PartitionLongerThanTheLeaseMovesTheTrialAndFencesOffTheCutOffWorker) {
  NetCluster c;
  if (absl::Status st = c.Build(2); !st.ok()) GTEST_SKIP() << st.message();
  ASSERT_NO_FATAL_FAILURE(c.StartScheduler(/*lease_timeout=*/2, /*heartbeat=*/0.2));
  // Both nodes use the same work directory, as on a shared file system: a trial
  // that moves finds its checkpoint.
  pid_t a = c.StartWorker(0, 1, "runs");
  // Attempt 1 is slow (0.4 s a step, a minute in all): it still runs when the link
  // comes back. Attempt 2 takes some 15 s.
  constexpr int kSteps = 150;
  std::string sweep = c.Submit(ResumeSpec("[7]", kSteps, /*pause=*/0.1, /*pause1=*/0.4));
  ASSERT_EQ(sweep.size(), 8u);
  Db db(c.db());
  auto rows_of = [&](const std::string& trial, int attempt) {
    return Int(db.Value(absl::StrCat("SELECT COUNT(*) FROM metrics WHERE trial_id='", trial,
                                     "' AND attempt=", attempt)));
  };
  std::string trial;
  ASSERT_TRUE(WaitFor(
      [&] {
        trial = db.Value("SELECT id FROM trials WHERE sweep_id='" + sweep + "'");
        return !trial.empty() && rows_of(trial, 1) >= 3;
      },
      absl::Seconds(30)))
      << c.Logs();
  std::string root = c.dir() / "runs/" + sweep + "/" + trial;
  pid_t stale_pid = Int(ReadFile(root + "/attempt-1/pid"));
  ASSERT_TRUE(Running(stale_pid));
  auto holder = [&] {
    return db.Value("SELECT t.attempt || ' ' || t.state || ' ' || w.pid FROM trials t "
                    "JOIN workers w ON w.id = t.worker WHERE t.id='" + trial + "'");
  };
  ASSERT_EQ(holder(), absl::StrCat("1 running ", a));

  // Cut node 0 off; node 1 joins and gets the trial once node 0's lease expired.
  ASSERT_EQ(c.SetConnected(0, false), absl::OkStatus());
  const absl::Time cut = absl::Now();
  pid_t b = c.StartWorker(1, 1, "runs");
  ASSERT_TRUE(WaitFor([&] { return holder() == absl::StrCat("2 running ", b); },
                      absl::Seconds(30)))
      << holder() << "\n" << c.Logs();
  const int stored_1 = rows_of(trial, 1);  // final: the lease of attempt 1 is gone
  ASSERT_TRUE(WaitFor([&] { return rows_of(trial, 2) >= 2; }, absl::Seconds(20))) << c.Logs();
  // Meanwhile the cut-off attempt went on writing lines that nobody could store.
  ASSERT_TRUE(WaitFor([&] { return Lines(root + "/attempt-1/metrics.jsonl") >
                                   static_cast<size_t>(stored_1); },
                      absl::Seconds(10)));

  // Hold the partition past the worker's call deadline (10 s), as a real outage
  // would: its calls in flight time out, and it tries again.
  absl::SleepFor(cut + absl::Seconds(12) - absl::Now());

  // Node 0 comes back: its reports of the old lease are refused and it stops the
  // stale trial, then serves again.
  ASSERT_EQ(c.SetConnected(0, true), absl::OkStatus());
  EXPECT_TRUE(WaitFor([&] { return !Running(stale_pid); }, absl::Seconds(40)))
      << "the reconnected worker must stop the trial it lost\n" << c.Logs();
  EXPECT_TRUE(WaitFor(
      [&] {
        return db.Value(absl::StrCat("SELECT state FROM workers WHERE pid=", a)) == "idle";
      },
      absl::Seconds(20)))
      << c.Logs();
  EXPECT_THAT(ReadFile(c.WorkerLog(0)), HasSubstr("lease on " + trial + " is stale"));
  EXPECT_EQ(rows_of(trial, 1), stored_1) << "the stale lease wrote into the trial";

  ASSERT_TRUE(c.WaitEnded(sweep, absl::Seconds(60))) << c.Logs();
  auto t = db.Query("SELECT t.state, t.attempt, w.pid, t.trial_dir, t.final_metric "
                    "FROM trials t JOIN workers w ON w.id = t.worker WHERE t.id='" +
                    trial + "'");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0][0], "completed");
  EXPECT_EQ(t[0][1], "2");
  EXPECT_EQ(t[0][2], absl::StrCat(b));
  EXPECT_EQ(t[0][3], root + "/attempt-2");
  EXPECT_EQ(std::stod(t[0][4]), 7000 + kSteps);
  EXPECT_EQ(absl::StripAsciiWhitespace(ReadFile(root + "/attempt-1/netns")),
            NetLab::Identity(c.node_ns(0)));
  EXPECT_EQ(absl::StripAsciiWhitespace(ReadFile(root + "/attempt-2/netns")),
            NetLab::Identity(c.node_ns(1)));
  // Only attempt 2 ran to the end.
  EXPECT_FALSE(std::filesystem::exists(root + "/attempt-1/done"));
  EXPECT_TRUE(std::filesystem::exists(root + "/attempt-2/done"));
  EXPECT_EQ(db.Value("SELECT COUNT(*) FROM events WHERE kind='trial_requeued' AND trial_id='" +
                     trial + "'"),
            "1");
  EXPECT_EQ(db.Value("SELECT COUNT(*) FROM events WHERE kind='trial_ended' AND trial_id='" +
                     trial + "'"),
            "1");

  // Attempt 2 resumed from the shared checkpoint, which the cut-off attempt had
  // moved past what it could report. Stored: attempt 1's acknowledged steps 1..n,
  // then attempt 2's steps from the checkpoint on; each (step, name) once.
  int resumed_after = Int(ReadFile(root + "/attempt-2/resumed_after"));
  EXPECT_GE(resumed_after, stored_1);
  auto rows = db.Query("SELECT attempt, step, name, value FROM metrics WHERE trial_id='" +
                       trial + "' ORDER BY attempt, step");
  std::vector<std::vector<std::string>> expected;
  for (int i = 1; i <= stored_1; ++i) {
    expected.push_back({"1", absl::StrCat(i), "v", absl::StrCat(7000 + i, ".0")});
  }
  for (int i = resumed_after + 1; i <= kSteps; ++i) {
    expected.push_back({"2", absl::StrCat(i), "v", absl::StrCat(7000 + i, ".0")});
  }
  EXPECT_EQ(rows, expected);
  EXPECT_EQ(db.Value("SELECT COUNT(*) FROM (SELECT 1 FROM metrics WHERE trial_id='" + trial +
                     "' GROUP BY step, name HAVING COUNT(*) > 1)"),
            "0");
}

}  // namespace
}  // namespace sweep::testing
