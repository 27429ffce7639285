// Reading stacks that BPF programs stored with bpf_get_stackid() in a BPF_MAP_TYPE_STACK_TRACE map
// (declared with MEMSCOPE_STACK_MAP in bpf/memscope.bpf.h).
#pragma once

#include <cstdint>
#include <vector>

namespace memscope {

// Addresses innermost first, without the zero padding; empty for a negative id (not captured) or
// an id that is gone.
std::vector<uint64_t> read_stack(int stack_map_fd, int32_t stack_id);

}  // namespace memscope
