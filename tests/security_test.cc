// Who may talk to the scheduler: loopback by default, a shared token beyond it,
// and TLS, with the real binary and certificates made by openssl.
#include "common/rpc.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster.h"

namespace sweep::testing {
namespace {

using ::testing::HasSubstr;

// A scheduler process started with `args`; its address on loopback.
class Server {
 public:
  Server(const TempDir& dir, std::vector<std::string> args) {
    std::string port_file = dir / "port";
    std::filesystem::remove(port_file);
    SpawnOptions o;
    o.argv = {SweepBin(), "scheduler", "--db", dir / "s.db", "--http", "off",
              "--port-file", port_file};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.stdout_path = dir / "scheduler.log";
    o.stderr_path = dir / "scheduler.log";
    child_.emplace(std::move(*ChildProcess::Spawn(o)));
    EXPECT_TRUE(WaitFor([&] { return !ReadFile(port_file).empty(); }, absl::Seconds(20)))
        << ReadFile(dir / "scheduler.log");
    std::string bound(absl::StripAsciiWhitespace(ReadFile(port_file)));
    address_ = "127.0.0.1:" + bound.substr(bound.rfind(':') + 1);
  }
  const std::string& address() const { return address_; }

 private:
  std::optional<ChildProcess> child_;
  std::string address_;
};

TEST(SecurityTest, ListeningBeyondLoopbackWithoutATokenIsRefused) {
  TempDir dir;
  CommandResult r = RunSweep({"scheduler", "--listen", "0.0.0.0:0", "--db", dir / "s.db",
                              "--http", "off"},
                             dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--listen 0.0.0.0:0 reaches beyond this machine"));
  EXPECT_THAT(r.err, HasSubstr("--token-file"));
  EXPECT_FALSE(std::filesystem::exists(dir / "s.db")) << "nothing was opened";
}

TEST(SecurityTest, InsecureFlagAllowsItAndSaysSo) {
  TempDir dir;
  Server s(dir, {"--listen", "0.0.0.0:0", "--insecure"});
  EXPECT_THAT(ReadFile(dir / "scheduler.log"), HasSubstr("INSECURE: no token"));
  CommandResult r = RunSweep({"status", "--scheduler", s.address()}, dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(SecurityTest, CallsWithoutTheTokenAreRefusedAndWorkersWithItRunTrials) {
  TempDir dir;
  WriteFile(dir / "token", "s3cret-token\n");
  WriteFile(dir / "wrong", "guess\n");
  Server s(dir, {"--listen", "0.0.0.0:0", "--token-file", dir / "token"});
  EXPECT_THAT(ReadFile(dir / "scheduler.log"), HasSubstr("token required"));

  CommandResult none = RunSweep({"status", "--scheduler", s.address()}, dir);
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_THAT(none.err, HasSubstr("requires a token"));
  CommandResult wrong =
      RunSweep({"status", "--scheduler", s.address(), "--token-file", dir / "wrong"}, dir);
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_THAT(wrong.err, HasSubstr("wrong token"));
  EXPECT_THAT(ReadFile(dir / "scheduler.log"), HasSubstr("refused a call from"));

  // The right token, from the environment, submits; a worker with it runs the trial.
  WriteFile(dir / "spec.yaml", "command: [\"/bin/true\", \"${args}\"]\nmethod: grid\n"
                               "parameters:\n  x: {values: [1, 2]}\n");
  CommandResult ok = RunSweep({"submit", "spec.yaml", "--scheduler", s.address()}, dir,
                              {"SWEEP_TOKEN_FILE=" + (dir / "token")});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  SpawnOptions w;
  w.argv = {SweepBin(), "worker", "--scheduler", s.address(), "--cpus", "1",
            "--token-file", dir / "token", "--work-dir", dir / "runs"};
  w.stdout_path = dir / "worker.log";
  w.stderr_path = dir / "worker.log";
  auto worker = ChildProcess::Spawn(w);
  ASSERT_TRUE(worker.ok());
  Db db(dir / "s.db");
  EXPECT_TRUE(WaitFor([&] { return db.Value("SELECT state FROM sweeps") == "finished"; },
                      absl::Seconds(30)))
      << ReadFile(dir / "worker.log");
  EXPECT_EQ(db.Value("SELECT COUNT(*) FROM trials WHERE state='completed'"), "2");
}

TEST(SecurityTest, TlsServesOnlyClientsThatTrustItsCertificate) {
  TempDir dir;
  SpawnOptions gen;
  gen.argv = {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
              "-keyout", dir / "key.pem", "-out", dir / "cert.pem", "-days", "1",
              "-subj", "/CN=localhost",
              "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"};
  gen.stdout_path = dir / "openssl.log";
  gen.stderr_path = dir / "openssl.log";
  auto openssl = ChildProcess::Spawn(gen);
  if (!openssl.ok()) GTEST_SKIP() << "openssl is not installed: " << openssl.status();
  ASSERT_TRUE(openssl->Wait(absl::Seconds(60))->ok()) << ReadFile(dir / "openssl.log");

  Server s(dir, {"--listen", "127.0.0.1:0", "--tls-cert", dir / "cert.pem", "--tls-key",
                 dir / "key.pem"});
  EXPECT_THAT(ReadFile(dir / "scheduler.log"), HasSubstr("TLS"));
  CommandResult trusted =
      RunSweep({"status", "--scheduler", s.address(), "--tls-ca", dir / "cert.pem"}, dir);
  EXPECT_EQ(trusted.exit_code, 0) << trusted.err;
  CommandResult plain = RunSweep({"status", "--scheduler", s.address()}, dir);
  EXPECT_EQ(plain.exit_code, 1);
  EXPECT_THAT(plain.err, HasSubstr("cannot reach the scheduler"));
}

TEST(SecurityTest, HalfATlsPairIsBadInput) {
  TempDir dir;
  WriteFile(dir / "cert.pem", "x");
  CommandResult r = RunSweep({"scheduler", "--db", dir / "s.db", "--http", "off",
                              "--tls-cert", dir / "cert.pem"},
                             dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("give both --tls-cert and --tls-key"));
}

}  // namespace
}  // namespace sweep::testing
