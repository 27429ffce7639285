// From outstanding allocations to the per-stack lines of a memleak report: aggregation by stack,
// the -o age filter, leak-scan verdicts per stack, growth across reports, ordering and the top N.
// Pure logic (no BPF, no I/O), so that unit tests can use it directly.
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
std::vector<StackSummary> summarize_by_stack(const std::vector<OutstandingAllocation>& allocations,
                                             uint64_t now_ns, uint64_t min_age_ns,
                                             const std::vector<BlockVerdict>* verdicts);

// Largest first (bytes, or allocation count with --sort count); ties by the other key, then by
// stack id so that the order is stable between reports. Keeps the first `top`.
void order_and_truncate(std::vector<StackSummary>& summaries, StackOrder order, size_t top);

// GROWING: a stack whose outstanding bytes rose in each of the last N reports.
class GrowthTracker {
 public:
  explicit GrowthTracker(int intervals) : intervals_(intervals < 1 ? 1 : static_cast<size_t>(intervals)) {}

  // One report's outstanding bytes per stack id; stacks absent from it count as 0.
  void record(const std::map<int32_t, uint64_t>& bytes_by_stack);

  bool growing(int32_t stack_id) const;

 private:
  void push(std::deque<uint64_t>& history, uint64_t bytes) const;

  size_t intervals_;
  size_t reports_ = 0;
  std::map<int32_t, std::deque<uint64_t>> history_;
};

}  // namespace memscope::memleak
