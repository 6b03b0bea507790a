// The Scheduler's GPU placement and telemetry (docs/operations.md, GPUs): which GPU
// slot may take a trial now, the GPUs a lease carries, and what the workers
// measured. The fit rules themselves are in placement.h.
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "scheduler/scheduler.h"
#include "spdlog/spdlog.h"

namespace sweep {

std::vector<GpuLoad> Scheduler::GpuLoads(const std::string& host) const {
  std::vector<GpuLoad> out;
  std::map<std::pair<std::string, std::string>, size_t> pos;  // (host, uuid) -> out[]
  for (const auto& [id, w] : workers_) {
    if (!w.row.has_gpu || (!host.empty() && w.row.host != host)) continue;
    auto [it, added] = pos.emplace(std::pair(w.row.host, w.row.gpu_uuid), out.size());
    if (added) {
      out.push_back(GpuLoad{.host = w.row.host,
                            .uuid = w.row.gpu_uuid,
                            .index = w.row.gpu_index,
                            .name = w.row.gpu_name,
                            .memory_mib = w.row.gpu_memory_mib});
    }
    if (w.row.state != "lost" && w.row.state != "draining") ++out[it->second].slots;
  }
  if (out.empty()) return out;
  for (const auto& [id, t] : active_) {
    if (t.row.state != "running") continue;
    auto w = workers_.find(t.row.worker_id);
    if (w == workers_.end() || !w->second.row.has_gpu) continue;
    auto p = pos.find(std::pair(w->second.row.host, w->second.row.gpu_uuid));
    if (p == pos.end()) continue;
    AddTrial(NeedOf(sweeps_.at(t.row.sweep_id).spec.resources), out[p->second]);
    auto held = held_gpus_.find(id);
    if (held == held_gpus_.end() || held->second.epoch != t.row.epoch ||
        held->second.worker_id != t.row.worker_id) {
      continue;
    }
    for (const std::string& uuid : held->second.uuids) {
      if (auto h = pos.find(std::pair(w->second.row.host, uuid)); h != pos.end()) {
        out[h->second].held = true;
      }
    }
  }
  return out;
}

bool Scheduler::PlacementFits(const SweepState& s, const WorkerState& w,
                              std::optional<std::vector<GpuLoad>>& loads,
                              std::vector<GpuLoad>* extra) {
  GpuNeed need = NeedOf(s.spec.resources);
  if (!w.row.has_gpu) return need.gpus == 0;
  if (!loads) loads = GpuLoads(w.row.host);
  size_t own = 0;
  while (own < loads->size() && (*loads)[own].uuid != w.row.gpu_uuid) ++own;
  if (own == loads->size()) return false;  // cannot happen: w is one of them
  if (!FitsNow(need, (*loads)[own])) return false;
  if (need.gpus < 2) return true;
  std::optional<std::vector<size_t>> more = PickExtraGpus(need, *loads, own);
  if (!more) return false;
  for (size_t i : *more) extra->push_back((*loads)[i]);
  return true;
}

void Scheduler::AddGpuAssignment(const SweepState& s, const WorkerState& w,
                                 const std::vector<GpuLoad>& extra, v1::TrialAssignment& out) {
  if (!w.row.has_gpu) return;
  const spec::Resources& r = s.spec.resources;
  out.add_gpus(w.row.gpu_index);
  for (const GpuLoad& g : extra) out.add_gpus(g.index);
  if (r.gpus_per_trial > 0 && r.gpu_check_seconds > 0) {
    out.set_gpu_check_ms(static_cast<int64_t>(r.gpu_check_seconds * 1000));
    out.set_gpu_check_stop(r.gpu_check_action == spec::Resources::GpuCheckAction::kStop);
  }
  out.set_gpu_memory_mib(r.gpu_memory_mib);
  // Forget the holds of trials that no longer run under them.
  std::erase_if(held_gpus_, [&](const auto& e) {
    auto t = active_.find(e.first);
    return t == active_.end() || t->second.row.state != "running" ||
           t->second.row.epoch != e.second.epoch;
  });
  std::erase_if(live_usage_, [&](const auto& e) {
    auto t = active_.find(e.first);
    return t == active_.end() || t->second.row.state != "running" ||
           t->second.row.epoch != e.second.first;
  });
  if (extra.empty()) return;
  HeldGpus& held = held_gpus_[out.trial_id()];
  held = HeldGpus();
  held.worker_id = w.row.id;
  held.epoch = out.epoch();
  for (const GpuLoad& g : extra) {
    held.uuids.push_back(g.uuid);
    held.indexes.push_back(g.index);
  }
  absl::StatusOr<TrialGpuRow> row = store_->LoadOneTrialGpu(out.trial_id());
  if (!row.ok()) {
    if (!absl::IsNotFound(row.status())) write_error_.Update(row.status());
    return;
  }
  row->gpus = absl::StrJoin(out.gpus(), ",");
  if (absl::Status st = store_->UpdateTrialGpu(*row); !st.ok()) {
    spdlog::warn("trial {}: could not store its GPUs: {}", out.trial_id(),
                 std::string(st.message()));
    write_error_.Update(st);  // the lease must not commit without its GPUs
  }
}

void Scheduler::RecordGpuUsage(const ActiveTrial& t, const v1::TrialGpuUsage& usage,
                               const std::string& failure_kind, bool final) {
  bool flag_was_known = false;
  if (auto it = live_usage_.find(t.row.id); it != live_usage_.end()) {
    flag_was_known = it->second.first == t.row.epoch && it->second.second.no_gpu_activity();
  }
  if (!final) {
    live_usage_[t.row.id] = {t.row.epoch, usage};
    // Heartbeats write only the flag, once: the rest is stored when the trial ends.
    if (!usage.no_gpu_activity() || flag_was_known) return;
  } else {
    live_usage_.erase(t.row.id);
  }
  absl::StatusOr<TrialGpuRow> row = store_->LoadOneTrialGpu(t.row.id);
  if (!row.ok()) {
    if (!absl::IsNotFound(row.status())) write_error_.Update(row.status());
    return;
  }
  row->gpu_flag = usage.no_gpu_activity() ? "no_gpu_activity" : "";
  row->failure_kind = failure_kind;
  if (usage.samples() > 0) {
    row->peak_memory_mib = usage.peak_memory_mib();
    row->energy_joules = usage.energy_joules();
    row->utilization = usage.mean_utilization();
  }
  if (final && usage.samples() > 0) sweeps_.at(t.row.sweep_id).energy.Add(usage.energy_joules());
  if (usage.no_gpu_activity() && !flag_was_known) {
    Event("trial_no_gpu_activity", t.row.sweep_id, t.row.id, t.row.worker_id,
          "no process of the trial held memory on its GPU in time");
  }
  if (absl::Status st = store_->UpdateTrialGpu(*row); !st.ok()) {
    spdlog::warn("trial {}: could not store its GPU usage: {}", t.row.id,
                 std::string(st.message()));
    write_error_.Update(st);
  }
}

void Scheduler::AddLiveGpuUsage(v1::TrialSummary& out) const {
  if (out.state() != "running") return;
  auto live = live_usage_.find(out.id());
  auto t = active_.find(out.id());
  if (live == live_usage_.end() || t == active_.end() ||
      t->second.row.epoch != live->second.first) {
    return;
  }
  const v1::TrialGpuUsage& u = live->second.second;
  if (u.no_gpu_activity()) out.set_gpu_flag("no_gpu_activity");
  if (u.samples() > 0) {
    out.set_has_gpu_usage(true);
    out.set_peak_gpu_memory_mib(u.peak_memory_mib());
    out.set_energy_joules(u.energy_joules());
    out.set_gpu_utilization(u.mean_utilization());
  }
}

absl::Status Scheduler::RestoreHeldGpus() {
  for (const auto& [sweep_id, s] : sweeps_) {
    if (s.spec.resources.gpus_per_trial < 2 || s.running == 0) continue;
    absl::StatusOr<std::map<std::string, TrialGpuRow>> rows = store_->LoadTrialGpu(sweep_id);
    if (!rows.ok()) return rows.status();
    for (const auto& [id, g] : *rows) {
      auto a = active_.find(id);
      if (a == active_.end() || a->second.row.state != "running") continue;
      auto w = workers_.find(a->second.row.worker_id);
      HeldGpus held;
      held.worker_id = a->second.row.worker_id;
      held.epoch = a->second.row.epoch;
      std::vector<std::string> parts = absl::StrSplit(g.gpus, ',', absl::SkipEmpty());
      for (size_t i = 1; i < parts.size(); ++i) {  // the first is the slot's own GPU
        int index = -1;
        if (!absl::SimpleAtoi(parts[i], &index)) continue;
        held.indexes.push_back(index);
        for (const auto& [wid, other] : workers_) {
          if (w != workers_.end() && other.row.host == w->second.row.host &&
              other.row.has_gpu && other.row.gpu_index == index) {
            held.uuids.push_back(other.row.gpu_uuid);
            break;
          }
        }
      }
      held_gpus_[id] = std::move(held);
    }
  }
  return absl::OkStatus();
}

v1::SubmitSweepResponse Scheduler::DryRun(const spec::SweepSpec& spec) {
  v1::SubmitSweepResponse resp;
  resp.set_budget(spec::TrialBudget(spec).value_or(-1));
  for (const std::string& w : spec.warnings) resp.add_warnings(w);
  SweepState probe;
  probe.spec = spec;
  probe.row.state = "running";
  SlotCount slots = CountSlots(probe);
  int cpu_slots = 0;
  std::vector<GpuLoad> gpus = GpuLoads("");
  std::erase_if(gpus, [](const GpuLoad& g) { return g.slots == 0; });
  for (const auto& [id, w] : workers_) {
    cpu_slots += !w.row.has_gpu && w.row.state != "lost" && w.row.state != "draining";
  }
  const spec::Resources& r = spec.resources;
  std::string need =
      r.gpus_per_trial == 0
          ? "each trial takes any slot (CPU, or a GPU to itself)"
          : absl::StrCat("each trial takes ", r.gpus_per_trial, " GPU",
                         r.gpus_per_trial == 1 ? "" : "s",
                         r.gpu_memory_mib > 0
                             ? absl::StrCat(" with ", FormatMib(r.gpu_memory_mib))
                             : "",
                         r.gpus_per_trial == 1 && NeedOf(r).ShareLimit() > 1
                             ? (r.trials_per_gpu > 0
                                    ? absl::StrCat(", up to ", r.trials_per_gpu, " per GPU")
                                    : ", packed by memory")
                             : "");
  std::string where = absl::StrCat(gpus.size(), " GPU", gpus.size() == 1 ? "" : "s", " and ",
                                   cpu_slots, " CPU slot", cpu_slots == 1 ? "" : "s",
                                   " connected");
  if (slots.eligible == 0) {
    resp.set_placement(absl::StrCat(need, "; ", where,
                                    ": no trial can start until a suitable worker connects"));
  } else {
    int at_once = spec.max_concurrent > 0 ? std::min(spec.max_concurrent, slots.eligible)
                                          : slots.eligible;
    resp.set_placement(absl::StrCat(need, "; ", where, ": up to ", at_once,
                                    " trial", at_once == 1 ? "" : "s", " at once, ",
                                    slots.idle, " could start now"));
  }
  return resp;
}

std::string Scheduler::NeverPlaceableNow(const spec::SweepSpec& spec) const {
  std::vector<GpuLoad> gpus = GpuLoads("");
  std::erase_if(gpus, [](const GpuLoad& g) { return g.slots == 0; });
  return NeverPlaceable(NeedOf(spec.resources), gpus);
}

}  // namespace sweep
