#include "tools/llcstat/llc_aggregator.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace memscope::llc {

double LlcRow::hit_ratio() const {
  if (references == 0) return 0;
  uint64_t hits = references > misses ? references - misses : 0;
  return static_cast<double>(hits) / static_cast<double>(references);
}

void LlcAggregator::add(const LlcSample& sample) {
  Key key{sample.pid, per_thread_ ? sample.tid : 0, per_cpu_ ? static_cast<int>(sample.cpu) : -1};
  LlcRow& row = rows_[key];
  row.pid = sample.pid;
  row.tid = std::get<1>(key);
  row.cpu = std::get<2>(key);
  // A process's name is its main thread's; other threads' names are kept until it is seen.
  if (row.comm.empty() || sample.tid == sample.pid) row.comm = sample.comm;
  row.references += sample.references;
  row.misses += sample.misses;
}

std::vector<LlcRow> LlcAggregator::rows() const {
  std::vector<LlcRow> sorted;
  for (const auto& [key, row] : rows_) sorted.push_back(row);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const LlcRow& a, const LlcRow& b) { return a.references > b.references; });
  return sorted;
}

LlcRow LlcAggregator::total() const {
  LlcRow sum;
  for (const auto& [key, row] : rows_) {
    sum.references += row.references;
    sum.misses += row.misses;
  }
  return sum;
}

}  // namespace memscope::llc
