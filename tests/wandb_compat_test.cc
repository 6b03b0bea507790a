// Compatibility with real W&B sweep files: the 30 files under
// $SWEEP_SHARED_DIR/wandb-sweeps/, described by its SOURCES.md table (method,
// grid size, and which files are invalid for W&B). The files stay outside the
// repository (their licences vary); without them these tests are skipped.
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sweeps/spec.h"

namespace sweep::spec {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

namespace fs = std::filesystem;

// One row of SOURCES.md's file table.
struct SourceRow {
  int number = 0;
  std::string file;
  std::string method;
  std::optional<int64_t> grid_runs;  // the "Grid runs" column's leading integer
  bool invalid = false;              // the row says "Invalid for W&B"
};

std::string Trim(const std::string& s) {
  const size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t") + 1 - begin);
}

// Returns the rows `| NN | `file` | repo | path | commit | method | grid runs |
// licence | what |`.
std::vector<SourceRow> ReadSourcesTable(const fs::path& sources) {
  std::ifstream in(sources);
  std::vector<SourceRow> rows;
  std::string line;
  const std::regex row_start(R"(^\| [0-9]+ \| `[^`]+` \|.*)");
  while (std::getline(in, line)) {
    if (!std::regex_match(line, row_start)) continue;
    std::vector<std::string> cells;
    std::stringstream stream(line.substr(1));
    std::string cell;
    while (std::getline(stream, cell, '|')) cells.push_back(Trim(cell));
    if (cells.size() < 9) continue;
    SourceRow row;
    row.number = std::stoi(cells[0]);
    row.file = cells[1].substr(1, cells[1].size() - 2);  // strip the backticks
    row.method = cells[5];
    if (!cells[6].empty() &&
        std::isdigit(static_cast<unsigned char>(cells[6][0]))) {
      row.grid_runs = std::stoll(cells[6]);
    }
    row.invalid = line.find("Invalid for W&B") != std::string::npos;
    rows.push_back(row);
  }
  return rows;
}

// Returns the value of constant parameter `name` of `spec`.
nlohmann::json ConstantOf(const SweepSpec& spec, const std::string& name) {
  for (const Parameter& p : spec.parameters) {
    if (p.Name() == name && p.distribution == Distribution::kConstant) {
      return p.values[0];
    }
  }
  ADD_FAILURE() << "no constant parameter " << name;
  return nullptr;
}

// $SWEEP_SHARED_DIR, else the shared/ folder beside the checkout.
fs::path SharedDir() {
  if (const char* dir = std::getenv("SWEEP_SHARED_DIR"); dir && *dir) {
    return dir;
  }
  return SWEEP_SHARED_DIR_DEFAULT;
}

class WandbCompatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = SharedDir() / "wandb-sweeps";
    if (!fs::is_directory(dir_)) {
      GTEST_SKIP() << "no W&B sweep files at " << dir_
                   << ": set SWEEP_SHARED_DIR to the folder that holds "
                      "wandb-sweeps/";
    }
    rows_ = ReadSourcesTable(dir_ / "SOURCES.md");
    ASSERT_FALSE(rows_.empty()) << "no file rows in " << dir_ / "SOURCES.md";
  }

  std::string PathOf(const SourceRow& row) const {
    return (dir_ / row.file).string();
  }

  // Loads the file whose row number is `number`, which must parse.
  SweepSpec Load(int number) const {
    for (const SourceRow& row : rows_) {
      if (row.number != number) continue;
      absl::StatusOr<SweepSpec> spec = LoadSpecFile(PathOf(row));
      EXPECT_TRUE(spec.ok()) << spec.status();
      return spec.ok() ? *spec : SweepSpec{};
    }
    ADD_FAILURE() << "no row " << number << " in SOURCES.md";
    return SweepSpec{};
  }

  fs::path dir_;
  std::vector<SourceRow> rows_;
};

TEST_F(WandbCompatTest, SourcesTableListsEveryYamlFileInTheFolder) {
  std::vector<std::string> listed, present;
  for (const SourceRow& row : rows_) listed.push_back(row.file);
  for (const fs::directory_entry& entry : fs::directory_iterator(dir_)) {
    if (entry.path().extension() == ".yaml") {
      present.push_back(entry.path().filename().string());
    }
  }
  std::sort(listed.begin(), listed.end());
  std::sort(present.begin(), present.end());
  EXPECT_EQ(listed, present);
  EXPECT_EQ(rows_.size(), 30u);
}

TEST_F(WandbCompatTest, EveryFileValidForWandbParsesWithItsMethod) {
  for (const SourceRow& row : rows_) {
    if (row.invalid) continue;
    SCOPED_TRACE(row.file);
    absl::StatusOr<SweepSpec> spec = LoadSpecFile(PathOf(row));
    ASSERT_TRUE(spec.ok()) << spec.status();
    EXPECT_EQ(MethodName(spec->method), row.method);
    EXPECT_FALSE(spec->parameters.empty());
  }
}

TEST_F(WandbCompatTest, FilesInvalidForWandbFailWithFilePositionAndKey) {
  // The key each known invalid file must be blamed for.
  const std::map<int, std::string> offending_key = {{12, "metric.goal"},
                                                    {20, "arguments"}};
  int invalid = 0;
  for (const SourceRow& row : rows_) {
    if (!row.invalid) continue;
    ++invalid;
    SCOPED_TRACE(row.file);
    absl::StatusOr<SweepSpec> spec = LoadSpecFile(PathOf(row));
    ASSERT_FALSE(spec.ok());
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string message(spec.status().message());
    EXPECT_THAT(message, HasSubstr(row.file));
    EXPECT_THAT(message, MatchesRegex(".*\\.yaml:[0-9]+:[0-9]+: .*"));
    if (auto key = offending_key.find(row.number); key != offending_key.end()) {
      EXPECT_THAT(message, HasSubstr(": " + key->second + ": "));
    }
  }
  EXPECT_EQ(invalid, 2);
}

TEST_F(WandbCompatTest, InvalidFilesNameExactlyWhatIsWrong) {
  for (const SourceRow& row : rows_) {
    absl::StatusOr<SweepSpec> spec = LoadSpecFile(PathOf(row));
    if (row.number == 12) {
      EXPECT_EQ(std::string(spec.status().message()),
                PathOf(row) +
                    ":4:9: metric.goal: unknown goal \"hello world wrt wandb "
                    "sweep function\"; expected minimize or maximize");
    }
    if (row.number == 20) {
      EXPECT_EQ(std::string(spec.status().message()),
                PathOf(row) +
                    ":40:1: arguments: unknown key; expected one of command, cost, "
                    "description, early_terminate, entity, max_concurrent, "
                    "max_duration, max_failed_trials, max_retries, "
                    "max_trials, method, metric, name, parameters, program, "
                    "project, resources, run_cap, seed, timeout");
    }
  }
}

TEST_F(WandbCompatTest, GridFilesHaveTheGridSizeThatSourcesStates) {
  int grids = 0;
  for (const SourceRow& row : rows_) {
    if (row.invalid || row.method != "grid") continue;
    ++grids;
    SCOPED_TRACE(row.file);
    ASSERT_TRUE(row.grid_runs.has_value()) << "no grid size in SOURCES.md";
    absl::StatusOr<SweepSpec> spec = LoadSpecFile(PathOf(row));
    ASSERT_TRUE(spec.ok()) << spec.status();
    absl::StatusOr<int64_t> size = GridSize(*spec);
    ASSERT_TRUE(size.ok()) << size.status();
    EXPECT_EQ(*size, *row.grid_runs);
    EXPECT_EQ(TrialBudget(*spec), *row.grid_runs);
  }
  EXPECT_EQ(grids, 8);
}

TEST_F(WandbCompatTest, EveryRunnableFileBuildsACommandForItsPoints) {
  for (const SourceRow& row : rows_) {
    if (row.invalid) continue;
    SCOPED_TRACE(row.file);
    absl::StatusOr<SweepSpec> spec = LoadSpecFile(PathOf(row));
    ASSERT_TRUE(spec.ok()) << spec.status();
    std::vector<nlohmann::json> points;
    if (spec->method == Method::kGrid) {
      const int64_t size = GridSize(*spec).value();
      points = {GridPoint(*spec, 0), GridPoint(*spec, size - 1)};
    } else {
      points = {SamplePoint(*spec, 1, 0), SamplePoint(*spec, 1, 1)};
    }
    for (const nlohmann::json& point : points) {
      absl::StatusOr<std::vector<std::string>> argv =
          BuildCommand(*spec, point);
      if (spec->program.empty() && spec->command.empty()) {
        // Nothing to run (W&B's function-based agent needs neither); the spec
        // parses with a warning and the command fails.
        EXPECT_EQ(argv.status().code(), absl::StatusCode::kInvalidArgument);
        continue;
      }
      ASSERT_TRUE(argv.ok()) << argv.status();
      EXPECT_FALSE(argv->empty());
    }
  }
}

TEST_F(WandbCompatTest, BooleanValuesAndDefaultCommandFollowTheWandbAgent) {
  const SweepSpec spec = Load(2);
  const nlohmann::json point = GridPoint(spec, 1);
  EXPECT_EQ(point,
            nlohmann::json::parse(
                R"({"optimizer": "sgd", "flag1": false, "flag2": true})"));
  EXPECT_EQ(BuildCommand(spec, point).value(),
            (std::vector<std::string>{"/usr/bin/env", "python3",
                                      "train-bool.py", "--optimizer=sgd",
                                      "--flag1=False", "--flag2=True"}));
}

TEST_F(WandbCompatTest, DotlessExponentsAreFloatsNotStrings) {
  const SweepSpec spec = Load(5);
  EXPECT_EQ(spec.parameters[1].values,
            (std::vector<nlohmann::json>{0.001, 0.01, 0.1}));
  EXPECT_EQ(Load(3).parameters[0].min, 1e-5);   // !!float 1e-5
  EXPECT_EQ(Load(25).parameters[0].min, 6e-5);  // 6.e-5
}

TEST_F(WandbCompatTest, WordsThatLookLikeOtherTypesStayAsWritten) {
  const SweepSpec spec = Load(7);
  EXPECT_EQ(ConstantOf(spec, "rand_augment"), "None");
  EXPECT_EQ(ConstantOf(spec, "lr_decay_epoch"), "70,80,90");
  EXPECT_EQ(ConstantOf(spec, "mean"), "(0.4914, 0.4822, 0.4465)");
  EXPECT_EQ(ConstantOf(Load(14), "overrides.model.bidirectional"), "true");
  EXPECT_EQ(ConstantOf(Load(27), "pretrain_core"), "");
  EXPECT_EQ(ConstantOf(Load(27), "adam_eps"), 1e-08);
}

TEST_F(WandbCompatTest, NestedParameterBlocksBecomeNestedObjects) {
  const SweepSpec spec = Load(15);
  const nlohmann::json point = SamplePoint(spec, 7, 0);
  EXPECT_EQ(
      point["running_settings"],
      nlohmann::json::parse(
          R"({"train_n_workers": 8, "eval_n_workers": 2, "batch_verbose": true})"));
  EXPECT_EQ(spec.run_cap, 50);
  EXPECT_EQ(TrialBudget(spec), 50);
}

TEST_F(WandbCompatTest, ListValuedCategoriesStayLists) {
  const SweepSpec spec = Load(17);
  EXPECT_EQ(spec.parameters.back().values[1],
            nlohmann::json::parse("[400, 300]"));
  const SweepSpec constant_list = Load(30);
  EXPECT_EQ(constant_list.parameters[3].Name(), "trainer.metrics");
  EXPECT_EQ(constant_list.parameters[3].values[0],
            nlohmann::json::parse(R"(["accuracy"])"));
}

TEST_F(WandbCompatTest, QuotedMacrosExpandLikePlainOnes) {
  const SweepSpec spec = Load(28);
  const std::vector<std::string> argv =
      BuildCommand(spec, SamplePoint(spec, 3, 0)).value();
  ASSERT_EQ(argv.size(), 9u);
  EXPECT_EQ(argv[0], "/usr/bin/env");
  EXPECT_EQ(argv[1], "python3");
  EXPECT_EQ(argv[2], "ppo.py");
  EXPECT_EQ(argv[6].rfind("--agent_lr=", 0), 0u);
}

TEST_F(WandbCompatTest, ArgsJsonIsOneItemHoldingEveryParameter) {
  const SweepSpec spec = Load(23);
  const std::vector<std::string> argv =
      BuildCommand(spec, GridPoint(spec, 0)).value();
  EXPECT_EQ(argv.front(), "python3");
  EXPECT_EQ(argv.back(),
            R"({"data.hparams.batch_size":2,"model.hparams.embed_dim":32,)"
            R"("optimizer.init_args.lr":0.0001})");
}

TEST_F(WandbCompatTest, BooleanFlagsMacroDropsFalseAndKeepsTrueAsAFlag) {
  const SweepSpec spec = Load(6);
  nlohmann::json point = SamplePoint(spec, 11, 0);
  point["prenorm"] = true;
  point["scheduler"] = false;
  const std::vector<std::string> argv = BuildCommand(spec, point).value();
  EXPECT_EQ(argv[0], "accelerate");
  EXPECT_NE(std::find(argv.begin(), argv.end(), "--prenorm"), argv.end());
  EXPECT_NE(std::find(argv.begin(), argv.end(), "--mup"), argv.end());
  for (const std::string& arg : argv) {
    EXPECT_EQ(arg.find("--scheduler"), std::string::npos) << arg;
  }
}

TEST_F(WandbCompatTest, QuantizedLogUniformWithIntegerQDrawsIntegers) {
  for (int number : {18, 27}) {
    const SweepSpec spec = Load(number);
    for (int64_t i = 0; i < 200; ++i) {
      const nlohmann::json point = SamplePoint(spec, 5, i);
      for (const Parameter& p : spec.parameters) {
        if (p.distribution != Distribution::kQLogUniformValues) continue;
        const nlohmann::json& v = point[p.path[0]];
        ASSERT_TRUE(v.is_number_integer()) << p.Name() << " = " << v;
        EXPECT_EQ(v.get<int64_t>() % static_cast<int64_t>(p.q), 0);
      }
    }
  }
}

TEST_F(WandbCompatTest, WarningsNameIgnoredKeysWhileBayesAndHyperbandRun) {
  const SweepSpec spec = Load(7);
  const std::string path =
      (dir_ / "07-HobbitLong-SupContrast-bayes-hyperband.yaml").string();
  EXPECT_EQ(spec.warnings,
            (std::vector<std::string>{
                path + ":2:1: project: W&B's project; accepted for "
                       "compatibility and ignored"}));
  EXPECT_EQ(spec.method, Method::kBayes);
  EXPECT_EQ(spec.early_stop.type, EarlyTerminate::Type::kHyperband);
  EXPECT_EQ(spec.early_stop.min_iter, 15);
  EXPECT_EQ(spec.early_stop.eta, 3);
}

}  // namespace
}  // namespace sweep::spec
