// What the page fault tools (faults, ffaults, hfaults) share: the exception tracepoint hooks, with
// their BPF programs named from one prefix, and the accounting of the VMA lookups that ffaults and
// hfaults do there (bpf/memscope_vma.bpf.h).
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "memscope_vma_shared.h"
#include "output/sink.hpp"
#include "runtime/hook.hpp"
#include "runtime/map_reading.hpp"
#include "runtime/ring_buffer_reader.hpp"

namespace memscope {

// exceptions:page_fault_user and page_fault_kernel as raw_tp, tp_btf and tracepoint, in that order.
// raw_tp first: one program, PREFIX_raw_tp, serves both tracepoints (it tells them apart by the
// saved registers), where tp_btf and tracepoint need one per tracepoint,
// PREFIX_{user,kernel}_{tp_btf,tracepoint}: with the stack walker or the VMA lookup in them, each
// costs a few ms of verification at start-up. The arguments are plain numbers and a pt_regs
// pointer, so tp_btf's typed access buys nothing here.
inline std::vector<HookAlternative> page_fault_tracepoint_alternatives(const std::string& prefix) {
  auto both = [&](const std::string& suffix, const std::string& category) {
    return std::vector<HookProgram>{{prefix + "_user_" + suffix, {category + "page_fault_user"}},
                                    {prefix + "_kernel_" + suffix, {category + "page_fault_kernel"}}};
  };
  return {{HookKind::RawTp, {{prefix + "_raw_tp", {"page_fault_user"}}, {prefix + "_raw_tp", {"page_fault_kernel"}}}},
          {HookKind::TpBtf, both("tp_btf", "")},
          {HookKind::Tracepoint, both("tracepoint", "exceptions:")}};
}

// The book's hook first (PREFIX_fentry, then PREFIX_kprobe, on `function`), then the exception
// tracepoints, whose programs look the faulting address's mapping up where kprobes and fentry are
// missing (bpf_find_vma needs 5.17).
inline ProbeSpec function_then_fault_tracepoints(std::string event, const std::string& prefix,
                                                 const std::string& function) {
  ProbeSpec spec{std::move(event),
                 {{HookKind::Fentry, {{prefix + "_fentry", {function}}}},
                  {HookKind::Kprobe, {{prefix + "_kprobe", {function}}}}}};
  for (HookAlternative& alternative : page_fault_tracepoint_alternatives(prefix))
    spec.alternatives.push_back(std::move(alternative));
  return spec;
}

// Whether a hook of function_then_fault_tracepoints() looks mappings up (the tracepoints do).
inline bool looks_up_mappings(HookKind kind) { return kind != HookKind::Fentry && kind != HookKind::Kprobe; }

// How the VMA lookups were answered, from the vma_lookups per-CPU counters.
struct VmaLookupCounts {
  uint64_t from_cache = 0;
  uint64_t from_find_vma = 0;
  uint64_t from_walk = 0;
  uint64_t unresolved = 0;

  static VmaLookupCounts read(int lookups_fd) {
    return {sum_percpu_counter(lookups_fd, MEMSCOPE_VMA_FROM_CACHE),
            sum_percpu_counter(lookups_fd, MEMSCOPE_VMA_FROM_FIND_VMA),
            sum_percpu_counter(lookups_fd, MEMSCOPE_VMA_FROM_WALK),
            sum_percpu_counter(lookups_fd, MEMSCOPE_VMA_UNRESOLVED)};
  }
  // For -v.
  std::string describe() const {
    return fmt::format(
        "VMA lookups: {} answered from the cache, {} by bpf_find_vma, {} by a lockless walk while "
        "bpf_find_vma was busy, {} unresolved",
        from_cache, from_find_vma, from_walk, unresolved);
  }
};

// "Lost: …" with the drops of the ring buffer and maps and, when some lookups stayed unresolved,
// `unresolved_what` (e.g. "3 faults not checked for hugetlb (mapping lookup busy)"); silent when
// nothing was lost.
inline void report_drops_and_unresolved(output::Sink& sink, const DropCounts& drops,
                                        const std::string& unresolved_what) {
  std::string lost = drops.describe();
  if (!unresolved_what.empty()) lost += (lost.empty() ? "" : ", ") + unresolved_what;
  if (!lost.empty()) sink.message("Lost: " + lost);
}

}  // namespace memscope
