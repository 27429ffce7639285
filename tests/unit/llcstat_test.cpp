// llcstat's counting path over a fake counter source: per-CPU, per-task samples summed into
// per-process rows (or per thread / per CPU) with the hit ratio, as the BPF map would feed them.
#include <gtest/gtest.h>

#include "tools/llcstat/llc_aggregator.hpp"

namespace memscope::llc {
namespace {

class FakeCounters : public LlcSampleSource {
 public:
  std::vector<std::vector<LlcSample>> batches;
  std::vector<LlcSample> drain() override {
    if (batches.empty()) return {};
    std::vector<LlcSample> batch = batches.front();
    batches.erase(batches.begin());
    return batch;
  }
};

// Two processes on two CPUs; process 100 has two threads, the second named differently.
std::vector<LlcSample> interval_samples() {
  return {
      {0, 100, 100, "db", 1000, 100},        {1, 100, 100, "db", 3000, 300},
      {1, 100, 101, "db-worker", 1000, 600}, {0, 200, 200, "cache", 500, 500},
      {1, 200, 200, "cache", 100, 150},
  };
}

const LlcRow* find_row(const std::vector<LlcRow>& rows, uint32_t pid, uint32_t tid = 0, int cpu = -1) {
  for (const auto& row : rows)
    if (row.pid == pid && row.tid == tid && row.cpu == cpu) return &row;
  return nullptr;
}

TEST(LlcAggregator, SumsCpusAndThreadsIntoProcessRows) {
  FakeCounters counters;
  counters.batches = {interval_samples()};
  LlcAggregator aggregator(/*per_thread=*/false, /*per_cpu=*/false);
  aggregator.add_all(counters);
  auto rows = aggregator.rows();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].pid, 100u) << "most references first";
  EXPECT_EQ(rows[0].comm, "db") << "a process is named after its main thread";
  EXPECT_EQ(rows[0].references, 5000u);
  EXPECT_EQ(rows[0].misses, 1000u);
  EXPECT_DOUBLE_EQ(rows[0].hit_ratio(), 0.8);
  EXPECT_EQ(rows[0].cpu, -1);
  EXPECT_EQ(rows[1].pid, 200u);
  EXPECT_EQ(rows[1].references, 600u);
  EXPECT_EQ(rows[1].misses, 650u);
  EXPECT_DOUBLE_EQ(rows[1].hit_ratio(), 0.0) << "more sampled misses than references reads as no hits";

  LlcRow total = aggregator.total();
  EXPECT_EQ(total.references, 5600u);
  EXPECT_EQ(total.misses, 1650u);
  EXPECT_NEAR(total.hit_ratio(), (5600.0 - 1650.0) / 5600.0, 1e-12);
}

TEST(LlcAggregator, KeepsThreadsAndCpusApartWhenAsked) {
  FakeCounters counters;
  counters.batches = {interval_samples()};
  LlcAggregator aggregator(/*per_thread=*/true, /*per_cpu=*/true);
  aggregator.add_all(counters);
  auto rows = aggregator.rows();
  ASSERT_EQ(rows.size(), 5u);
  const LlcRow* worker = find_row(rows, 100, 101, 1);
  ASSERT_NE(worker, nullptr);
  EXPECT_EQ(worker->comm, "db-worker");
  EXPECT_EQ(worker->references, 1000u);
  EXPECT_DOUBLE_EQ(worker->hit_ratio(), 0.4);
  const LlcRow* main_on_cpu0 = find_row(rows, 100, 100, 0);
  ASSERT_NE(main_on_cpu0, nullptr);
  EXPECT_EQ(main_on_cpu0->references, 1000u);

  LlcAggregator per_cpu(/*per_thread=*/false, /*per_cpu=*/true);
  for (const auto& sample : interval_samples()) per_cpu.add(sample);
  const auto cpu_rows = per_cpu.rows();
  ASSERT_EQ(cpu_rows.size(), 4u);
  const LlcRow* db_cpu1 = find_row(cpu_rows, 100, 0, 1);
  ASSERT_NE(db_cpu1, nullptr);
  EXPECT_EQ(db_cpu1->references, 4000u) << "both threads of the process on CPU 1";
  EXPECT_EQ(db_cpu1->misses, 900u);
}

TEST(LlcAggregator, IntervalsStartFromZeroAfterClear) {
  FakeCounters counters;
  counters.batches = {interval_samples(), {{0, 300, 300, "late", 40, 10}}};
  LlcAggregator aggregator(false, false);
  aggregator.add_all(counters);
  EXPECT_EQ(aggregator.rows().size(), 2u);
  aggregator.clear();
  aggregator.add_all(counters);
  auto rows = aggregator.rows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].pid, 300u);
  EXPECT_DOUBLE_EQ(rows[0].hit_ratio(), 0.75);
  aggregator.clear();
  aggregator.add_all(counters);  // the source is drained: nothing new
  EXPECT_TRUE(aggregator.rows().empty());
  EXPECT_EQ(aggregator.total().references, 0u);
  EXPECT_DOUBLE_EQ(aggregator.total().hit_ratio(), 0.0);
}

}  // namespace
}  // namespace memscope::llc
