#include "tools/memleak/outstanding_report.hpp"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <iterator>
#include <map>
#include <vector>

#include "heap_scanner.hpp"

namespace memscope::memleak {

std::vector<StackSummary> summarize_by_stack(const std::vector<OutstandingAllocation>& allocations,
                                             uint64_t now_ns, uint64_t min_age_ns,
                                             const std::vector<BlockVerdict>* verdicts) {
  std::map<int32_t, StackSummary> by_stack;
  for (size_t i = 0; i < allocations.size(); i++) {
    const auto& allocation = allocations[i];
    if (min_age_ns && allocation.timestamp_ns + min_age_ns > now_ns) continue;
    int32_t key = allocation.stack_id < 0 ? -1 : allocation.stack_id;
    StackSummary& summary = by_stack[key];
    summary.stack_id = key;
    summary.bytes += allocation.size;
    summary.count++;
    summary.allocations.push_back(i);
    if (verdicts && i < verdicts->size()) {
      summary.scanned = true;
      if ((*verdicts)[i] == BlockVerdict::Leaked) {
        summary.leaked_bytes += allocation.size;
        summary.leaked_count++;
      } else {
        summary.reachable_bytes += allocation.size;
        summary.reachable_count++;
      }
    }
  }
  std::vector<StackSummary> summaries;
  for (auto& [stack_id, summary] : by_stack) {
    std::sort(summary.allocations.begin(), summary.allocations.end(),
              [&](size_t a, size_t b) { return allocations[a].size > allocations[b].size; });
    summaries.push_back(std::move(summary));
  }
  return summaries;
}

void order_and_truncate(std::vector<StackSummary>& summaries, StackOrder order, size_t top) {
  std::sort(summaries.begin(), summaries.end(), [order](const StackSummary& a, const StackSummary& b) {
    uint64_t a_first = order == StackOrder::Bytes ? a.bytes : a.count;
    uint64_t b_first = order == StackOrder::Bytes ? b.bytes : b.count;
    if (a_first != b_first) return a_first > b_first;
    uint64_t a_second = order == StackOrder::Bytes ? a.count : a.bytes;
    uint64_t b_second = order == StackOrder::Bytes ? b.count : b.bytes;
    if (a_second != b_second) return a_second > b_second;
    return a.stack_id < b.stack_id;
  });
  if (summaries.size() > top) summaries.resize(top);
}

void GrowthTracker::record(const std::map<int32_t, uint64_t>& bytes_by_stack) {
  for (auto& [stack_id, history] : history_) {
    auto it = bytes_by_stack.find(stack_id);
    push(history, it == bytes_by_stack.end() ? 0 : it->second);
  }
  for (const auto& [stack_id, bytes] : bytes_by_stack) {
    if (history_.count(stack_id)) continue;
    // A stack first seen now had nothing outstanding in the reports before.
    std::deque<uint64_t> history(std::min<size_t>(reports_, intervals_), 0);
    push(history, bytes);
    history_[stack_id] = std::move(history);
  }
  reports_++;
  // Stacks with nothing outstanding in the whole window cannot be growing: forget them.
  for (auto it = history_.begin(); it != history_.end();) {
    bool empty = std::all_of(it->second.begin(), it->second.end(), [](uint64_t bytes) { return bytes == 0; });
    it = empty ? history_.erase(it) : std::next(it);
  }
}

bool GrowthTracker::growing(int32_t stack_id) const {
  auto it = history_.find(stack_id);
  if (it == history_.end() || it->second.size() < intervals_ + 1) return false;
  const auto& history = it->second;
  for (size_t i = 1; i < history.size(); i++)
    if (history[i] <= history[i - 1]) return false;
  return true;
}

void GrowthTracker::push(std::deque<uint64_t>& history, uint64_t bytes) const {
  history.push_back(bytes);
  while (history.size() > intervals_ + 1) history.pop_front();
}

}  // namespace memscope::memleak
