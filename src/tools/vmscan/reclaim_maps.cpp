#include "reclaim_maps.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>

#include "runtime/log.hpp"

namespace memscope::reclaim_maps {

ReclaimTotals ReclaimTotals::since(const ReclaimTotals& earlier) const {
  ReclaimTotals delta;
  for (int i = 0; i < VMSCAN_PHASES; i++) {
    delta.phase_ns[i] = phase_ns[i] - earlier.phase_ns[i];
    delta.phase_count[i] = phase_count[i] - earlier.phase_count[i];
  }
  delta.kswapd_wakeups = kswapd_wakeups - earlier.kswapd_wakeups;
  delta.reclaim_writes = reclaim_writes - earlier.reclaim_writes;
  return delta;
}

ReclaimTotals read_totals(bpf_map* map) {
  std::vector<vmscan_totals> per_cpu(libbpf_num_possible_cpus());
  uint32_t zero = 0;
  ReclaimTotals sum;
  if (bpf_map_lookup_elem(bpf_map__fd(map), &zero, per_cpu.data()) != 0) {
    log::warning("cannot read the vmscan totals: {}", strerror(errno));
    return sum;
  }
  for (const auto& cpu : per_cpu) {
    for (int i = 0; i < VMSCAN_PHASES; i++) {
      sum.phase_ns[i] += cpu.phase_ns[i];
      sum.phase_count[i] += cpu.phase_count[i];
    }
    sum.kswapd_wakeups += cpu.kswapd_wakeups;
    sum.reclaim_writes += cpu.reclaim_writes;
  }
  return sum;
}

std::vector<uint64_t> read_histogram(bpf_map* map, int phase) {
  std::vector<uint64_t> buckets(VMSCAN_HIST_BUCKETS, 0);
  std::vector<uint64_t> per_cpu(libbpf_num_possible_cpus());
  for (uint32_t bucket = 0; bucket < VMSCAN_HIST_BUCKETS; bucket++) {
    uint32_t slot = static_cast<uint32_t>(phase) * VMSCAN_HIST_BUCKETS + bucket;
    if (bpf_map_lookup_elem(bpf_map__fd(map), &slot, per_cpu.data()) != 0) continue;
    for (uint64_t count : per_cpu) buckets[bucket] += count;
  }
  return buckets;
}

}  // namespace memscope::reclaim_maps
