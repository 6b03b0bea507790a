// sweep-bench-sqlite: the SQLite side of the benchmarks (bench/run.sh).
//
//   sweep-bench-sqlite insert-rate DB [--rows N] [--batch B] [--trials T]
//     SQLite's own batched insert rate into sweep's `metrics` table, on the disk
//     where DB lies: the same schema (created by the scheduler's own Store), the same
//     settings as the scheduler (WAL, synchronous=NORMAL, foreign_keys=ON), one
//     prepared INSERT, B rows per transaction. Prints one JSON object.
//
//   sweep-bench-sqlite gen-scale DB [--trials N] [--steps S] [--seed X]
//     A database as `sweep scheduler` would leave it after a finished random search
//     of N trials, each reporting `loss` and `acc` at S steps (2*N*S metric points),
//     with workers and the event log. The schema comes from the scheduler's own
//     Store::Open (so it always matches docs/schema.md); rows are written with plain
//     SQL in big transactions. Prints one JSON object (the sweep id, counts, seconds).
#include <sqlite3.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/ids.h"
#include "scheduler/store.h"

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "sweep-bench-sqlite: %s\n", what.c_str());
  std::exit(1);
}

void Check(sqlite3* db, int rc, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    Die(std::string(what) + ": " + sqlite3_errmsg(db));
  }
}

void Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    Die(sql + ": " + (err ? err : "?"));
  }
}

// Creates the schema with the scheduler's own Store, then reopens the file raw.
sqlite3* OpenWithSchema(const std::string& path) {
  {
    absl::StatusOr<std::unique_ptr<sweep::Store>> store = sweep::Store::Open(path);
    if (!store.ok()) Die(std::string(store.status().message()));
  }
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    Die("cannot open " + path);
  }
  return db;
}

struct Stmt {
  sqlite3* db;
  sqlite3_stmt* s = nullptr;
  int n = 0;
  Stmt(sqlite3* d, const char* sql) : db(d) { Check(db, sqlite3_prepare_v2(db, sql, -1, &s, nullptr), sql); }
  ~Stmt() { sqlite3_finalize(s); }
  Stmt& T(const std::string& v) { sqlite3_bind_text(s, ++n, v.data(), (int)v.size(), SQLITE_TRANSIENT); return *this; }
  Stmt& I(int64_t v) { sqlite3_bind_int64(s, ++n, v); return *this; }
  Stmt& D(double v) { sqlite3_bind_double(s, ++n, v); return *this; }
  Stmt& Null() { sqlite3_bind_null(s, ++n); return *this; }
  void Run() {
    Check(db, sqlite3_step(s), "step");
    sqlite3_reset(s);
    n = 0;
  }
};

const char* kSpec =
    "name: scale-random\n"
    "program: train.py\n"
    "method: random\n"
    "run_cap: %d\n"
    "seed: 7\n"
    "metric:\n  name: loss\n  goal: minimize\n"
    "parameters:\n"
    "  lr:\n    distribution: log_uniform_values\n    min: 0.0001\n    max: 0.1\n"
    "  batch_size:\n    values: [32, 64, 128, 256]\n"
    "  dropout:\n    distribution: uniform\n    min: 0.0\n    max: 0.5\n"
    "  layers:\n    values: [1, 2, 3, 4]\n";

int64_t Flag(int argc, char** argv, const char* name, int64_t def) {
  for (int i = 0; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return std::atoll(argv[i + 1]);
  }
  return def;
}

void InsertTrial(Stmt& ins, const std::string& sweep, int64_t idx, double t0, double dur,
                 double final_loss, double best_loss, int64_t steps, std::mt19937_64& rng,
                 const std::string& tail) {
  std::uniform_real_distribution<double> u(0, 1);
  char params[256];
  std::snprintf(params, sizeof(params),
                "{\"batch_size\":%d,\"dropout\":%.4f,\"layers\":%d,\"lr\":%.6g}",
                32 << (rng() % 4), u(rng) * 0.5, 1 + (int)(rng() % 4),
                std::exp(std::log(1e-4) + u(rng) * (std::log(0.1) - std::log(1e-4))));
  std::string id = sweep::TrialId(sweep, idx);
  std::string argv = std::string("[\"/usr/bin/env\",\"python3\",\"train.py\",\"--lr=") +
                     std::to_string(u(rng)) + "\"]";
  std::string worker = "node" + std::to_string(idx % 4) + "/cpu" + std::to_string(idx % 8) + "-1a2b";
  ins.T(id).T(sweep).I(idx).T("completed").T(params).T(argv).T(worker)
      .T("node" + std::to_string(idx % 4)).Null().I(1).I(1).I(steps / 10 + 1)
      .D(t0).D(t0 + 0.01).D(t0 + dur).I(0).I(0).T("").D(final_loss).D(best_loss)
      .T("/scratch/sweep-runs/" + sweep + "/" + id + "/attempt-1").T(tail).T("").Null();
  ins.Run();
}

int GenScale(const std::string& path, int argc, char** argv) {
  const int64_t trials = Flag(argc, argv, "--trials", 100000);
  const int64_t steps = Flag(argc, argv, "--steps", 50);
  std::mt19937_64 rng(Flag(argc, argv, "--seed", 1));
  std::remove(path.c_str());
  std::remove((path + "-wal").c_str());
  std::remove((path + "-shm").c_str());
  double start = Now();
  sqlite3* db = OpenWithSchema(path);
  Exec(db, "PRAGMA synchronous=OFF");
  Exec(db, "PRAGMA cache_size=-262144");  // 256 MiB while generating
  const std::string sweep = "5ca1e0ff";
  const double t_submit = 1.7e9;
  char spec[2048];
  std::snprintf(spec, sizeof(spec), kSpec, (int)trials);
  Exec(db, "BEGIN");
  Stmt(db,
       "INSERT INTO sweeps (id, name, spec_yaml, file_name, working_dir, method, "
       "metric_name, metric_goal, seed, budget, next_index, state, created_at, finished_at, "
       "end_reason) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
      .T(sweep).T("scale-random").T(spec).T("scale.yaml").T("/home/lab/proj").T("random")
      .T("loss").T("minimize").I(7).I(trials).I(trials).T("finished").D(t_submit)
      .D(t_submit + trials * 0.5).T("all " + std::to_string(trials) + " trials ended")
      .Run();
  Stmt w(db,
         "INSERT INTO workers (id, host, pid, slot, gpu_index, gpu_uuid, gpu_name, "
         "gpu_memory_mib, state, registered_at, last_heartbeat, trial_id) "
         "VALUES (?,?,?,?,NULL,'','',0,'lost',?,?,'')");
  for (int i = 0; i < 8; ++i) {
    w.T("node" + std::to_string(i % 4) + "/cpu" + std::to_string(i) + "-1a2b")
        .T("node" + std::to_string(i % 4)).I(1000 + i).I(i).D(t_submit).D(t_submit + trials * 0.5)
        .Run();
  }
  Stmt ins(db, (std::string("INSERT INTO trials (id, sweep_id, idx, state, params, argv, worker, "
                            "host, gpu, attempt, epoch, last_seq, created_at, started_at, ended_at, "
                            "exit_code, signal, message, final_metric, best_metric, trial_dir, "
                            "stdout_tail, stderr_tail, stopped_at_step) VALUES "
                            "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"))
                   .c_str());
  Stmt met(db, "INSERT INTO metrics (trial_id, attempt, step, name, value, time) VALUES (?,?,?,?,?,?)");
  Stmt ev(db, "INSERT INTO events (time, kind, sweep_id, trial_id, worker_id, message) VALUES (?,?,?,?,?,?)");
  std::string tail;
  for (int i = 0; i < 6; ++i) tail += "epoch " + std::to_string(i) + ": loss 0.4213 acc 0.8731 (1843 samples/s)\n";
  std::uniform_real_distribution<double> u(0, 1);
  int64_t points = 0;
  for (int64_t i = 0; i < trials; ++i) {
    double t0 = t_submit + i * 0.5;
    double base = 0.2 + u(rng), rate = 0.02 + 0.1 * u(rng);
    std::vector<double> loss(steps);
    double best = 1e300;
    for (int64_t s = 0; s < steps; ++s) {
      loss[s] = base + 2.0 * std::exp(-rate * s) + 0.01 * u(rng);
      best = std::min(best, loss[s]);
    }
    InsertTrial(ins, sweep, i, t0, 2.0 + 60 * u(rng), loss[steps - 1], best, steps, rng, tail);
    std::string id = sweep::TrialId(sweep, i);
    for (int64_t s = 0; s < steps; ++s) {
      met.T(id).I(1).I(s).T("acc").D(1.0 - loss[s] / 3).D(t0 + s).Run();
    }
    for (int64_t s = 0; s < steps; ++s) {
      met.T(id).I(1).I(s).T("loss").D(loss[s]).D(t0 + s).Run();
    }
    points += 2 * steps;
    std::string wid = "node" + std::to_string(i % 4) + "/cpu" + std::to_string(i % 8) + "-1a2b";
    ev.D(t0).T("trial_leased").T(sweep).T(id).T(wid).T("attempt 1, epoch 1").Run();
    ev.D(t0 + 1).T("trial_ended").T(sweep).T(id).T(wid).T("completed").Run();
    if (i % 5000 == 4999) {
      Exec(db, "COMMIT");
      Exec(db, "BEGIN");
    }
  }
  Exec(db, "COMMIT");
  Exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
  Exec(db, "ANALYZE");
  sqlite3_close(db);
  std::printf("{\"sweep\":\"%s\",\"trials\":%lld,\"points\":%lld,\"seconds\":%.3f}\n",
              sweep.c_str(), (long long)trials, (long long)points, Now() - start);
  return 0;
}

int InsertRate(const std::string& path, int argc, char** argv) {
  const int64_t rows = Flag(argc, argv, "--rows", 200000);
  const int64_t batch = Flag(argc, argv, "--batch", 1000);
  const int64_t trials = Flag(argc, argv, "--trials", 8);
  std::remove(path.c_str());
  std::remove((path + "-wal").c_str());
  std::remove((path + "-shm").c_str());
  sqlite3* db = OpenWithSchema(path);
  // The scheduler's settings (scheduler/store.cc, Store::Open).
  Exec(db, "PRAGMA journal_mode=WAL");
  Exec(db, "PRAGMA synchronous=NORMAL");
  Exec(db, "PRAGMA foreign_keys=ON");
  const std::string sweep = "0b0b0b0b";
  Exec(db, "BEGIN");
  Stmt(db,
       "INSERT INTO sweeps (id, name, spec_yaml, file_name, working_dir, method, "
       "metric_name, metric_goal, seed, budget, next_index, state, created_at, finished_at, "
       "end_reason) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
      .T(sweep).T("ingest").T("x").T("x").T("/").T("grid").T("loss").T("minimize").I(1)
      .I(trials).I(trials).T("running").D(1.7e9).Null().T("")
      .Run();
  Stmt ins(db, "INSERT INTO trials (id, sweep_id, idx, state, params, argv, attempt, epoch, "
               "last_seq, created_at) VALUES (?,?,?,'running','{}','[]',1,1,0,?)");
  std::vector<std::string> ids;
  for (int64_t i = 0; i < trials; ++i) {
    ids.push_back(sweep::TrialId(sweep, i));
    ins.T(ids.back()).T(sweep).I(i).D(1.7e9).Run();
  }
  Exec(db, "COMMIT");
  Stmt met(db, "INSERT INTO metrics (trial_id, attempt, step, name, value, time) VALUES (?,?,?,?,?,?)");
  const int64_t per_trial = rows / trials;
  double start = Now();
  int64_t done = 0;
  // Trials report side by side: each batch holds a run of one trial's steps, and
  // batches go round the trials, as the scheduler sees interleaved reports.
  std::vector<int64_t> next(trials, 0);
  int64_t t = 0;
  while (done < rows) {
    Exec(db, "BEGIN IMMEDIATE");
    for (int64_t k = 0; k < batch && done < rows; ++k) {
      while (next[t] >= per_trial + (t < rows % trials ? 1 : 0)) t = (t + 1) % trials;
      met.T(ids[t]).I(1).I(next[t]).T("loss").D(1.0 / (next[t] + 1)).D(1.7e9 + done).Run();
      ++next[t];
      ++done;
    }
    Exec(db, "COMMIT");
    t = (t + 1) % trials;
  }
  double secs = Now() - start;
  sqlite3_close(db);
  std::printf("{\"rows\":%lld,\"batch\":%lld,\"seconds\":%.4f,\"rows_per_s\":%.1f}\n",
              (long long)rows, (long long)batch, secs, rows / secs);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: sweep-bench-sqlite insert-rate|gen-scale DB [flags]\n");
    return 2;
  }
  std::string cmd = argv[1], path = argv[2];
  if (cmd == "insert-rate") return InsertRate(path, argc, argv);
  if (cmd == "gen-scale") return GenScale(path, argc, argv);
  std::fprintf(stderr, "unknown command %s\n", cmd.c_str());
  return 2;
}
