#include "scheduler/store.h"

#include <sqlite3.h>

#include <filesystem>
#include <thread>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status_util.h"
#include "spdlog/spdlog.h"

namespace sweep {
namespace {

// Numbered migrations; entry i takes the schema from version i to i + 1. Never edit
// one that has shipped: add a new one.
constexpr const char* kMigrations[] = {
    // 1: the first schema.
    R"sql(
CREATE TABLE sweeps (
  id           TEXT PRIMARY KEY,
  name         TEXT NOT NULL,
  spec_yaml    TEXT NOT NULL,
  file_name    TEXT NOT NULL,
  working_dir  TEXT NOT NULL,
  method       TEXT NOT NULL,
  metric_name  TEXT NOT NULL,
  metric_goal  TEXT NOT NULL,
  seed         INTEGER NOT NULL,
  budget       INTEGER NOT NULL,
  next_index   INTEGER NOT NULL,
  state        TEXT NOT NULL,
  created_at   REAL NOT NULL,
  finished_at  REAL,
  end_reason   TEXT NOT NULL DEFAULT ''
);
CREATE TABLE trials (
  id           TEXT PRIMARY KEY,
  sweep_id     TEXT NOT NULL REFERENCES sweeps(id),
  idx          INTEGER NOT NULL,
  state        TEXT NOT NULL,
  params       TEXT NOT NULL,
  argv         TEXT NOT NULL,
  worker       TEXT NOT NULL DEFAULT '',
  host         TEXT NOT NULL DEFAULT '',
  gpu          INTEGER,
  attempt      INTEGER NOT NULL,
  epoch        INTEGER NOT NULL,
  last_seq     INTEGER NOT NULL,
  created_at   REAL NOT NULL,
  started_at   REAL,
  ended_at     REAL,
  exit_code    INTEGER,
  signal       INTEGER,
  message      TEXT NOT NULL DEFAULT '',
  final_metric REAL,
  best_metric  REAL,
  trial_dir    TEXT NOT NULL DEFAULT '',
  stdout_tail  TEXT NOT NULL DEFAULT '',
  stderr_tail  TEXT NOT NULL DEFAULT '',
  UNIQUE (sweep_id, idx)
);
CREATE INDEX trials_by_state ON trials(state);
CREATE TABLE metrics (
  trial_id     TEXT NOT NULL REFERENCES trials(id),
  attempt      INTEGER NOT NULL,
  step         INTEGER NOT NULL,
  name         TEXT NOT NULL,
  value        REAL NOT NULL,
  time         REAL NOT NULL
);
CREATE INDEX metrics_by_trial ON metrics(trial_id, name, step);
CREATE TABLE workers (
  id             TEXT PRIMARY KEY,
  host           TEXT NOT NULL,
  pid            INTEGER NOT NULL,
  slot           INTEGER NOT NULL,
  gpu_index      INTEGER,
  gpu_uuid       TEXT NOT NULL DEFAULT '',
  gpu_name       TEXT NOT NULL DEFAULT '',
  gpu_memory_mib INTEGER NOT NULL DEFAULT 0,
  state          TEXT NOT NULL,
  registered_at  REAL NOT NULL,
  last_heartbeat REAL NOT NULL,
  trial_id       TEXT NOT NULL DEFAULT ''
);
CREATE TABLE events (
  id        INTEGER PRIMARY KEY AUTOINCREMENT,
  time      REAL NOT NULL,
  kind      TEXT NOT NULL,
  sweep_id  TEXT NOT NULL DEFAULT '',
  trial_id  TEXT NOT NULL DEFAULT '',
  worker_id TEXT NOT NULL DEFAULT '',
  message   TEXT NOT NULL DEFAULT ''
);
)sql",
    // 2: early stopping records where a trial was stopped.
    R"sql(
ALTER TABLE trials ADD COLUMN stopped_at_step INTEGER;
)sql",
    // 3: indexes for status and ranking of sweeps with many trials.
    R"sql(
CREATE INDEX trials_by_sweep_state ON trials(sweep_id, state, started_at, ended_at);
CREATE INDEX trials_by_sweep_final ON trials(sweep_id, final_metric, idx);
)sql",
    // 4: GPU placement and telemetry (docs/schema.md): the GPUs a trial of several
    // held, the no-silent-CPU flag, the kind of a failure (oom), peak GPU memory,
    // energy and utilization; a worker's message about its GPU.
    R"sql(
ALTER TABLE trials ADD COLUMN gpus TEXT NOT NULL DEFAULT '';
ALTER TABLE trials ADD COLUMN gpu_flag TEXT NOT NULL DEFAULT '';
ALTER TABLE trials ADD COLUMN failure_kind TEXT NOT NULL DEFAULT '';
ALTER TABLE trials ADD COLUMN peak_gpu_memory_mib INTEGER;
ALTER TABLE trials ADD COLUMN energy_joules REAL;
ALTER TABLE trials ADD COLUMN gpu_utilization REAL;
ALTER TABLE workers ADD COLUMN message TEXT NOT NULL DEFAULT '';
CREATE INDEX trials_gpu_notes ON trials(sweep_id) WHERE gpu_flag <> '' OR failure_kind <> '';
)sql",
    // 5: why a running sweep launches no new trials (a budget such as
    // max_failed_trials, max_duration or metric.target ended it), so that a reader of
    // the file alone sees what the scheduler sees.
    R"sql(
ALTER TABLE sweeps ADD COLUMN launch_stopped TEXT NOT NULL DEFAULT '';
)sql",
};
constexpr int kSchemaVersion = sizeof(kMigrations) / sizeof(kMigrations[0]);

absl::Status SqliteError(sqlite3* db, const std::string& what) {
  int code = sqlite3_errcode(db);
  std::string msg = absl::StrCat(what, ": ", sqlite3_errmsg(db));
  if (code == SQLITE_BUSY || code == SQLITE_LOCKED) return absl::UnavailableError(msg);
  if (code == SQLITE_FULL) {
    return absl::ResourceExhaustedError(absl::StrCat(msg, " (disk full)"));
  }
  return absl::InternalError(msg);
}

}  // namespace

// The statements of the hot paths (every lease, report and finish), prepared once:
// parsing SQL again on every call was a large share of the scheduler's time.
struct Store::StmtCache {
  std::unordered_map<std::string, sqlite3_stmt*> stmts;
  ~StmtCache() {
    for (auto& [sql, stmt] : stmts) sqlite3_finalize(stmt);
  }
};

namespace {

// A prepared statement with positional binding helpers. Bind() calls take 1-based
// indexes in order of appearance. Built from SQL alone it prepares (and finalizes)
// its own statement; built with a cache it borrows the cached one and resets it.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) {
      status_ = SqliteError(db, absl::StrCat("preparing ", sql));
    }
  }
  Stmt(sqlite3* db, Store::StmtCache& cache, const std::string& sql) : db_(db), cached_(true) {
    sqlite3_stmt*& slot = cache.stmts[sql];
    if (slot == nullptr && sqlite3_prepare_v3(db, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT,
                                              &slot, nullptr) != SQLITE_OK) {
      status_ = SqliteError(db, absl::StrCat("preparing ", sql));
      cache.stmts.erase(sql);
      return;
    }
    stmt_ = slot;
  }
  ~Stmt() {
    if (!cached_) {
      sqlite3_finalize(stmt_);
    } else if (stmt_ != nullptr) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt& Bind(const std::string& v) {
    sqlite3_bind_text(stmt_, ++n_, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(const char* v) { return Bind(std::string(v)); }
  Stmt& Bind(int64_t v) {
    sqlite3_bind_int64(stmt_, ++n_, v);
    return *this;
  }
  Stmt& Bind(int v) { return Bind(static_cast<int64_t>(v)); }
  Stmt& Bind(double v) {
    sqlite3_bind_double(stmt_, ++n_, v);
    return *this;
  }
  template <typename T>
  Stmt& Bind(const std::optional<T>& v) {
    if (v) return Bind(*v);
    sqlite3_bind_null(stmt_, ++n_);
    return *this;
  }
  Stmt& BindNullIf(bool null, double v) {
    if (null) {
      sqlite3_bind_null(stmt_, ++n_);
      return *this;
    }
    return Bind(v);
  }
  // Runs a statement that returns no rows.
  absl::Status Run() {
    if (!status_.ok()) return status_;
    int rc = sqlite3_step(stmt_);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return SqliteError(db_, "writing");
    return absl::OkStatus();
  }
  // Steps to the next row: true while there is one; check status() after false.
  bool Next() {
    if (!status_.ok()) return false;
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) status_ = SqliteError(db_, "reading");
    return false;
  }
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    n_ = 0;
  }
  const absl::Status& status() const { return status_; }
  std::string Text(int col) const {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           sqlite3_column_bytes(stmt_, col))
             : std::string();
  }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  double Real(int col) const { return sqlite3_column_double(stmt_, col); }
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

 private:
  sqlite3* db_;
  bool cached_ = false;
  sqlite3_stmt* stmt_ = nullptr;
  int n_ = 0;
  absl::Status status_;
};

constexpr const char* kSweepColumns =
    "id, name, spec_yaml, file_name, working_dir, method, metric_name, metric_goal, "
    "seed, budget, next_index, state, created_at, finished_at, end_reason, launch_stopped";

SweepRow ReadSweep(const Stmt& s) {
  SweepRow r;
  r.id = s.Text(0);
  r.name = s.Text(1);
  r.spec_yaml = s.Text(2);
  r.file_name = s.Text(3);
  r.working_dir = s.Text(4);
  r.method = s.Text(5);
  r.metric_name = s.Text(6);
  r.metric_goal = s.Text(7);
  r.seed = static_cast<uint64_t>(s.Int(8));
  r.budget = s.Int(9);
  r.next_index = s.Int(10);
  r.state = s.Text(11);
  r.created_at = s.Real(12);
  r.finished_at = s.Real(13);
  r.end_reason = s.Text(14);
  r.launch_stopped = s.Text(15);
  return r;
}

constexpr const char* kTrialColumns =
    "id, sweep_id, idx, state, params, argv, worker, host, gpu, attempt, epoch, "
    "last_seq, created_at, started_at, ended_at, exit_code, signal, message, "
    "final_metric, best_metric, trial_dir, stdout_tail, stderr_tail, stopped_at_step";

TrialRow ReadTrial(const Stmt& s) {
  TrialRow r;
  r.id = s.Text(0);
  r.sweep_id = s.Text(1);
  r.index = s.Int(2);
  r.state = s.Text(3);
  r.params_json = s.Text(4);
  r.argv_json = s.Text(5);
  r.worker_id = s.Text(6);
  r.host = s.Text(7);
  r.gpu = s.IsNull(8) ? -1 : static_cast<int>(s.Int(8));
  r.attempt = static_cast<int>(s.Int(9));
  r.epoch = s.Int(10);
  r.last_seq = s.Int(11);
  r.created_at = s.Real(12);
  r.started_at = s.Real(13);
  r.ended_at = s.Real(14);
  if (!s.IsNull(15)) r.exit_code = static_cast<int>(s.Int(15));
  r.signal = static_cast<int>(s.Int(16));
  r.message = s.Text(17);
  if (!s.IsNull(18)) r.final_metric = s.Real(18);
  if (!s.IsNull(19)) r.best_metric = s.Real(19);
  r.trial_dir = s.Text(20);
  r.stdout_tail = s.Text(21);
  r.stderr_tail = s.Text(22);
  if (!s.IsNull(23)) r.stopped_at_step = s.Int(23);
  return r;
}

template <typename Row, typename Reader>
absl::StatusOr<std::vector<Row>> ReadAll(Stmt& s, Reader read) {
  std::vector<Row> rows;
  while (s.Next()) rows.push_back(read(s));
  if (!s.status().ok()) return s.status();
  return rows;
}

}  // namespace

namespace {

// Opens a connection with `flags` that waits up to 5 s for another connection's
// lock (the scheduler's short write locks, a WAL recovery) instead of failing.
absl::StatusOr<sqlite3*> OpenConnection(const std::string& path, int flags) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    std::string msg = absl::StrCat("cannot open database ", path, ": ",
                                   db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return absl::UnavailableError(msg);
  }
  sqlite3_busy_timeout(db, 5000);
  return db;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path) {
  absl::StatusOr<sqlite3*> db =
      OpenConnection(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (!db.ok()) return db.status();
  std::unique_ptr<Store> store(new Store(*db));
  SWEEP_RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL"));
  SWEEP_RETURN_IF_ERROR(store->Exec("PRAGMA synchronous=NORMAL"));
  SWEEP_RETURN_IF_ERROR(store->Exec("PRAGMA foreign_keys=ON"));
  if (absl::Status st = store->Migrate(); !st.ok()) {
    return absl::Status(st.code(), absl::StrCat(path, ": ", st.message()));
  }
  return store;
}

absl::StatusOr<std::unique_ptr<Store>> Store::OpenReadOnly(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat("no database at ", path,
                                            " (--db names the file `sweep run` or "
                                            "`sweep scheduler` wrote)"));
  }
  absl::StatusOr<sqlite3*> opened = OpenConnection(path, SQLITE_OPEN_READONLY);
  if (!opened.ok()) return opened.status();
  sqlite3* db = *opened;
  std::unique_ptr<Store> store(new Store(db));
  store->read_only_ = true;
  int64_t version = 0;
  {
    Stmt s(db, "SELECT MAX(version) FROM schema_version");
    if (s.Next() && !s.IsNull(0)) version = s.Int(0);
    if (!s.status().ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, " is not a sweep database (", s.status().message(), ")"));
    }
  }
  if (version != kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " has schema version ", version, "; this sweep reads version ",
        kSchemaVersion,
        version < kSchemaVersion
            ? ": start `sweep scheduler --db FILE` on it once to upgrade it"
            : ": use a newer sweep"));
  }
  return store;
}

// A thread with its own connection that copies the WAL into the database, so that
// no request waits behind a checkpoint's copying and syncing. The writing
// connection's commit hook (OnCommit) wakes it once the WAL holds kRestartFrames.
// Copying beside a steady stream of commits never leaves the WAL fully copied, and
// only a fully copied WAL starts over at the next commit; so after its unlocked
// passes the thread copies what is left while it holds the store's write lock
// (`writes`): by then that is the little written since its last pass. A commit
// checkpoints itself only past kCommitCheckpointFrames, when writes outrun the thread
// (a burst far above what workers send), which keeps the WAL bounded whatever the
// write rate.
class Store::Checkpointer {
 public:
  // About 4 MB of 4 KiB pages: SQLite's own auto-checkpoint threshold.
  static constexpr int kRestartFrames = 1000;
  static constexpr int kCommitCheckpointFrames = 4 * kRestartFrames;
  // Unlocked passes go on while each finds more new frames than this (at most 4).
  static constexpr int kSmallFrames = 256;

  Checkpointer(sqlite3* db, absl::Duration every, absl::Mutex* writes)
      : db_(db), every_(every), writes_(writes) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Checkpointer() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    thread_.join();
    sqlite3_close(db_);
  }

  // sqlite3_wal_hook of the writing connection: runs after each of its commits,
  // with the frames now in the WAL (this replaces SQLite's auto-checkpoint).
  static int OnCommit(void* self, sqlite3* db, const char* /*schema*/, int frames) {
    if (frames >= kCommitCheckpointFrames) {
      sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    } else if (frames >= kRestartFrames) {
      auto* c = static_cast<Checkpointer*>(self);
      absl::MutexLock lock(&c->mu_);
      c->wake_ = true;
    }
    return SQLITE_OK;
  }

 private:
  void Run() {
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        mu_.AwaitWithTimeout(absl::Condition(this, &Checkpointer::Due), every_);
        if (stop_) return;
        wake_ = false;
      }
      int log = 0, copied = 0, before = 0;
      bool ok = Pass(&log, &copied);
      for (int pass = 1; ok && pass < 4 && log - before > kSmallFrames; ++pass) {
        before = log;
        ok = Pass(&log, &copied);
      }
      if (ok && log >= kRestartFrames) {
        absl::MutexLock no_writes(writes_);
        Pass(&log, &copied);
      }
    }
  }

  bool Due() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || wake_; }

  // One PASSIVE checkpoint: *log is the WAL's frames, *copied those now in the
  // database. False when it failed (said once until checkpoints work again).
  bool Pass(int* log, int* copied) {
    int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, log, copied);
    bool failed = rc != SQLITE_OK && rc != SQLITE_BUSY;
    if (failed && !failing_) spdlog::warn("WAL checkpoint failed: {}", sqlite3_errmsg(db_));
    if (!failed && failing_) spdlog::info("WAL checkpoints work again");
    failing_ = failed;
    return rc == SQLITE_OK;
  }

  sqlite3* const db_;
  const absl::Duration every_;
  absl::Mutex* const writes_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;  // the WAL passed kRestartFrames
  bool failing_ = false;  // said once until checkpoints work again; thread only
  std::thread thread_;
};

Store::Store(sqlite3* db) : db_(db), cache_(std::make_unique<StmtCache>()) {}

Store::~Store() {
  sqlite3_wal_hook(db_, nullptr, nullptr);  // it points at the checkpointer
  checkpointer_.reset();
  cache_.reset();  // finalizes the cached statements before the connection closes
  sqlite3_close(db_);
}

absl::Status Store::CheckpointInBackground(absl::Duration every) {
  if (checkpointer_) return absl::OkStatus();
  sqlite3* db = nullptr;
  const char* path = sqlite3_db_filename(db_, "main");
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK) {
    absl::Status st = absl::UnavailableError(
        absl::StrCat("cannot open ", path, " for checkpoints: ", db ? sqlite3_errmsg(db) : "?"));
    sqlite3_close(db);
    return st;
  }
  sqlite3_busy_timeout(db, 1000);
  // A new connection knows the file is in WAL mode only once it has read it.
  if (sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr) != SQLITE_OK) {
    absl::Status st = absl::UnavailableError(
        absl::StrCat("cannot open ", path, " for checkpoints: ", sqlite3_errmsg(db)));
    sqlite3_close(db);
    return st;
  }
  checkpointer_ = std::make_unique<Checkpointer>(db, every, &writes_);
  // From now on the thread checkpoints; a commit only when it falls far behind.
  sqlite3_wal_hook(db_, &Checkpointer::OnCommit, checkpointer_.get());
  return absl::OkStatus();
}

absl::Status Store::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    absl::Status st = SqliteError(db_, "executing");
    sqlite3_free(err);
    return st;
  }
  return absl::OkStatus();
}

absl::Status Store::Migrate() {
  SWEEP_RETURN_IF_ERROR(
      Exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"));
  int64_t version = 0;
  {
    Stmt s(db_, "SELECT MAX(version) FROM schema_version");
    if (s.Next() && !s.IsNull(0)) version = s.Int(0);
    SWEEP_RETURN_IF_ERROR(s.status());
  }
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the database has schema version ", version, " but this sweep knows only up to ",
        kSchemaVersion, "; use a newer sweep"));
  }
  for (int64_t v = version; v < kSchemaVersion; ++v) {
    SWEEP_RETURN_IF_ERROR(InTransaction([&]() -> absl::Status {
      SWEEP_RETURN_IF_ERROR(Exec(kMigrations[v]));
      return Stmt(db_, "INSERT INTO schema_version (version) VALUES (?)").Bind(v + 1).Run();
    }));
  }
  return absl::OkStatus();
}

int64_t Store::TotalChanges() const { return sqlite3_total_changes64(db_); }

absl::Status Store::ExecCached(const char* sql) {
  return Stmt(db_, *cache_, sql).Run();
}

absl::Status Store::InTransaction(const std::function<absl::Status()>& body) {
  if (txn_depth_ > 0) {
    ++txn_depth_;
    absl::Status st = body();
    --txn_depth_;
    return st;
  }
  absl::MutexLock no_checkpoint(&writes_);
  // A reader's transaction is a snapshot: it takes no lock that could hold off the
  // scheduler's writes.
  SWEEP_RETURN_IF_ERROR(ExecCached(read_only_ ? "BEGIN" : "BEGIN IMMEDIATE"));
  txn_depth_ = 1;
  absl::Status st = body();
  txn_depth_ = 0;
  if (st.ok() && sqlite3_get_autocommit(db_)) {
    // SQLite rolled the transaction back itself (a full disk, an I/O error): what
    // the body wrote after that point was not part of it.
    st = absl::UnavailableError("the database rolled the transaction back");
  }
  if (st.ok()) st = ExecCached("COMMIT");
  if (!st.ok() && !sqlite3_get_autocommit(db_)) ExecCached("ROLLBACK").IgnoreError();
  return st;
}

absl::Status Store::InsertSweep(const SweepRow& s) {
  return Stmt(db_, *cache_, absl::StrCat("INSERT INTO sweeps (", kSweepColumns,
                                ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
                       .c_str())
      .Bind(s.id).Bind(s.name).Bind(s.spec_yaml).Bind(s.file_name).Bind(s.working_dir)
      .Bind(s.method).Bind(s.metric_name).Bind(s.metric_goal)
      .Bind(static_cast<int64_t>(s.seed)).Bind(s.budget).Bind(s.next_index).Bind(s.state)
      .Bind(s.created_at).BindNullIf(s.finished_at == 0, s.finished_at).Bind(s.end_reason)
      .Bind(s.launch_stopped)
      .Run();
}

absl::Status Store::UpdateSweep(const SweepRow& s) {
  return Stmt(db_, *cache_,
              "UPDATE sweeps SET state=?, next_index=?, finished_at=?, end_reason=?, "
              "launch_stopped=? WHERE id=?")
      .Bind(s.state).Bind(s.next_index).BindNullIf(s.finished_at == 0, s.finished_at)
      .Bind(s.end_reason).Bind(s.launch_stopped).Bind(s.id)
      .Run();
}

absl::Status Store::UpsertTrial(const TrialRow& t) {
  return Stmt(db_, *cache_, absl::StrCat(
                       "INSERT INTO trials (", kTrialColumns,
                       ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                       "ON CONFLICT(id) DO UPDATE SET state=excluded.state, "
                       "worker=excluded.worker, host=excluded.host, gpu=excluded.gpu, "
                       "attempt=excluded.attempt, epoch=excluded.epoch, "
                       "last_seq=excluded.last_seq, started_at=excluded.started_at, "
                       "ended_at=excluded.ended_at, exit_code=excluded.exit_code, "
                       "signal=excluded.signal, message=excluded.message, "
                       "final_metric=excluded.final_metric, "
                       "best_metric=excluded.best_metric, trial_dir=excluded.trial_dir, "
                       "stdout_tail=excluded.stdout_tail, stderr_tail=excluded.stderr_tail, "
                       "stopped_at_step=excluded.stopped_at_step")
                       .c_str())
      .Bind(t.id).Bind(t.sweep_id).Bind(t.index).Bind(t.state).Bind(t.params_json)
      .Bind(t.argv_json).Bind(t.worker_id).Bind(t.host)
      .Bind(t.gpu >= 0 ? std::optional<int>(t.gpu) : std::nullopt)
      .Bind(t.attempt).Bind(t.epoch).Bind(t.last_seq).Bind(t.created_at)
      .BindNullIf(t.started_at == 0, t.started_at).BindNullIf(t.ended_at == 0, t.ended_at)
      .Bind(t.exit_code).Bind(t.signal).Bind(t.message).Bind(t.final_metric)
      .Bind(t.best_metric).Bind(t.trial_dir).Bind(t.stdout_tail).Bind(t.stderr_tail)
      .Bind(t.stopped_at_step)
      .Run();
}

absl::Status Store::AppendMetrics(const TrialRow& trial,
                                  const std::vector<MetricRow>& points) {
  return InTransaction([&]() -> absl::Status {
    Stmt ins(db_, *cache_,
             "INSERT INTO metrics (trial_id, attempt, step, name, value, time) "
             "VALUES (?,?,?,?,?,?)");
    for (const MetricRow& p : points) {
      ins.Reset();
      SWEEP_RETURN_IF_ERROR(ins.Bind(trial.id).Bind(p.attempt).Bind(p.step).Bind(p.name)
                                .Bind(p.value).Bind(p.time).Run());
    }
    return Stmt(db_, *cache_,
                "UPDATE trials SET last_seq=?, final_metric=?, best_metric=? WHERE id=?")
        .Bind(trial.last_seq).Bind(trial.final_metric).Bind(trial.best_metric)
        .Bind(trial.id)
        .Run();
  });
}

namespace {

// The columns of a worker row, in the order BindWorker binds them.
constexpr char kInsertWorker[] =
    "INSERT INTO workers (id, host, pid, slot, gpu_index, gpu_uuid, gpu_name, "
    "gpu_memory_mib, state, registered_at, last_heartbeat, trial_id) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ";

Stmt& BindWorker(Stmt& s, const WorkerRow& w) {
  return s.Bind(w.id).Bind(w.host).Bind(w.pid).Bind(w.slot)
      .Bind(w.has_gpu ? std::optional<int>(w.gpu_index) : std::nullopt)
      .Bind(w.gpu_uuid).Bind(w.gpu_name).Bind(w.gpu_memory_mib).Bind(w.state)
      .Bind(w.registered_at).Bind(w.last_heartbeat).Bind(w.trial_id);
}

}  // namespace

absl::Status Store::InsertWorker(const WorkerRow& w) {
  Stmt s(db_, *cache_, absl::StrCat(kInsertWorker, "ON CONFLICT(id) DO NOTHING"));
  SWEEP_RETURN_IF_ERROR(BindWorker(s, w).Run());
  if (sqlite3_changes(db_) == 0) {
    return absl::AlreadyExistsError(absl::StrCat("worker id ", w.id, " is taken"));
  }
  return absl::OkStatus();
}

absl::Status Store::UpsertWorker(const WorkerRow& w) {
  Stmt s(db_, *cache_,
         absl::StrCat(kInsertWorker,
                      "ON CONFLICT(id) DO UPDATE SET state=excluded.state, "
                      "last_heartbeat=excluded.last_heartbeat, trial_id=excluded.trial_id"));
  return BindWorker(s, w).Run();
}

absl::Status Store::AddEvent(double time, const std::string& kind,
                             const std::string& sweep_id, const std::string& trial_id,
                             const std::string& worker_id, const std::string& message) {
  return Stmt(db_, *cache_,
              "INSERT INTO events (time, kind, sweep_id, trial_id, worker_id, message) "
              "VALUES (?,?,?,?,?,?)")
      .Bind(time).Bind(kind).Bind(sweep_id).Bind(trial_id).Bind(worker_id).Bind(message)
      .Run();
}

absl::StatusOr<std::vector<SweepRow>> Store::LoadSweeps() {
  Stmt s(db_, absl::StrCat("SELECT ", kSweepColumns,
                           " FROM sweeps ORDER BY created_at, rowid").c_str());
  return ReadAll<SweepRow>(s, ReadSweep);
}

absl::StatusOr<SweepRow> Store::LoadSweep(const std::string& id) {
  Stmt s(db_, absl::StrCat("SELECT ", kSweepColumns, " FROM sweeps WHERE id=?").c_str());
  s.Bind(id);
  if (s.Next()) return ReadSweep(s);
  SWEEP_RETURN_IF_ERROR(s.status());
  return absl::NotFoundError(absl::StrCat("no sweep with id '", id, "'"));
}

absl::StatusOr<std::vector<TrialRow>> Store::LoadTrials(const std::string& sweep_id) {
  Stmt s(db_, absl::StrCat("SELECT ", kTrialColumns,
                           " FROM trials WHERE sweep_id=? ORDER BY idx").c_str());
  s.Bind(sweep_id);
  return ReadAll<TrialRow>(s, ReadTrial);
}

absl::StatusOr<std::vector<TrialRow>> Store::LoadActiveTrials() {
  Stmt s(db_, absl::StrCat("SELECT ", kTrialColumns,
                           " FROM trials WHERE state IN ('queued','running') "
                           "ORDER BY created_at, rowid").c_str());
  return ReadAll<TrialRow>(s, ReadTrial);
}

absl::StatusOr<TrialRow> Store::LoadTrial(const std::string& id) {
  Stmt s(db_, *cache_, absl::StrCat("SELECT ", kTrialColumns, " FROM trials WHERE id=?").c_str());
  s.Bind(id);
  if (s.Next()) return ReadTrial(s);
  SWEEP_RETURN_IF_ERROR(s.status());
  return absl::NotFoundError(absl::StrCat("no trial with id '", id, "'"));
}

absl::StatusOr<std::vector<MetricRow>> Store::LoadMetrics(const std::string& trial_id) {
  Stmt s(db_,
         "SELECT attempt, step, name, value, time FROM metrics WHERE trial_id=? "
         "ORDER BY rowid");
  s.Bind(trial_id);
  return ReadAll<MetricRow>(s, [](const Stmt& s) {
    return MetricRow{.attempt = static_cast<int>(s.Int(0)),
                     .step = s.Int(1),
                     .name = s.Text(2),
                     .value = s.Real(3),
                     .time = s.Real(4)};
  });
}

absl::StatusOr<std::vector<WorkerRow>> Store::LoadWorkers() {
  Stmt s(db_,
         "SELECT id, host, pid, slot, gpu_index, gpu_uuid, gpu_name, gpu_memory_mib, "
         "state, registered_at, last_heartbeat, trial_id, message FROM workers ORDER BY rowid");
  return ReadAll<WorkerRow>(s, [](const Stmt& s) {
    WorkerRow w;
    w.id = s.Text(0);
    w.host = s.Text(1);
    w.pid = static_cast<int>(s.Int(2));
    w.slot = static_cast<int>(s.Int(3));
    w.has_gpu = !s.IsNull(4);
    w.gpu_index = w.has_gpu ? static_cast<int>(s.Int(4)) : -1;
    w.gpu_uuid = s.Text(5);
    w.gpu_name = s.Text(6);
    w.gpu_memory_mib = s.Int(7);
    w.state = s.Text(8);
    w.registered_at = s.Real(9);
    w.last_heartbeat = s.Real(10);
    w.trial_id = s.Text(11);
    w.message = s.Text(12);
    return w;
  });
}

absl::StatusOr<std::map<std::string, int64_t>> Store::CountTrials(
    const std::string& sweep_id) {
  Stmt s(db_, *cache_, "SELECT state, COUNT(*) FROM trials WHERE sweep_id=? GROUP BY state");
  s.Bind(sweep_id);
  std::map<std::string, int64_t> counts;
  while (s.Next()) counts[s.Text(0)] = s.Int(1);
  SWEEP_RETURN_IF_ERROR(s.status());
  return counts;
}

absl::StatusOr<std::optional<std::pair<std::string, double>>> Store::BestTrial(
    const std::string& sweep_id, bool maximize) {
  Stmt s(db_, *cache_, maximize ? "SELECT id, final_metric FROM trials WHERE sweep_id=? AND "
                         "final_metric IS NOT NULL ORDER BY final_metric DESC, idx LIMIT 1"
                       : "SELECT id, final_metric FROM trials WHERE sweep_id=? AND "
                         "final_metric IS NOT NULL ORDER BY final_metric ASC, idx LIMIT 1");
  s.Bind(sweep_id);
  if (s.Next()) return std::optional(std::make_pair(s.Text(0), s.Real(1)));
  SWEEP_RETURN_IF_ERROR(s.status());
  return std::nullopt;
}

absl::StatusOr<std::vector<Store::SeriesPoint>> Store::LoadMetricSeries(
    const std::string& sweep_id, const std::string& name) {
  Stmt s(db_,
         "SELECT m.trial_id, m.step, m.value FROM metrics m JOIN trials t ON t.id = "
         "m.trial_id WHERE t.sweep_id=? AND m.name=? ORDER BY m.rowid");
  s.Bind(sweep_id).Bind(name);
  return ReadAll<SeriesPoint>(s, [](const Stmt& s) {
    return SeriesPoint{.trial_id = s.Text(0), .step = s.Int(1), .value = s.Real(2)};
  });
}

absl::StatusOr<std::map<std::string, std::vector<std::string>>> Store::LoadNotices(
    const std::string& sweep_id) {
  Stmt s(db_,
         "SELECT trial_id, message FROM events WHERE sweep_id=? AND "
         "kind IN ('trial_notice', 'metric_rejected') "
         "ORDER BY rowid");
  s.Bind(sweep_id);
  std::map<std::string, std::vector<std::string>> out;
  while (s.Next()) out[s.Text(0)].push_back(s.Text(1));
  SWEEP_RETURN_IF_ERROR(s.status());
  return out;
}

absl::StatusOr<std::map<std::string, double>> Store::LastValues(
    const std::string& sweep_id, const std::string& name) {
  // The row with the highest (attempt, step, rowid) of each trial.
  Stmt s(db_,
         "SELECT m.trial_id, m.value FROM metrics m JOIN trials t ON t.id = m.trial_id "
         "WHERE t.sweep_id=? AND m.name=? AND m.rowid = ("
         "  SELECT m2.rowid FROM metrics m2 WHERE m2.trial_id = m.trial_id AND "
         "  m2.name = m.name ORDER BY m2.attempt DESC, m2.step DESC, m2.rowid DESC "
         "  LIMIT 1)");
  s.Bind(sweep_id).Bind(name);
  std::map<std::string, double> out;
  while (s.Next()) out[s.Text(0)] = s.Real(1);
  SWEEP_RETURN_IF_ERROR(s.status());
  return out;
}

// ---- GPU placement and telemetry (migration 4)

absl::StatusOr<SpentRow> Store::Spent(const std::string& sweep_id) {
  Stmt s(db_,
         "SELECT COUNT(*), "
         "  COALESCE(SUM(CASE WHEN gpu >= 0 THEN ended_at - started_at ELSE 0 END), 0), "
         "  COALESCE(SUM(energy_joules), 0) "
         "FROM trials WHERE sweep_id=? AND started_at > 0 AND ended_at >= started_at");
  s.Bind(sweep_id);
  SpentRow out;
  if (s.Next()) {
    out.trials = s.Int(0);
    out.gpu_trial_seconds = s.Real(1);
    out.energy_joules = s.Real(2);
  }
  SWEEP_RETURN_IF_ERROR(s.status());
  return out;
}

absl::Status Store::UpdateTrialGpu(const TrialGpuRow& r) {
  return Stmt(db_,
              "UPDATE trials SET gpus=?, gpu_flag=?, failure_kind=?, peak_gpu_memory_mib=?, "
              "energy_joules=?, gpu_utilization=? WHERE id=?")
      .Bind(r.gpus).Bind(r.gpu_flag).Bind(r.failure_kind).Bind(r.peak_memory_mib)
      .Bind(r.energy_joules).Bind(r.utilization).Bind(r.trial_id)
      .Run();
}

namespace {

constexpr const char* kTrialGpuColumns =
    "id, gpus, gpu_flag, failure_kind, peak_gpu_memory_mib, energy_joules, "
    "gpu_utilization, state";

TrialGpuRow ReadTrialGpu(const Stmt& s) {
  TrialGpuRow r;
  r.trial_id = s.Text(0);
  r.gpus = s.Text(1);
  r.gpu_flag = s.Text(2);
  r.failure_kind = s.Text(3);
  if (!s.IsNull(4)) r.peak_memory_mib = s.Int(4);
  if (!s.IsNull(5)) r.energy_joules = s.Real(5);
  if (!s.IsNull(6)) r.utilization = s.Real(6);
  r.state = s.Text(7);
  return r;
}

}  // namespace

absl::StatusOr<std::map<std::string, TrialGpuRow>> Store::LoadTrialGpu(
    const std::string& sweep_id) {
  Stmt s(db_, absl::StrCat("SELECT ", kTrialGpuColumns,
                           " FROM trials WHERE sweep_id=? AND (gpus<>'' OR gpu_flag<>'' OR "
                           "failure_kind<>'' OR peak_gpu_memory_mib IS NOT NULL OR "
                           "energy_joules IS NOT NULL)")
                  .c_str());
  s.Bind(sweep_id);
  std::map<std::string, TrialGpuRow> out;
  while (s.Next()) {
    TrialGpuRow r = ReadTrialGpu(s);
    out[r.trial_id] = std::move(r);
  }
  SWEEP_RETURN_IF_ERROR(s.status());
  return out;
}

absl::StatusOr<TrialGpuRow> Store::LoadOneTrialGpu(const std::string& trial_id) {
  Stmt s(db_, absl::StrCat("SELECT ", kTrialGpuColumns, " FROM trials WHERE id=?").c_str());
  s.Bind(trial_id);
  if (s.Next()) return ReadTrialGpu(s);
  SWEEP_RETURN_IF_ERROR(s.status());
  return absl::NotFoundError(absl::StrCat("no trial with id '", trial_id, "'"));
}

absl::StatusOr<std::map<std::string, int64_t>> Store::CountGpuNotes(const std::string& sweep_id) {
  Stmt s(db_,
         "SELECT gpu_flag, failure_kind FROM trials WHERE sweep_id=? AND "
         "(gpu_flag <> '' OR failure_kind <> '')");
  s.Bind(sweep_id);
  std::map<std::string, int64_t> out;
  while (s.Next()) {
    std::string flag = s.Text(0), kind = s.Text(1);
    if (!flag.empty()) ++out[flag];
    if (!kind.empty() && kind != flag) ++out[kind];
  }
  SWEEP_RETURN_IF_ERROR(s.status());
  return out;
}

absl::Status Store::UpdateWorkerMessage(const std::string& worker_id,
                                        const std::string& message) {
  return Stmt(db_, "UPDATE workers SET message=? WHERE id=?").Bind(message).Bind(worker_id).Run();
}

}  // namespace sweep
