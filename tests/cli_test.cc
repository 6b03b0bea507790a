// The `sweep` command's contract for bad input: clear messages and exit codes
// (2 bad input, 1 unreachable scheduler), and nothing written to the database.
#include "common/version.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster.h"

namespace sweep::testing {
namespace {

using ::testing::HasSubstr;

class CliTest : public ::testing::Test {
 protected:
  CommandResult Validate(const std::string& yaml) {
    WriteFile(dir_ / "spec.yaml", yaml);
    return RunSweep({"validate", "spec.yaml"}, dir_);
  }
  TempDir dir_;
};

TEST_F(CliTest, ValidatePrintsTheNumberOfTrialsAGridExpandsTo) {
  CommandResult r = Validate(R"(
method: grid
command: ["/bin/true", "${args}"]
parameters:
  lr: {values: [0.1, 0.01, 0.001]}
  depth: {min: 1, max: 4}
)");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("spec.yaml: valid; grid search over 2 parameters, 12 trials"));
}

TEST_F(CliTest, MalformedYamlIsBadInputWithItsPosition) {
  CommandResult r = Validate("method: grid\nparameters:\n  lr: {values: [0.1, 0.2}\n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("error: spec.yaml:3:"));
}

TEST_F(CliTest, UnknownMethodIsBadInput) {
  CommandResult r = Validate("method: grd\nparameters:\n  lr: {values: [0.1]}\n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("spec.yaml:1:9: method: unknown method \"grd\""));
}

TEST_F(CliTest, EmptyValuesIsBadInput) {
  CommandResult r = Validate("method: grid\nparameters:\n  lr:\n    values: []\n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("spec.yaml:4:"));
  EXPECT_THAT(r.err, HasSubstr("parameters.lr.values"));
}

TEST_F(CliTest, MinAboveMaxIsBadInput) {
  CommandResult r = Validate(
      "method: random\nparameters:\n  lr:\n    distribution: uniform\n    min: 0.1\n"
      "    max: 0.01\n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("parameters.lr"));
  EXPECT_THAT(r.err, HasSubstr("greater than max"));
}

TEST_F(CliTest, MissingFileIsBadInput) {
  CommandResult r = RunSweep({"validate", "nope.yaml"}, dir_);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("nope.yaml"));
}

TEST_F(CliTest, UnreachableSchedulerFailsWithExitOne) {
  WriteFile(dir_ / "spec.yaml", "method: grid\nparameters:\n  lr: {values: [0.1]}\n");
  CommandResult r = RunSweep({"submit", "spec.yaml", "--scheduler", "127.0.0.1:1"}, dir_);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot reach the scheduler at 127.0.0.1:1"));
  CommandResult s = RunSweep({"status"}, dir_, {"SWEEP_SCHEDULER=127.0.0.1:1"});
  EXPECT_EQ(s.exit_code, 1);
  EXPECT_THAT(s.err, HasSubstr("127.0.0.1:1"));
}

TEST_F(CliTest, BadSpecNeverReachesTheDatabase) {
  Cluster c;
  c.StartScheduler();
  WriteFile(c.dir() / "bad.yaml", "method: grid\nparameters:\n  lr:\n    values: []\n");
  CommandResult r = c.Sweep({"submit", c.dir() / "bad.yaml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  Db db(c.db());
  EXPECT_EQ(db.Value("SELECT COUNT(*) FROM sweeps"), "0");
  EXPECT_EQ(db.Value("SELECT COUNT(*) FROM trials"), "0");
  CommandResult unknown = c.Sweep({"status", "deadbeef"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("no sweep with id 'deadbeef'"));
}

TEST_F(CliTest, EveryExampleSpecIsValidAndFindsItsProgramFromTheRepositoryRoot) {
  int specs = 0;
  for (const auto& e : std::filesystem::directory_iterator(SourceDir() + "/sweeps")) {
    if (e.path().extension() != ".yaml") continue;
    ++specs;
    SpawnOptions o;
    o.argv = {SweepBin(), "validate", e.path().string()};
    o.cwd = SourceDir();  // examples name their programs relative to the root
    o.stdout_path = dir_ / "validate.out";
    o.stderr_path = dir_ / "validate.err";
    auto child = ChildProcess::Spawn(o);
    ASSERT_TRUE(child.ok());
    auto st = child->Wait(absl::Seconds(30));
    ASSERT_TRUE(st);
    std::string err = ReadFile(dir_ / "validate.err");
    EXPECT_EQ(st->exit_code, 0) << e.path() << ": " << err;
    // Examples that run a program this repository builds name it under build/;
    // check those only when the binaries under test were built there.
    bool built_here = SweepBin().starts_with(SourceDir() + "/build/");
    if (built_here || err.find("'build/") == std::string::npos) {
      EXPECT_THAT(err, ::testing::Not(HasSubstr("does not exist"))) << e.path();
    }
    std::filesystem::remove(dir_ / "validate.out");
    std::filesystem::remove(dir_ / "validate.err");
  }
  EXPECT_GE(specs, 2);
}

// Method names come from one table (sweeps/spec.h): the CLI's own copy once printed
// a sobol sweep as "bayes".
TEST_F(CliTest, ASobolSweepIsCalledSobolEverywhereTheCliNamesItsMethod) {
  const std::string spec =
      "method: sobol\nrun_cap: 4\ncommand: [\"/bin/true\", \"${args}\"]\n"
      "parameters:\n  lr: {min: 0.001, max: 0.1}\n";
  CommandResult v = Validate(spec);
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_THAT(v.out, HasSubstr("spec.yaml: valid; sobol search over 1 parameter, 4 trials"));

  Cluster c;  // no worker yet: the trials wait
  c.StartScheduler();
  WriteFile(c.dir() / "quasi.yaml", spec);
  CommandResult submit = c.Sweep({"submit", c.dir() / "quasi.yaml"});
  ASSERT_EQ(submit.exit_code, 0) << submit.err;
  EXPECT_THAT(submit.err, HasSubstr("submitted: sobol search over 1 parameter, 4 trials"));
  const std::string sweep(absl::StripAsciiWhitespace(submit.out));

  CommandResult status = c.Sweep({"status", sweep});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out, ::testing::ContainsRegex(sweep + " +[^ ]+ +[a-z]+ +sobol "));
  EXPECT_THAT(status.out, ::testing::Not(HasSubstr("bayes")));
  CommandResult json = c.Sweep({"status", sweep, "--json"});
  EXPECT_EQ(json.exit_code, 0) << json.err;
  EXPECT_THAT(json.out, HasSubstr("\"method\": \"sobol\""));
  // The database says the same, read with and without the scheduler.
  EXPECT_EQ(Db(c.db()).Value("SELECT method FROM sweeps"), "sobol");
  CommandResult from_db = RunSweep({"status", sweep, "--db", c.db()}, dir_);
  EXPECT_EQ(from_db.exit_code, 0) << from_db.err;
  EXPECT_THAT(from_db.out, ::testing::ContainsRegex(sweep + " +[^ ]+ +[a-z]+ +sobol "));
  // `trials` names no method; once a worker ran them it lists the four trials, and
  // the ended sweep is still sobol.
  c.StartWorker(1);
  ASSERT_TRUE(c.WaitEnded(sweep, absl::Seconds(120)));
  status = c.Sweep({"status", sweep});
  EXPECT_THAT(status.out, ::testing::ContainsRegex(sweep + " +[^ ]+ +[a-z]+ +sobol +4/4 "));
  CommandResult trials = c.Sweep({"trials", sweep});
  EXPECT_EQ(trials.exit_code, 0) << trials.err;
  EXPECT_THAT(trials.out, HasSubstr(sweep + "-0003"));
  EXPECT_THAT(trials.out, ::testing::Not(HasSubstr("bayes")));
}

TEST_F(CliTest, VersionPrintsTheOneVersionString) {
  CommandResult r = RunSweep({"--version"}, dir_);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "sweep " + std::string(Version()) + "\n");
}

TEST_F(CliTest, BadFlagIsBadInput) {
  CommandResult r = RunSweep({"worker", "--cpus", "2", "--gpu", "0"}, dir_);
  EXPECT_EQ(r.exit_code, 2);
}

}  // namespace
}  // namespace sweep::testing
