// Outstanding kernel allocations (memleak_kernel.bpf.c), for memleak's kernel mode and `memscope
// serve`'s kmem collector: the skeleton's settings that follow this kernel, and the per-stack
// totals kept in the kernel (--combined-only).
#pragma once

#include <cstdint>
#include <vector>

#include "outstanding_report.hpp"

struct memleak_kernel;

namespace memscope::memleak {

// Before load: the argument layouts of this kernel's kmem tracepoints (from BTF), the page size,
// and an `allocs` map of `max_allocations` entries, preallocated.
void configure_kernel_skeleton(::memleak_kernel& skeleton, uint32_t max_allocations);

// Every stack of the `stack_totals` map with outstanding allocations (bytes, count); stacks not
// captured are the entry with stack_id -1.
std::vector<StackSummary> read_stack_totals(int totals_fd);

}  // namespace memscope::memleak
