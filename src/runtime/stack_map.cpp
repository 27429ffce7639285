#include "runtime/stack_map.hpp"

#include <bpf/bpf.h>

#include "memscope_shared.h"

namespace memscope {

std::vector<uint64_t> read_stack(int stack_map_fd, int32_t stack_id) {
  std::vector<uint64_t> addresses;
  if (stack_id < 0 || stack_map_fd < 0) return addresses;
  uint64_t raw[MEMSCOPE_MAX_STACK_DEPTH] = {};
  uint32_t key = static_cast<uint32_t>(stack_id);
  if (bpf_map_lookup_elem(stack_map_fd, &key, raw) != 0) return addresses;
  for (uint64_t address : raw) {
    if (!address) break;
    addresses.push_back(address);
  }
  return addresses;
}

}  // namespace memscope
