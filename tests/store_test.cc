#include "scheduler/store.h"

#include <filesystem>

#include "common/status_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing.h"

namespace sweep {
namespace {

using ::sweep::testing::Db;
using ::sweep::testing::TempDir;

SweepRow ASweep() {
  SweepRow s;
  s.id = "abcd1234";
  s.name = "lr";
  s.spec_yaml = "method: grid";
  s.file_name = "lr.yaml";
  s.method = "grid";
  s.metric_name = "loss";
  s.metric_goal = "minimize";
  s.seed = 42;
  s.budget = 3;
  s.created_at = 100;
  return s;
}

TrialRow ATrial(int index) {
  TrialRow t;
  t.id = "abcd1234-000" + std::to_string(index);
  t.sweep_id = "abcd1234";
  t.index = index;
  t.state = "running";
  t.params_json = R"({"lr":0.1})";
  t.attempt = 1;
  t.epoch = 1;
  t.created_at = 101;
  t.started_at = 102;
  return t;
}

TEST(StoreTest, SweepsTrialsAndMetricsRoundTripThroughAReopenedFile) {
  TempDir dir;
  {
    auto store = *Store::Open(dir / "s.db");
    ASSERT_TRUE(store->InsertSweep(ASweep()).ok());
    TrialRow t = ATrial(0);
    ASSERT_TRUE(store->UpsertTrial(t).ok());
    t.last_seq = 1;
    t.final_metric = 0.5;
    t.best_metric = 0.4;
    ASSERT_TRUE(store
                    ->AppendMetrics(t, {{.attempt = 1, .step = 1, .name = "loss", .value = 0.4,
                                         .time = 5},
                                        {.attempt = 1, .step = 2, .name = "loss", .value = 0.5,
                                         .time = 6}})
                    .ok());
    t.state = "completed";
    t.exit_code = 0;
    t.ended_at = 110;
    ASSERT_TRUE(store->UpsertTrial(t).ok());
  }
  auto store = *Store::Open(dir / "s.db");
  auto sweeps = store->LoadSweeps();
  ASSERT_TRUE(sweeps.ok());
  ASSERT_EQ(sweeps->size(), 1u);
  EXPECT_EQ((*sweeps)[0].seed, 42u);
  EXPECT_EQ((*sweeps)[0].budget, 3);
  auto t = store->LoadTrial("abcd1234-0000");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->state, "completed");
  EXPECT_EQ(t->exit_code, 0);
  EXPECT_EQ(t->final_metric, 0.5);
  EXPECT_EQ(t->best_metric, 0.4);
  EXPECT_EQ(t->last_seq, 1);
  auto metrics = store->LoadMetrics("abcd1234-0000");
  ASSERT_EQ(metrics->size(), 2u);
  EXPECT_EQ((*metrics)[1].step, 2);
  auto last = store->LastValues("abcd1234", "loss");
  EXPECT_EQ((*last)["abcd1234-0000"], 0.5);
  auto counts = store->CountTrials("abcd1234");
  EXPECT_EQ((*counts)["completed"], 1);
  auto best = store->BestTrial("abcd1234", /*maximize=*/false);
  ASSERT_TRUE(best.ok() && best->has_value());
  EXPECT_EQ((*best)->first, "abcd1234-0000");
}

TEST(StoreTest, MissingRowsAreNotFound) {
  TempDir dir;
  auto store = *Store::Open(dir / "s.db");
  EXPECT_EQ(store->LoadSweep("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->LoadTrial("nope-0001").status().code(), absl::StatusCode::kNotFound);
}

// A registration never takes over another worker's row.
TEST(StoreTest, InsertingAWorkerWhoseIdIsTakenFailsAndLeavesTheRowAsItWas) {
  TempDir dir;
  auto store = Store::Open(dir / "sweeps.db");
  ASSERT_TRUE(store.ok()) << store.status();
  WorkerRow w;
  w.id = "node1/cpu0-00000000000000aa";
  w.host = "node1";
  w.pid = 111;
  w.state = "lost";
  ASSERT_TRUE((*store)->InsertWorker(w).ok());
  WorkerRow other = w;
  other.pid = 222;
  other.state = "idle";
  absl::Status st = (*store)->InsertWorker(other);
  EXPECT_EQ(st.code(), absl::StatusCode::kAlreadyExists) << st;
  Db db(dir / "sweeps.db");
  EXPECT_EQ(db.Query("SELECT pid, state FROM workers"),
            (std::vector<std::vector<std::string>>{{"111", "lost"}}));
  other.id = "node1/cpu0-00000000000000bb";
  EXPECT_TRUE((*store)->InsertWorker(other).ok());
  EXPECT_EQ(db.Value("SELECT COUNT(*) FROM workers"), "2");
}

TEST(StoreTest, FailedTransactionLeavesNothingBehind) {
  TempDir dir;
  auto store = *Store::Open(dir / "s.db");
  ASSERT_TRUE(store->InsertSweep(ASweep()).ok());
  absl::Status st = store->InTransaction([&]() -> absl::Status {
    EXPECT_TRUE(store->UpsertTrial(ATrial(0)).ok());
    return absl::AbortedError("changed my mind");
  });
  EXPECT_EQ(st.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(store->LoadTrial("abcd1234-0000").status().code(), absl::StatusCode::kNotFound);
}

// Runs `sql` on the database at `path` as another program would (to age or damage it).
void ExecOn(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);
}

TEST(StoreTest, DatabaseFromANewerSweepIsRefused) {
  TempDir dir;
  { auto store = *Store::Open(dir / "s.db"); }
  ExecOn(dir / "s.db", "INSERT INTO schema_version VALUES (999)");
  auto store = Store::Open(dir / "s.db");
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(StoreTest, ReadOnlyStoreReadsWhatTheWriterCommittedAndCannotWrite) {
  TempDir dir;
  auto writer = *Store::Open(dir / "s.db");
  SweepRow s;
  s.id = "abcd1234";
  s.name = "lr";
  s.budget = 3;
  s.launch_stopped = "max_failed_trials (2) reached";
  ASSERT_TRUE(writer->InsertSweep(s).ok());

  auto reader = Store::OpenReadOnly(dir / "s.db");
  ASSERT_TRUE(reader.ok()) << reader.status();
  absl::StatusOr<SweepRow> read = (*reader)->LoadSweep("abcd1234");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->launch_stopped, "max_failed_trials (2) reached");
  // Its transaction is a snapshot beside the writer's commits.
  absl::Status st = (*reader)->InTransaction([&]() -> absl::Status {
    EXPECT_EQ((*reader)->LoadSweep("abcd1234")->state, "running");  // the snapshot starts
    s.state = "finished";
    EXPECT_TRUE(writer->UpdateSweep(s).ok());  // the writer is not held off
    EXPECT_EQ((*reader)->LoadSweep("abcd1234")->state, "running");
    return absl::OkStatus();
  });
  EXPECT_TRUE(st.ok()) << st;
  EXPECT_EQ((*reader)->LoadSweep("abcd1234")->state, "finished");
  EXPECT_FALSE((*reader)->UpdateSweep(s).ok());
}

TEST(StoreTest, ReadOnlyOpenNamesAMissingFileAFileOfAnotherKindAndAnOlderSchema) {
  TempDir dir;
  auto missing = Store::OpenReadOnly(dir / "none.db");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), ::testing::HasSubstr("none.db"));
  EXPECT_FALSE(std::filesystem::exists(dir / "none.db")) << "a reader creates nothing";

  testing::WriteFile(dir / "notes.txt", "not a database at all, just some text that is long enough\n");
  auto text = Store::OpenReadOnly(dir / "notes.txt");
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(text.status().message()), ::testing::HasSubstr("not a sweep database"));

  { auto store = *Store::Open(dir / "s.db"); }
  ExecOn(dir / "s.db", "DELETE FROM schema_version WHERE version = 5");
  auto older = Store::OpenReadOnly(dir / "s.db");
  EXPECT_EQ(older.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(older.status().message()), ::testing::HasSubstr("upgrade"));
}

TEST(StoreTest, SchemaIsWalAndVersioned) {
  TempDir dir;
  { auto store = *Store::Open(dir / "s.db"); }
  Db db(dir / "s.db");
  EXPECT_EQ(db.Value("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(db.Value("SELECT MAX(version) FROM schema_version"), "5");
  EXPECT_EQ(db.Value("SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name IN "
                     "('sweeps','trials','metrics','workers','events')"),
            "5");
}

TEST(StoreTest, NestedTransactionsCommitOrRollBackAsOne) {
  TempDir dir;
  auto store = *Store::Open(dir / "s.db");
  ASSERT_TRUE(store->InsertSweep(ASweep()).ok());
  absl::Status st = store->InTransaction([&]() -> absl::Status {
    EXPECT_TRUE(store->UpsertTrial(ATrial(0)).ok());
    // The inner call joins the outer transaction; its error rolls back both.
    return store->InTransaction([&]() -> absl::Status {
      EXPECT_TRUE(store->UpsertTrial(ATrial(1)).ok());
      return absl::InternalError("inner failure");
    });
  });
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(store->LoadTrials("abcd1234")->empty());
  ASSERT_TRUE(store->InTransaction([&]() -> absl::Status {
    SWEEP_RETURN_IF_ERROR(store->UpsertTrial(ATrial(0)));
    return store->InTransaction([&] { return store->UpsertTrial(ATrial(1)); });
  }).ok());
  EXPECT_EQ(store->LoadTrials("abcd1234")->size(), 2u);
}

TEST(StoreTest, BackgroundCheckpointsKeepTheWalBounded) {
  TempDir dir;
  std::string path = dir / "s.db";
  auto store = *Store::Open(path);
  ASSERT_TRUE(store->InsertSweep(ASweep()).ok());
  TrialRow t = ATrial(0);
  ASSERT_TRUE(store->UpsertTrial(t).ok());
  ASSERT_TRUE(store->CheckpointInBackground(absl::Milliseconds(5)).ok());
  // A steady stream of small transactions, as metric reports arrive: about 100 MB
  // of WAL frames in all. The WAL must start over now and then, not grow with them.
  uintmax_t largest = 0;
  for (int tx = 0; tx < 4000; ++tx) {
    std::vector<MetricRow> points;
    for (int i = 0; i < 20; ++i) points.push_back({1, tx * 20 + i, "loss", 1.0 / (i + 1), 1.0});
    t.last_seq = tx + 1;
    t.final_metric = 1.0 / (tx + 1);
    ASSERT_TRUE(store->AppendMetrics(t, points).ok());
    if (tx % 100 == 0) largest = std::max(largest, std::filesystem::file_size(path + "-wal"));
  }
  EXPECT_LT(largest, 32u << 20) << "the WAL grew to " << largest << " bytes";
  EXPECT_EQ(Db(path).Value("SELECT COUNT(*) FROM metrics"), "80000");
}

}  // namespace
}  // namespace sweep
