// Human and machine renderings of sweeps and trials for the CLI: aligned text
// tables, JSON and CSV. Pure functions of the wire messages; thread-safe.
#ifndef SWEEP_CLI_REPORT_H_
#define SWEEP_CLI_REPORT_H_

#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "sweep/v1/sweep.pb.h"

namespace sweep {

// Renders rows as a table whose columns are padded to their widest cell.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows);

// "0.00123", "1.5e+06": a metric value in 6 significant digits.
std::string FormatValue(double v);
// "1m05s", "2h03m": a duration in seconds.
std::string FormatDuration(double seconds);

// One line per sweep, then the workers.
std::string FormatStatus(const v1::GetStatusResponse& status, double now);
// The progress line `sweep run` shows.
std::string FormatProgress(const v1::SweepSummary& s, double now);

// Trials as a table: id, state, the sweep's metric (final), attempts, duration,
// worker and one column per parameter. `limit` < 0 shows all.
std::string FormatTrials(const v1::ListTrialsResponse& trials, int limit);

// Returns the trials ordered best first by the sweep's metric (final value), those
// without a value last, ties by id.
std::vector<v1::TrialSummary> RankTrials(const v1::ListTrialsResponse& trials);

// Flattens nested parameters to dotted keys: {"a": {"b": 1}} -> {"a.b": 1}.
nlohmann::json FlattenParams(const nlohmann::json& params);

// The GPU column of `sweep trials`: failure kind (oom), the no-silent-CPU flag, peak
// GPU memory and energy; "-" when there is none.
std::string GpuNote(const v1::TrialSummary& t);

nlohmann::json ToJson(const v1::SweepSummary& s);
nlohmann::json ToJson(const v1::TrialSummary& t);
nlohmann::json ToJson(const v1::WorkerSummary& w);

// CSV with a header: id, state, attempt, worker, gpu, started_at, ended_at,
// exit_code, <metric>, best_<metric>, then one column per (flattened) parameter.
std::string TrialsToCsv(const v1::ListTrialsResponse& trials);

}  // namespace sweep

#endif  // SWEEP_CLI_REPORT_H_
