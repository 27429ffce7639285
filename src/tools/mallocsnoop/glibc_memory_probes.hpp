// glibc's memory_* USDT probes (provider "libc") and the meaning of their arguments, from the
// LIBC_PROBE calls in glibc's malloc/malloc.c and malloc/arena.c and the glibc manual's "Memory
// Allocation Probes". Probes this table doesn't know are shown with numbered arguments.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace memscope::glibc {

enum class ArgumentKind { Pointer, Bytes, Int, MalloptParam };

struct ArgumentMeaning {
  const char* name;  // JSON field and text label
  ArgumentKind kind;
};

struct ProbeMeaning {
  const char* name;
  std::vector<ArgumentMeaning> arguments;
  const char* description;
};

inline const std::vector<ProbeMeaning>& glibc_memory_probes() {
  using K = ArgumentKind;
  static const std::vector<ProbeMeaning> probes = {
      // sysmalloc: LIBC_PROBE (memory_sbrk_more, 2, brk, size) — brk is sbrk's return: the old break.
      {"memory_sbrk_more", {{"brk", K::Pointer}, {"size", K::Bytes}}, "main arena grown with sbrk"},
      // systrim: LIBC_PROBE (memory_sbrk_less, 2, new_brk, extra)
      {"memory_sbrk_less", {{"new_brk", K::Pointer}, {"size", K::Bytes}}, "main arena shrunk with sbrk"},
      // new_heap: LIBC_PROBE (memory_heap_new, 2, h, h->size)
      {"memory_heap_new", {{"heap", K::Pointer}, {"size", K::Bytes}}, "new heap mmapped for an arena"},
      // heap_trim: LIBC_PROBE (memory_heap_free, 2, heap, heap->size), before the munmap
      {"memory_heap_free", {{"heap", K::Pointer}, {"size", K::Bytes}}, "heap about to be unmapped"},
      // grow_heap / shrink_heap: (h, h->size), the heap's new size
      {"memory_heap_more", {{"heap", K::Pointer}, {"new_size", K::Bytes}}, "heap grown"},
      {"memory_heap_less", {{"heap", K::Pointer}, {"new_size", K::Bytes}}, "heap shrunk"},
      // _int_new_arena: LIBC_PROBE (memory_arena_new, 2, a, size)
      {"memory_arena_new", {{"arena", K::Pointer}, {"size", K::Bytes}}, "new arena"},
      // reused_arena: (result, avoid_arena); (&result->mutex, result, avoid_arena); get_free_list: (result)
      {"memory_arena_reuse",
       {{"arena", K::Pointer}, {"previous_arena", K::Pointer}},
       "existing arena reused"},
      {"memory_arena_reuse_wait",
       {{"mutex", K::Pointer}, {"arena", K::Pointer}, {"previous_arena", K::Pointer}},
       "waiting for an arena's lock"},
      {"memory_arena_reuse_free_list", {{"arena", K::Pointer}}, "arena taken from the free list"},
      // arena_get_retry: LIBC_PROBE (memory_arena_retry, 2, bytes, ar_ptr)
      {"memory_arena_retry",
       {{"bytes", K::Bytes}, {"arena", K::Pointer}},
       "allocation retried in another arena"},
      {"memory_malloc_retry", {{"bytes", K::Bytes}}, "malloc failed in its arena, retrying"},
      {"memory_calloc_retry", {{"bytes", K::Bytes}}, "calloc failed in its arena, retrying"},
      {"memory_realloc_retry",
       {{"bytes", K::Bytes}, {"old_pointer", K::Pointer}},
       "realloc failed in its arena, retrying"},
      {"memory_memalign_retry",
       {{"bytes", K::Bytes}, {"alignment", K::Bytes}},
       "memalign failed in its arena, retrying"},
      // __libc_mallopt: LIBC_PROBE (memory_mallopt, 2, param_number, value), then one per parameter
      {"memory_mallopt", {{"param", K::MalloptParam}, {"value", K::Int}}, "mallopt called"},
      {"memory_mallopt_mxfast", {{"value", K::Int}, {"previous", K::Int}}, "M_MXFAST set"},
      {"memory_mallopt_trim_threshold",
       {{"value", K::Int}, {"previous", K::Int}, {"dynamic_disabled", K::Int}},
       "M_TRIM_THRESHOLD set"},
      {"memory_mallopt_top_pad",
       {{"value", K::Int}, {"previous", K::Int}, {"dynamic_disabled", K::Int}},
       "M_TOP_PAD set"},
      {"memory_mallopt_mmap_threshold",
       {{"value", K::Int}, {"previous", K::Int}, {"dynamic_disabled", K::Int}},
       "M_MMAP_THRESHOLD set"},
      {"memory_mallopt_mmap_max",
       {{"value", K::Int}, {"previous", K::Int}, {"dynamic_disabled", K::Int}},
       "M_MMAP_MAX set"},
      {"memory_mallopt_perturb", {{"value", K::Int}, {"previous", K::Int}}, "M_PERTURB set"},
      {"memory_mallopt_arena_test", {{"value", K::Int}, {"previous", K::Int}}, "M_ARENA_TEST set"},
      {"memory_mallopt_arena_max", {{"value", K::Int}, {"previous", K::Int}}, "M_ARENA_MAX set"},
      // free: LIBC_PROBE (memory_mallopt_free_dyn_thresholds, 2, mp_.mmap_threshold, mp_.trim_threshold)
      {"memory_mallopt_free_dyn_thresholds",
       {{"mmap_threshold", K::Bytes}, {"trim_threshold", K::Bytes}},
       "free raised the dynamic mmap/trim thresholds"},
      {"memory_tunable_tcache_max_bytes",
       {{"value", K::Int}, {"previous", K::Int}},
       "glibc.malloc.tcache_max set"},
      {"memory_tunable_tcache_count",
       {{"value", K::Int}, {"previous", K::Int}},
       "glibc.malloc.tcache_count set"},
      {"memory_tunable_tcache_unsorted_limit",
       {{"value", K::Int}, {"previous", K::Int}},
       "glibc.malloc.tcache_unsorted_limit set"},
      // _int_free: LIBC_PROBE (memory_tcache_double_free, 2, e, tc_idx)
      {"memory_tcache_double_free",
       {{"pointer", K::Pointer}, {"tcache_bin", K::Int}},
       "double free detected"},
  };
  return probes;
}

inline const ProbeMeaning* find_probe_meaning(std::string_view name) {
  for (const auto& probe : glibc_memory_probes())
    if (name == probe.name) return &probe;
  return nullptr;
}

// mallopt's parameter numbers (<malloc.h>).
inline std::string mallopt_param_name(int64_t param) {
  switch (param) {
    case 1:
      return "M_MXFAST";
    case -1:
      return "M_TRIM_THRESHOLD";
    case -2:
      return "M_TOP_PAD";
    case -3:
      return "M_MMAP_THRESHOLD";
    case -4:
      return "M_MMAP_MAX";
    case -5:
      return "M_CHECK_ACTION";
    case -6:
      return "M_PERTURB";
    case -7:
      return "M_ARENA_TEST";
    case -8:
      return "M_ARENA_MAX";
  }
  return std::to_string(param);
}

}  // namespace memscope::glibc
