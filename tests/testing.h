// Helpers shared by the tests: temporary directories, running the real `sweep`
// binary, reading a scheduler's SQLite file, waiting for a condition.
#ifndef SWEEP_TESTS_TESTING_H_
#define SWEEP_TESTS_TESTING_H_

#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/process.h"
#include "gtest/gtest.h"

namespace sweep::testing {

namespace fs = std::filesystem;

// A fresh directory, removed when the test ends.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "sweep-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

inline std::string Env(const char* name, const char* fallback = "") {
  const char* v = getenv(name);
  return v && *v ? v : fallback;
}

// The `sweep` binary under test (set by CMake).
inline std::string SweepBin() { return Env("SWEEP_BIN", SWEEP_BIN_DEFAULT); }
inline std::string SourceDir() { return Env("SWEEP_SOURCE_DIR", SWEEP_SOURCE_DIR_DEFAULT); }

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// Our environment with `overrides` ("KEY=VALUE") replacing or adding entries.
inline std::vector<std::string> EnvWith(const std::vector<std::string>& overrides) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    bool replaced = false;
    for (const std::string& o : overrides) {
      replaced |= kv.substr(0, kv.find('=') + 1) == o.substr(0, o.find('=') + 1);
    }
    if (!replaced) env.push_back(kv);
  }
  env.insert(env.end(), overrides.begin(), overrides.end());
  return env;
}

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `argv` (argv[0] looked up in PATH) to completion, `timeout` at most (then it
// is stopped), in `dir` with `extra_env` added to ours, and captures its output in
// files under `dir`. exit_code is -1 when the program could not be started (err says
// why) and 128 + N when signal N ended it.
inline CommandResult RunCommand(const std::vector<std::string>& argv, const TempDir& dir,
                                const std::vector<std::string>& extra_env = {},
                                absl::Duration timeout = absl::Seconds(60)) {
  static std::atomic<int> n{0};
  int k = ++n;
  SpawnOptions o;
  o.argv = argv;
  o.stdout_path = dir / absl::StrCat("cmd", k, ".out");
  o.stderr_path = dir / absl::StrCat("cmd", k, ".err");
  o.cwd = dir.path().string();
  if (!extra_env.empty()) o.env = EnvWith(extra_env);
  CommandResult r;
  auto child = ChildProcess::Spawn(o);
  if (!child.ok()) {
    r.err = std::string(child.status().message());
    return r;
  }
  std::optional<ExitStatus> st = child->Wait(timeout);
  if (!st) st = child->Stop(absl::Seconds(1));
  r.exit_code = st->signal ? 128 + st->signal : st->exit_code;
  r.out = ReadFile(o.stdout_path);
  r.err = ReadFile(o.stderr_path);
  return r;
}

// Runs `sweep ARGS...` to completion (60 s at most) and captures its output.
inline CommandResult RunSweep(const std::vector<std::string>& args, const TempDir& dir,
                              const std::vector<std::string>& extra_env = {}) {
  std::vector<std::string> argv = {SweepBin()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, dir, extra_env);
}

// Polls `cond` every 50 ms until it holds or `timeout` passes. Returns whether it held.
inline bool WaitFor(const std::function<bool()>& cond, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return cond();
}

// Read-only queries on a scheduler's database, as a user with sqlite3 would.
class Db {
 public:
  explicit Db(const std::string& path) {
    sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~Db() { sqlite3_close(db_); }
  // Rows of text cells; NULL reads as "NULL".
  std::vector<std::vector<std::string>> Query(const std::string& sql) {
    std::vector<std::vector<std::string>> rows;
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << "bad query " << sql << ": " << sqlite3_errmsg(db_);
      return rows;
    }
    while (sqlite3_step(s) == SQLITE_ROW) {
      std::vector<std::string> row;
      for (int i = 0; i < sqlite3_column_count(s); ++i) {
        const unsigned char* t = sqlite3_column_text(s, i);
        row.push_back(t ? reinterpret_cast<const char*>(t) : "NULL");
      }
      rows.push_back(std::move(row));
    }
    sqlite3_finalize(s);
    return rows;
  }
  // The single value of a one-row, one-column query ("" when there is no row).
  std::string Value(const std::string& sql) {
    auto rows = Query(sql);
    return rows.empty() || rows[0].empty() ? "" : rows[0][0];
  }

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace sweep::testing

#endif  // SWEEP_TESTS_TESTING_H_
