// SweepRecords (scheduler/read_model.h) over a real SQLite file written through the
// Store, without a scheduler: what an ended sweep spent.
#include "scheduler/read_model.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "scheduler/store.h"
#include "tests/testing.h"

namespace sweep {
namespace {

using ::sweep::testing::TempDir;

constexpr double kStart = 1'700'000'000;

// Two trials share each GPU (a share of 0.5), and money has a price.
constexpr char kSpec[] = R"(method: grid
program: train.py
cost: {gpu_hour: 2.5, kwh: 0.3, currency: EUR}
resources: {gpus_per_trial: 1, trials_per_gpu: 2}
parameters:
  lr: {values: [0.1, 0.2, 0.3]}
)";

class ReadModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = Store::Open(dir_ / "sweeps.db");
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = std::move(*opened);
    SweepRow s;
    s.id = "5eed0002";
    s.name = "spent";
    s.spec_yaml = kSpec;
    s.file_name = "spent.yaml";
    s.method = "grid";
    s.budget = 3;
    s.next_index = 3;
    s.created_at = kStart;
    ASSERT_TRUE(store_->InsertSweep(s).ok());
    sweep_ = s;
  }

  // A trial that ran `hours` on GPU `gpu` (-1: a CPU slot) and used `joules`.
  void Ended(int index, int gpu, double hours, std::optional<double> joules) {
    TrialRow t;
    t.id = absl::StrCat(sweep_.id, "-000", index);
    t.sweep_id = sweep_.id;
    t.index = index;
    t.state = "completed";
    t.gpu = gpu;
    t.attempt = 1;
    t.epoch = 1;
    t.created_at = kStart;
    t.started_at = kStart + 10;
    t.ended_at = kStart + 10 + hours * 3600;
    ASSERT_TRUE(store_->UpsertTrial(t).ok());
    if (joules) {
      TrialGpuRow g;
      g.trial_id = t.id;
      g.energy_joules = joules;
      ASSERT_TRUE(store_->UpdateTrialGpu(g).ok());
    }
  }

  v1::SweepSummary Summary() {
    SweepRecords records(store_.get(), nullptr);
    absl::StatusOr<v1::GetStatusResponse> st = records.Status(sweep_.id, kStart + 1e6);
    EXPECT_TRUE(st.ok()) << st.status();
    return st.ok() && st->sweeps_size() == 1 ? st->sweeps(0) : v1::SweepSummary();
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
  SweepRow sweep_;
};

TEST_F(ReadModelTest, AnEndedSweepKeepsTheGpuHoursEnergyAndMoneyItSpent) {
  Ended(0, 0, 2.0, 3.6e6);   // 2 h on a GPU it shared, 1 kWh
  Ended(1, 1, 1.0, 7.2e6);   // 1 h, 2 kWh
  Ended(2, -1, 5.0, std::nullopt);  // a CPU slot: no GPU-hours, no energy
  sweep_.state = "finished";
  sweep_.finished_at = kStart + 6 * 3600;
  ASSERT_TRUE(store_->UpdateSweep(sweep_).ok());

  v1::SweepSummary s = Summary();
  ASSERT_TRUE(s.has_spent());
  EXPECT_DOUBLE_EQ(s.gpu_hours_spent(), 1.5) << "(2 h + 1 h) times a share of 0.5";
  EXPECT_DOUBLE_EQ(s.energy_kwh_spent(), 3.0);
  ASSERT_TRUE(s.has_cost_spent());
  EXPECT_DOUBLE_EQ(s.cost_spent(), 1.5 * 2.5 + 3.0 * 0.3);
  EXPECT_EQ(s.currency(), "EUR");
}

TEST_F(ReadModelTest, ARunningSweepHasNoSpentTotalsItsEstimateSaysSoFar) {
  Ended(0, 0, 2.0, 3.6e6);
  EXPECT_FALSE(Summary().has_spent());
}

TEST_F(ReadModelTest, ASweepOfCpuTrialsSaysNothingOfSpending) {
  Ended(0, -1, 1.0, std::nullopt);
  sweep_.state = "finished";
  ASSERT_TRUE(store_->UpdateSweep(sweep_).ok());
  EXPECT_FALSE(Summary().has_spent());
}

}  // namespace
}  // namespace sweep
