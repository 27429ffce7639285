// From outstanding allocations to the per-stack lines of a memleak report: aggregation by stack,
// the -o age filter, leak-scan verdicts per stack, growth across reports, ordering and the top N.
// Pure logic (no BPF, no I/O), header-only so that unit tests can use it directly.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <iterator>
#include <map>
#include <vector>

#include "heap_scanner.hpp"

namespace memscope::memleak {

struct OutstandingAllocation {
  uint64_t address = 0;
  uint64_t size = 0;
  uint64_t timestamp_ns = 0;  // CLOCK_MONOTONIC
  int32_t stack_id = -1;      // negative: not captured
};

struct StackSummary {
  int32_t stack_id = -1;
  uint64_t bytes = 0;
  uint64_t count = 0;
  // Filled when a leak scan ran: every block of the stack is either leaked or reachable.
  bool scanned = false;
  uint64_t leaked_bytes = 0;
  uint64_t leaked_count = 0;
  uint64_t reachable_bytes = 0;
  uint64_t reachable_count = 0;
  bool growing = false;
  std::vector<size_t> allocations;  // indexes into the allocation list, largest first (for -a)
};

enum class StackOrder { Bytes, Count };

// Aggregates the allocations at least min_age_ns old by stack. `verdicts`, when given, is
// parallel to `allocations` and labels each counted block.
inline std::vector<StackSummary> summarize_by_stack(const std::vector<OutstandingAllocation>& allocations,
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

// Largest first (bytes, or allocation count with --sort count); ties by the other key, then by
// stack id so that the order is stable between reports. Keeps the first `top`.
inline void order_and_truncate(std::vector<StackSummary>& summaries, StackOrder order, size_t top) {
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

// GROWING: a stack whose outstanding bytes rose in each of the last N reports.
class GrowthTracker {
 public:
  explicit GrowthTracker(int intervals) : intervals_(intervals < 1 ? 1 : static_cast<size_t>(intervals)) {}

  // One report's outstanding bytes per stack id; stacks absent from it count as 0.
  void record(const std::map<int32_t, uint64_t>& bytes_by_stack) {
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
      bool empty =
          std::all_of(it->second.begin(), it->second.end(), [](uint64_t bytes) { return bytes == 0; });
      it = empty ? history_.erase(it) : std::next(it);
    }
  }

  bool growing(int32_t stack_id) const {
    auto it = history_.find(stack_id);
    if (it == history_.end() || it->second.size() < intervals_ + 1) return false;
    const auto& history = it->second;
    for (size_t i = 1; i < history.size(); i++)
      if (history[i] <= history[i - 1]) return false;
    return true;
  }

 private:
  void push(std::deque<uint64_t>& history, uint64_t bytes) const {
    history.push_back(bytes);
    while (history.size() > intervals_ + 1) history.pop_front();
  }

  size_t intervals_;
  size_t reports_ = 0;
  std::map<int32_t, std::deque<uint64_t>> history_;
};

}  // namespace memscope::memleak
