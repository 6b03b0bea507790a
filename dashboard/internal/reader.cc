#include "dashboard/internal/reader.h"

#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/status_util.h"
#include "sweeps/spec.h"

namespace sweep::dashboard_internal {
namespace {

using json = nlohmann::json;

// Every read error is Unavailable: the caller can only try again later.
absl::Status SqliteError(sqlite3* db, const std::string& what) {
  return absl::UnavailableError(
      absl::StrCat("reading the database: ", what, ": ", sqlite3_errmsg(db)));
}

// A prepared statement; Bind() takes positional parameters in order.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db), sql_(sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) {
      status_ = SqliteError(db, sql);
    }
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt& Bind(const std::string& v) {
    if (stmt_) sqlite3_bind_text(stmt_, ++n_, v.data(), v.size(), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int64_t v) {
    if (stmt_) sqlite3_bind_int64(stmt_, ++n_, v);
    return *this;
  }
  // Makes the statement ready to run again with new bindings.
  void Reset() {
    if (stmt_) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
    n_ = 0;
  }
  // Returns true while there is a row; false at the end or on error (see status()).
  bool Next() {
    if (!status_.ok()) return false;
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) status_ = SqliteError(db_, sql_);
    return false;
  }
  const absl::Status& status() const { return status_; }
  bool Null(int i) { return sqlite3_column_type(stmt_, i) == SQLITE_NULL; }
  std::string Text(int i) {
    const unsigned char* t = sqlite3_column_text(stmt_, i);
    return t ? std::string(reinterpret_cast<const char*>(t), sqlite3_column_bytes(stmt_, i))
             : std::string();
  }
  int64_t Int(int i) { return sqlite3_column_int64(stmt_, i); }
  double Real(int i) { return sqlite3_column_double(stmt_, i); }
  // The cell as JSON: null, a number or a string.
  json Value(int i) {
    switch (sqlite3_column_type(stmt_, i)) {
      case SQLITE_NULL:
        return nullptr;
      case SQLITE_INTEGER:
        return Int(i);
      case SQLITE_FLOAT:
        return Real(i);
      default:
        return Text(i);
    }
  }

 private:
  sqlite3* db_;
  std::string sql_;
  sqlite3_stmt* stmt_ = nullptr;
  int n_ = 0;
  absl::Status status_;
};

// One read transaction: every query in it sees the same snapshot.
class ReadTxn {
 public:
  explicit ReadTxn(sqlite3* db) : db_(db) {
    if (sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK) {
      status_ = SqliteError(db, "BEGIN");
    }
  }
  ~ReadTxn() {
    if (status_.ok()) sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
  }
  const absl::Status& status() const { return status_; }

 private:
  sqlite3* db_;
  absl::Status status_;
};

json ParseJson(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? json(text) : j;
}

bool IsLogScaled(spec::Distribution d) {
  switch (d) {
    case spec::Distribution::kLogUniform:
    case spec::Distribution::kLogUniformValues:
    case spec::Distribution::kQLogUniformValues:
    case spec::Distribution::kInvLogUniform:
    case spec::Distribution::kInvLogUniformValues:
    case spec::Distribution::kLogNormal:
    case spec::Distribution::kQLogNormal:
      return true;
    default:
      return false;
  }
}

// The search space as the page draws it: one entry per leaf parameter.
json ParametersOf(const spec::SweepSpec& s) {
  json out = json::array();
  for (const spec::Parameter& p : s.parameters) {
    json e = {{"name", p.Name()},
              {"path", p.path},
              {"distribution", std::string(spec::DistributionName(p.distribution))},
              {"log", IsLogScaled(p.distribution)}};
    switch (p.distribution) {
      case spec::Distribution::kConstant:
      case spec::Distribution::kCategorical:
        e["values"] = p.values;
        break;
      case spec::Distribution::kNormal:
      case spec::Distribution::kQNormal:
      case spec::Distribution::kLogNormal:
      case spec::Distribution::kQLogNormal:
        e["mu"] = p.mu;
        e["sigma"] = p.sigma;
        break;
      case spec::Distribution::kLogUniform:
      case spec::Distribution::kInvLogUniform:
        // min and max are natural-log exponents; the page wants value bounds.
        e["min"] =
            p.distribution == spec::Distribution::kLogUniform ? std::exp(p.min) : std::exp(-p.max);
        e["max"] =
            p.distribution == spec::Distribution::kLogUniform ? std::exp(p.max) : std::exp(-p.min);
        break;
      default:
        e["min"] = p.min;
        e["max"] = p.max;
    }
    out.push_back(std::move(e));
  }
  return out;
}

constexpr const char* kTrialColumns =
    "id, idx, state, params, worker, host, gpu, attempt, created_at, started_at, ended_at, "
    "exit_code, signal, message, final_metric, best_metric, last_seq, trial_dir, "
    "gpu_flag, failure_kind, peak_gpu_memory_mib, energy_joules, gpus";

json TrialJson(Stmt& s, double now) {
  json t = {{"id", s.Text(0)},
            {"index", s.Int(1)},
            {"state", s.Text(2)},
            {"params", ParseJson(s.Text(3))},
            {"worker", s.Text(4)},
            {"host", s.Text(5)},
            {"gpu", s.Value(6)},
            {"attempt", s.Int(7)},
            {"created_at", s.Value(8)},
            {"started_at", s.Value(9)},
            {"ended_at", s.Value(10)},
            {"exit_code", s.Value(11)},
            {"signal", s.Value(12)},
            {"message", s.Text(13)},
            {"final_metric", s.Value(14)},
            {"best_metric", s.Value(15)},
            {"reports", s.Int(16)},
            {"trial_dir", s.Text(17)},
            // GPU outcome and telemetry (migration 4): null or "" when none.
            {"gpu_flag", s.Text(18)},
            {"failure_kind", s.Text(19)},
            {"peak_gpu_memory_mib", s.Value(20)},
            {"energy_joules", s.Value(21)},
            {"gpus", s.Text(22)}};
  json duration = nullptr;
  if (!s.Null(9) && s.Real(9) > 0) {
    double end = !s.Null(10) && s.Real(10) > 0 ? s.Real(10) : now;
    duration = std::max(0.0, end - s.Real(9));
  }
  t["duration_s"] = duration;
  return t;
}

}  // namespace

json Thin(const json& points, int max_points) {
  size_t n = points.size();
  if (max_points < 2 || n <= static_cast<size_t>(max_points)) return points;
  json out = json::array();
  size_t last = static_cast<size_t>(-1);
  for (int i = 0; i < max_points; ++i) {
    size_t k =
        static_cast<size_t>(std::llround(static_cast<double>(i) * (n - 1) / (max_points - 1)));
    if (k == last) continue;
    out.push_back(points[k]);
    last = k;
  }
  return out;
}

absl::StatusOr<std::unique_ptr<DbReader>> DbReader::Open(const std::string& path,
                                                         const Clock* clock) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = absl::StrCat("dashboard: cannot open database ", path,
                                   " read-only: ", db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return absl::UnavailableError(msg);
  }
  sqlite3_busy_timeout(db, 2000);
  sqlite3_stmt* probe = nullptr;
  rc = sqlite3_prepare_v2(db, "SELECT id FROM sweeps LIMIT 0", -1, &probe, nullptr);
  sqlite3_finalize(probe);
  if (rc != SQLITE_OK) {
    std::string msg =
        absl::StrCat("dashboard: ", path, " is not a sweep database: ", sqlite3_errmsg(db));
    sqlite3_close(db);
    return absl::UnavailableError(msg);
  }
  return std::unique_ptr<DbReader>(new DbReader(db, clock));
}

DbReader::~DbReader() {
  absl::MutexLock lock(&mu_);
  sqlite3_close(db_);
}

absl::StatusOr<json> DbReader::SweepSummaryLocked(const std::string& id, double now) {
  Stmt s(db_,
         "SELECT id, name, state, method, metric_name, metric_goal, budget, next_index, "
         "created_at, finished_at, end_reason, file_name, seed FROM sweeps WHERE id=?");
  s.Bind(id);
  if (!s.Next()) {
    SWEEP_RETURN_IF_ERROR(s.status());
    return absl::NotFoundError(absl::StrCat("no sweep '", id, "' in this database"));
  }
  json out = {{"id", s.Text(0)},
              {"name", s.Text(1)},
              {"state", s.Text(2)},
              {"method", s.Text(3)},
              {"metric", s.Text(4)},
              {"goal", s.Text(5)},
              {"budget", s.Int(6)},
              {"created_at", s.Real(8)},
              {"finished_at", s.Null(9) || s.Real(9) <= 0 ? json(nullptr) : json(s.Real(9))},
              {"end_reason", s.Text(10)},
              {"file_name", s.Text(11)},
              {"seed", s.Int(12)}};
  const std::string state = s.Text(2);
  const int64_t budget = s.Int(6), next_index = s.Int(7);
  const double created = s.Real(8);
  const double end = !s.Null(9) && s.Real(9) > 0 ? s.Real(9) : now;

  std::map<std::string, int64_t> counts;
  Stmt c(db_, "SELECT state, COUNT(*) FROM trials WHERE sweep_id=? GROUP BY state");
  c.Bind(id);
  while (c.Next()) counts[c.Text(0)] = c.Int(1);
  SWEEP_RETURN_IF_ERROR(c.status());
  // Not-yet-started trials have no row: count them as queued, as `sweep status` does.
  int64_t unstarted = state == "running" && budget >= 0 ? budget - next_index : 0;
  json cj = json::object();
  for (const char* k : {"queued", "running", "completed", "failed", "stopped", "cancelled"}) {
    cj[k] = counts[k];
  }
  cj["queued"] = counts["queued"] + std::max<int64_t>(0, unstarted);
  int64_t done = counts["completed"] + counts["failed"] + counts["stopped"] + counts["cancelled"];
  out["counts"] = cj;
  out["done"] = done;
  out["elapsed_s"] = std::max(0.0, end - created);

  json best = nullptr;
  if (!out["metric"].get<std::string>().empty()) {
    Stmt b(db_, out["goal"] == "maximize"
                    ? "SELECT id, final_metric FROM trials WHERE sweep_id=? AND "
                      "final_metric IS NOT NULL ORDER BY final_metric DESC, idx LIMIT 1"
                    : "SELECT id, final_metric FROM trials WHERE sweep_id=? AND "
                      "final_metric IS NOT NULL ORDER BY final_metric ASC, idx LIMIT 1");
    b.Bind(id);
    if (b.Next()) best = {{"trial", b.Text(0)}, {"value", b.Real(1)}};
    SWEEP_RETURN_IF_ERROR(b.status());
  }
  out["best"] = best;

  // ETA: what is left, at the mean duration of the trials that ended, with as many
  // in parallel as run now. Unknown until a trial ended, or for unbounded sweeps.
  json eta = nullptr;
  if (state == "running" && budget >= 0) {
    Stmt d(db_,
           "SELECT AVG(ended_at - started_at), COUNT(*) FROM trials WHERE sweep_id=? AND "
           "state IN ('completed','failed','stopped') AND started_at > 0 AND ended_at > 0");
    d.Bind(id);
    if (d.Next() && d.Int(1) > 0) {
      double mean = d.Real(0);
      int64_t running = counts["running"];
      int64_t left = cj["queued"].get<int64_t>() + running;
      int64_t parallel = std::max<int64_t>(1, running);
      eta = left == 0 ? 0.0 : mean * static_cast<double>(left) / parallel;
    }
    SWEEP_RETURN_IF_ERROR(d.status());
  }
  out["eta_s"] = eta;
  return out;
}

absl::StatusOr<json> DbReader::Sweeps() {
  absl::MutexLock lock(&mu_);
  ReadTxn txn(db_);
  SWEEP_RETURN_IF_ERROR(txn.status());
  double now = ToUnixSecondsDouble(clock_->Now());
  std::vector<std::string> ids;
  Stmt s(db_, "SELECT id FROM sweeps ORDER BY created_at DESC, id");
  while (s.Next()) ids.push_back(s.Text(0));
  SWEEP_RETURN_IF_ERROR(s.status());
  json list = json::array();
  for (const std::string& id : ids) {
    SWEEP_ASSIGN_OR_RETURN(json one, SweepSummaryLocked(id, now));
    list.push_back(std::move(one));
  }
  return json{{"now", now}, {"sweeps", std::move(list)}};
}

absl::StatusOr<json> DbReader::Sweep(const std::string& id) {
  absl::MutexLock lock(&mu_);
  ReadTxn txn(db_);
  SWEEP_RETURN_IF_ERROR(txn.status());
  double now = ToUnixSecondsDouble(clock_->Now());
  SWEEP_ASSIGN_OR_RETURN(json out, SweepSummaryLocked(id, now));
  Stmt s(db_, "SELECT spec_yaml, working_dir FROM sweeps WHERE id=?");
  s.Bind(id);
  if (s.Next()) {
    out["spec_yaml"] = s.Text(0);
    out["working_dir"] = s.Text(1);
  }
  SWEEP_RETURN_IF_ERROR(s.status());
  absl::StatusOr<spec::SweepSpec> parsed =
      spec::ParseSpec(out["spec_yaml"].get<std::string>(), out["file_name"].get<std::string>());
  if (parsed.ok()) {
    out["parameters"] = ParametersOf(*parsed);
  } else {
    out["parameters"] = json::array();
    out["spec_error"] = std::string(parsed.status().message());
  }
  out["now"] = now;
  return out;
}

absl::StatusOr<std::vector<std::string>> DbReader::PickTrialsLocked(const std::string& sweep_id,
                                                                    bool maximize, int limit) {
  std::vector<std::string> ids;
  std::set<std::string> seen;
  auto take = [&](const char* sql, int64_t n) -> absl::Status {
    Stmt s(db_, sql);
    s.Bind(sweep_id).Bind(n);
    while (s.Next()) {
      if (seen.insert(s.Text(0)).second) ids.push_back(s.Text(0));
    }
    return s.status();
  };
  auto room = [&] { return static_cast<int64_t>(limit) - static_cast<int64_t>(ids.size()); };
  // Each query walks an index of trials: (sweep_id, state, ...), (sweep_id,
  // final_metric, idx) and the primary order by idx.
  SWEEP_RETURN_IF_ERROR(take("SELECT id FROM trials WHERE sweep_id=? AND state='running' "
                             "ORDER BY idx LIMIT ?",
                             room()));
  if (room() > 0) {
    SWEEP_RETURN_IF_ERROR(
        take(maximize ? "SELECT id FROM trials WHERE sweep_id=? AND final_metric IS NOT NULL "
                        "ORDER BY final_metric DESC, idx LIMIT ?"
                      : "SELECT id FROM trials WHERE sweep_id=? AND final_metric IS NOT NULL "
                        "ORDER BY final_metric ASC, idx LIMIT ?",
             room()));
  }
  if (room() > 0) {
    SWEEP_RETURN_IF_ERROR(take("SELECT id FROM trials WHERE sweep_id=? ORDER BY idx DESC LIMIT ?",
                               static_cast<int64_t>(limit)));
    if (room() < 0) ids.resize(limit);
  }
  return ids;
}

absl::StatusOr<json> DbReader::Trials(const std::string& sweep_id, int limit) {
  absl::MutexLock lock(&mu_);
  ReadTxn txn(db_);
  SWEEP_RETURN_IF_ERROR(txn.status());
  double now = ToUnixSecondsDouble(clock_->Now());
  SWEEP_ASSIGN_OR_RETURN(json summary, SweepSummaryLocked(sweep_id, now));
  int64_t total = 0;
  for (const auto& [state, n] : summary["counts"].items()) {
    if (state != "queued") total += n.get<int64_t>();
  }
  {  // queued trials that have a row (re-queued ones); the others have none yet
    Stmt q(db_, "SELECT COUNT(*) FROM trials WHERE sweep_id=? AND state='queued'");
    q.Bind(sweep_id);
    if (q.Next()) total += q.Int(0);
    SWEEP_RETURN_IF_ERROR(q.status());
  }
  json trials = json::array();
  bool truncated = total > limit;
  if (!truncated) {
    Stmt s(db_, absl::StrCat("SELECT ", kTrialColumns, " FROM trials WHERE sweep_id=? ORDER BY idx")
                    .c_str());
    s.Bind(sweep_id);
    while (s.Next()) trials.push_back(TrialJson(s, now));
    SWEEP_RETURN_IF_ERROR(s.status());
  } else {
    SWEEP_ASSIGN_OR_RETURN(std::vector<std::string> ids,
                           PickTrialsLocked(sweep_id, summary["goal"] == "maximize", limit));
    Stmt s(db_, absl::StrCat("SELECT ", kTrialColumns, " FROM trials WHERE id=?").c_str());
    for (const std::string& id : ids) {
      s.Reset();
      s.Bind(id);
      if (s.Next()) trials.push_back(TrialJson(s, now));
      SWEEP_RETURN_IF_ERROR(s.status());
    }
    std::sort(trials.begin(), trials.end(), [](const json& a, const json& b) {
      return a["index"].get<int64_t>() < b["index"].get<int64_t>();
    });
  }
  return json{{"now", now},
              {"sweep", sweep_id},
              {"metric", summary["metric"]},
              {"goal", summary["goal"]},
              {"best_trial", summary["best"].is_null() ? json(nullptr) : summary["best"]["trial"]},
              {"counts", summary["counts"]},
              {"total", total},
              {"truncated", truncated},
              {"trials", std::move(trials)}};
}

absl::StatusOr<json> DbReader::Metrics(const std::string& sweep_id, const std::string& name,
                                       int max_points, int max_series) {
  absl::MutexLock lock(&mu_);
  ReadTxn txn(db_);
  SWEEP_RETURN_IF_ERROR(txn.status());
  double now = ToUnixSecondsDouble(clock_->Now());
  SWEEP_ASSIGN_OR_RETURN(json summary, SweepSummaryLocked(sweep_id, now));
  std::string metric = name.empty() ? summary["metric"].get<std::string>() : name;
  int64_t total = 0;
  {
    Stmt c(db_, "SELECT COUNT(*) FROM trials WHERE sweep_id=?");
    c.Bind(sweep_id);
    if (c.Next()) total = c.Int(0);
    SWEEP_RETURN_IF_ERROR(c.status());
  }
  bool truncated = total > max_series;
  // The trials shown: all of them, in index order, or those PickTrialsLocked chose.
  std::vector<std::string> ids;
  if (!truncated) {
    Stmt t(db_, "SELECT id FROM trials WHERE sweep_id=? ORDER BY idx");
    t.Bind(sweep_id);
    while (t.Next()) ids.push_back(t.Text(0));
    SWEEP_RETURN_IF_ERROR(t.status());
  } else {
    SWEEP_ASSIGN_OR_RETURN(ids,
                           PickTrialsLocked(sweep_id, summary["goal"] == "maximize", max_series));
  }

  // Names and points through the (trial_id, name, step) index, trial by trial.
  std::set<std::string> name_set;
  Stmt n(db_, "SELECT DISTINCT name FROM metrics WHERE trial_id=?");
  for (const std::string& id : ids) {
    n.Reset();
    n.Bind(id);
    while (n.Next()) name_set.insert(n.Text(0));
    SWEEP_RETURN_IF_ERROR(n.status());
  }
  json names(name_set);
  if (metric.empty() && !names.empty()) metric = names[0];

  // Rows by step, the latest attempt last: it wins a repeated step.
  Stmt s(db_,
         "SELECT step, value FROM metrics WHERE trial_id=? AND name=? "
         "ORDER BY step, attempt, rowid");
  json series = json::array();
  for (const std::string& id : ids) {
    s.Reset();
    s.Bind(id).Bind(metric);
    json points = json::array();
    while (s.Next()) {
      int64_t step = s.Int(0);
      double value = s.Real(1);
      if (!points.empty() && points.back()[0].get<int64_t>() == step) {
        points.back()[1] = value;
      } else {
        points.push_back({step, value});
      }
    }
    SWEEP_RETURN_IF_ERROR(s.status());
    if (!points.empty()) series.push_back({{"trial", id}, {"points", Thin(points, max_points)}});
  }
  return json{{"now", now},
              {"sweep", sweep_id},
              {"name", metric},
              {"names", std::move(names)},
              {"series_total", total},
              {"truncated", truncated},
              {"series", std::move(series)}};
}

absl::StatusOr<json> DbReader::Trial(const std::string& id, int max_points) {
  absl::MutexLock lock(&mu_);
  ReadTxn txn(db_);
  SWEEP_RETURN_IF_ERROR(txn.status());
  double now = ToUnixSecondsDouble(clock_->Now());
  Stmt s(db_, absl::StrCat("SELECT ", kTrialColumns,
                           ", sweep_id, argv, stdout_tail, stderr_tail FROM trials WHERE id=?")
                  .c_str());
  s.Bind(id);
  if (!s.Next()) {
    SWEEP_RETURN_IF_ERROR(s.status());
    return absl::NotFoundError(absl::StrCat("no trial '", id, "' in this database"));
  }
  json t = TrialJson(s, now);
  std::string sweep_id = s.Text(23);
  t["sweep"] = sweep_id;
  t["argv"] = ParseJson(s.Text(24));
  t["stdout_tail"] = s.Text(25);
  t["stderr_tail"] = s.Text(26);
  t["now"] = now;
  // What the worker did about the trial's output (a bound that fired, a file it
  // would not read), as it said it.
  json notices = json::array();
  Stmt n(db_, "SELECT message FROM events WHERE trial_id=? AND "
              "kind IN ('trial_notice', 'metric_rejected') ORDER BY rowid");
  n.Bind(id);
  while (n.Next()) notices.push_back(n.Text(0));
  SWEEP_RETURN_IF_ERROR(n.status());
  t["notices"] = std::move(notices);

  Stmt w(db_, "SELECT name, metric_name, metric_goal FROM sweeps WHERE id=?");
  w.Bind(sweep_id);
  if (w.Next()) {
    t["sweep_name"] = w.Text(0);
    t["metric"] = w.Text(1);
    t["goal"] = w.Text(2);
  }
  SWEEP_RETURN_IF_ERROR(w.status());

  std::map<std::string, json> series;
  Stmt m(db_,
         "SELECT name, step, value FROM metrics WHERE trial_id=? "
         "ORDER BY name, step, attempt, rowid");
  m.Bind(id);
  while (m.Next()) {
    json& points = series[m.Text(0)];
    if (points.is_null()) points = json::array();
    int64_t step = m.Int(1);
    double value = m.Real(2);
    if (!points.empty() && points.back()[0].get<int64_t>() == step) {
      points.back()[1] = value;
    } else {
      points.push_back({step, value});
    }
  }
  SWEEP_RETURN_IF_ERROR(m.status());
  json metrics = json::object();
  for (auto& [name, points] : series) metrics[name] = Thin(points, max_points);
  t["metrics"] = std::move(metrics);
  return t;
}

absl::StatusOr<json> DbReader::Workers() {
  absl::MutexLock lock(&mu_);
  ReadTxn txn(db_);
  SWEEP_RETURN_IF_ERROR(txn.status());
  double now = ToUnixSecondsDouble(clock_->Now());
  Stmt s(db_,
         "SELECT w.id, w.host, w.pid, w.slot, w.gpu_index, w.gpu_uuid, w.gpu_name, "
         "w.gpu_memory_mib, w.state, w.registered_at, w.last_heartbeat, w.trial_id, "
         "t.sweep_id, w.message FROM workers w LEFT JOIN trials t ON t.id = w.trial_id AND "
         "w.trial_id <> '' ORDER BY w.state = 'lost', w.host, w.gpu_index, w.slot, w.id");
  json workers = json::array();
  while (s.Next()) {
    json gpu = nullptr;
    if (!s.Null(4)) {
      gpu = {
          {"index", s.Int(4)}, {"uuid", s.Text(5)}, {"name", s.Text(6)}, {"memory_mib", s.Int(7)}};
    }
    workers.push_back({{"id", s.Text(0)},
                       {"host", s.Text(1)},
                       {"pid", s.Int(2)},
                       {"slot", s.Int(3)},
                       {"gpu", std::move(gpu)},
                       {"state", s.Text(8)},
                       {"registered_at", s.Real(9)},
                       {"last_heartbeat", s.Real(10)},
                       {"heartbeat_age_s", std::max(0.0, now - s.Real(10))},
                       {"trial", s.Text(11).empty() ? json(nullptr) : json(s.Text(11))},
                       {"sweep", s.Null(12) ? json(nullptr) : json(s.Text(12))},
                       {"message", s.Text(13)}});
  }
  SWEEP_RETURN_IF_ERROR(s.status());
  return json{{"now", now}, {"workers", std::move(workers)}};
}

}  // namespace sweep::dashboard_internal
