// Reading stacks that BPF programs stored with bpf_get_stackid() in a BPF_MAP_TYPE_STACK_TRACE map
// (declared with MEMSCOPE_STACK_MAP in bpf/memscope.bpf.h), and forgetting stored stacks that
// nothing uses any more.
#pragma once

#include <cstdint>
#include <functional>
#include <unordered_set>
#include <vector>

namespace memscope {

// Addresses innermost first, without the zero padding; empty for a negative id (not captured) or
// an id that is gone.
std::vector<uint64_t> read_stack(int stack_map_fd, int32_t stack_id);

// A map of stored stacks keyed by a __u32 id: a stack trace map, or a hash map of stacks (the
// DWARF unwinder's `unwound_stacks`, memleak's `overflow_stacks`). Tools see its ids with
// `id_bit` set.
struct StoredStackMap {
  int fd = -1;
  uint32_t id_bit = 0;
};

struct StackPruning {
  uint64_t deleted = 0;   // stored stacks no id in use named
  uint64_t restored = 0;  // taken while in use (an event stored it again meanwhile), put back
  uint64_t lost = 0;      // taken while in use and not restorable (stack trace maps refuse updates)
};

// Stacks are stored once per distinct stack and never freed by the kernel: a tool that sees many
// short-lived call paths fills its maps and then loses the stacks it needs. This deletes every
// stored stack whose id `ids_in_use()` does not return. Events keep storing stacks meanwhile, so
// the ids in use are read again after the deletion, and a stack an event re-used in between is put
// back (hash maps) or counted as lost (stack trace maps; the same stack gets the same id again at
// its next event).
StackPruning prune_stack_maps(const std::vector<StoredStackMap>& maps,
                              const std::function<std::unordered_set<int32_t>()>& ids_in_use);

}  // namespace memscope
