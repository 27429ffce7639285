// Reading vmscan's maps (cumulative per-CPU totals and log2 latency histograms), for the vmscan
// tool's intervals and `memscope serve`'s reclaim metrics.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "vmscan.h"

struct bpf_map;

namespace memscope::reclaim_maps {

struct ReclaimTotals {
  std::array<uint64_t, VMSCAN_PHASES> phase_ns{};
  std::array<uint64_t, VMSCAN_PHASES> phase_count{};
  uint64_t kswapd_wakeups = 0;
  uint64_t reclaim_writes = 0;

  ReclaimTotals since(const ReclaimTotals& earlier) const;
};

// The sums over all CPUs of the `totals` map (zeros, with a warning, when it cannot be read).
ReclaimTotals read_totals(bpf_map* totals);
// The VMSCAN_HIST_BUCKETS log2 buckets of one phase of the `latency_hist` map, summed over CPUs.
std::vector<uint64_t> read_histogram(bpf_map* latency_hist, int phase);

}  // namespace memscope::reclaim_maps
