#include "kernel_allocations.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include "memleak.h"
#include "memleak_kernel.skel.h"
#include "runtime/kernel_introspection.hpp"

namespace memscope::memleak {

void configure_kernel_skeleton(::memleak_kernel& skel, uint32_t max_allocations) {
  // Argument layouts that changed between kernels, read from this kernel's BTF.
  skel.rodata->kmalloc_passes_cache = btf_tracepoint_arg_is_pointer("kmalloc", 2).value_or(false);
  skel.rodata->kmem_cache_alloc_passes_cache = btf_tracepoint_arg_is_pointer("kmem_cache_alloc", 2).value_or(true);
  skel.rodata->percpu_alloc_passes_call_site =
      btf_tracepoint_arg_is_pointer("percpu_alloc_percpu", 5).value_or(true);
  skel.rodata->page_size = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  // Preallocated in kernel mode: a map that allocates on update (bpf_mem_alloc refills through
  // kmalloc and the page allocator) would trace its own allocations, each traced one allocating
  // again, and fill itself with them.
  bpf_map__set_map_flags(skel.maps.allocs, bpf_map__map_flags(skel.maps.allocs) & ~BPF_F_NO_PREALLOC);
  bpf_map__set_max_entries(skel.maps.allocs, max_allocations);
}

std::vector<StackSummary> read_stack_totals(int totals_fd) {
  std::vector<StackSummary> result;
  uint32_t key = 0, next = 0;
  const void* previous = nullptr;
  while (bpf_map_get_next_key(totals_fd, previous, &next) == 0) {
    memleak_stack_total total;
    if (bpf_map_lookup_elem(totals_fd, &next, &total) == 0 && total.count > 0) {
      StackSummary summary;
      summary.stack_id = next == MEMLEAK_NO_STACK ? -1 : static_cast<int32_t>(next);
      summary.bytes = total.bytes;
      summary.count = total.count;
      result.push_back(summary);
    }
    key = next;
    previous = &key;
  }
  return result;
}

}  // namespace memscope::memleak
