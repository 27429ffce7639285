// memleak --sample-bytes: heap profiling by byte sampling inside the process. The sampler library
// (src/sampler, libmemscope-sampler.so) decides in the process which allocations to sample and
// fires USDT probes for those only (docs/sampled-heap.md); memleak_sampled.bpf.c records them.
// This file holds what the sampled mode adds to memleak: finding and preloading the library,
// attaching its probes, and turning samples into unbiased estimates per stack.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "outstanding_report.hpp"
#include "output/stack.hpp"
#include "runtime/bpf_skeleton.hpp"

struct bpf_program;

namespace memscope::memleak {

inline constexpr uint64_t kDefaultSampleBytes = 512 * 1024;
inline constexpr const char* kSamplerLibraryName = "libmemscope-sampler.so";

// The installed sampler library: next to the memscope binary (build tree), or in
// ../lib/memscope/ (installed). Throws FatalError naming both places when it is in neither.
std::string find_sampler_library();

// The environment a -c command starts with: memscope's own, with the library first in
// LD_PRELOAD and the interval and set size the library reads at start.
std::vector<std::string> sampler_environment(const std::string& library, uint64_t sample_bytes,
                                             uint64_t set_slots);

// Attaches the alloc and free programs to ddheap:alloc and ddheap:free of `object` (the library
// or an allocator with the probes built in), for process `pid`.
void attach_sampler_probes(bpf_program* alloc_program, bpf_program* free_program, BpfObjectLinks& links,
                           pid_t pid, const std::string& object);

// memscope_sampler_set_full of the library as process `pid` maps it: samples the library dropped
// because its set of sampled blocks had no free slot. nullopt when it cannot be read (the process
// is gone, or maps no such library).
std::optional<uint64_t> read_sampler_drops(pid_t pid, const std::string& library);

// Weights of the outstanding samples, by address.
std::map<uint64_t, uint64_t> read_sample_weights(int weights_fd);

struct SampledAllocTotal {
  uint64_t bytes = 0;  // estimated bytes ever allocated from the stack
  uint64_t count = 0;  // estimated allocations
};
// Everything allocated since tracing began, per stack id (-1: not captured).
std::map<int32_t, SampledAllocTotal> read_alloc_totals(int totals_fd);

// summarize_by_stack() for samples: bytes and counts (and the leaked/reachable split of a scan)
// are the sums of the samples' weights and of weight/size, rounded, so every figure is an
// unbiased estimate of the whole heap's.
std::vector<StackSummary> summarize_samples(const std::vector<OutstandingAllocation>& samples,
                                            const std::map<uint64_t, uint64_t>& weights, uint64_t now_ns,
                                            uint64_t min_age_ns, const std::vector<BlockVerdict>* verdicts);

// Stacks that allocated but hold nothing now (churn) join the report with 0 outstanding, as in
// Go's heap profile, where they carry alloc_space only.
void add_allocating_stacks(std::vector<StackSummary>& summaries,
                           const std::map<int32_t, SampledAllocTotal>& alloc_totals);

// The sampler's own frames at the top of a stack taken at its probe (the probe site, the
// interposed function), found by the address ranges where process `pid` maps the library.
class SamplerFrames {
 public:
  SamplerFrames() = default;
  // Reads /proc/PID/maps; keeps the ranges of files named like the library.
  void load(pid_t pid);
  // Drops the leading user frames that lie in the library.
  void strip(output::Stack& stack) const;

 private:
  std::vector<std::pair<uint64_t, uint64_t>> ranges_;
};

}  // namespace memscope::memleak
