#include "runtime/stack_map.hpp"

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <cstring>
#include <map>

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

namespace {

struct MapShape {
  uint32_t type = 0;
  uint32_t value_size = 0;
};

MapShape shape_of(int fd) {
  bpf_map_info info{};
  uint32_t length = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &length) != 0) return {};
  return {info.type, info.value_size};
}

}  // namespace

StackPruning prune_stack_maps(const std::vector<StoredStackMap>& maps,
                              const std::function<std::unordered_set<int32_t>()>& ids_in_use) {
  StackPruning pruning;
  std::unordered_set<int32_t> in_use = ids_in_use();
  struct Taken {
    const StoredStackMap* map;
    bool restorable;
    std::map<uint32_t, std::vector<uint8_t>> values;
  };
  std::vector<Taken> taken;
  for (const StoredStackMap& map : maps) {
    if (map.fd < 0) continue;
    MapShape shape = shape_of(map.fd);
    if (shape.value_size == 0) continue;
    bool restorable = shape.type != BPF_MAP_TYPE_STACK_TRACE;
    std::vector<uint32_t> doomed;
    uint32_t key = 0, next = 0;
    const void* previous = nullptr;
    while (bpf_map_get_next_key(map.fd, previous, &next) == 0) {
      if (!in_use.count(static_cast<int32_t>(next | map.id_bit))) doomed.push_back(next);
      key = next;
      previous = &key;
    }
    Taken& entry = taken.emplace_back(Taken{&map, restorable, {}});
    std::vector<uint8_t> value(shape.value_size);
    for (uint32_t id : doomed) {
      // Read before the delete, so that a stack re-used meanwhile can be put back.
      if (restorable && bpf_map_lookup_elem(map.fd, &id, value.data()) == 0) entry.values[id] = value;
      if (bpf_map_delete_elem(map.fd, &id) == 0) {
        pruning.deleted++;
        if (!restorable) entry.values[id];
      } else {
        entry.values.erase(id);
      }
    }
  }
  if (pruning.deleted == 0) return pruning;
  uint32_t all_bits = 0;
  for (const StoredStackMap& map : maps) all_bits |= map.id_bit;
  for (int32_t id : ids_in_use()) {
    if (id < 0) continue;
    for (Taken& entry : taken) {
      uint32_t bit = entry.map->id_bit;
      if (bit ? !(static_cast<uint32_t>(id) & bit) : (static_cast<uint32_t>(id) & all_bits) != 0) continue;
      uint32_t key = static_cast<uint32_t>(id) & ~bit;
      auto found = entry.values.find(key);
      if (found == entry.values.end()) continue;
      if (entry.restorable && bpf_map_update_elem(entry.map->fd, &key, found->second.data(), BPF_NOEXIST) == 0)
        pruning.restored++;
      else if (!entry.restorable)
        pruning.lost++;
      entry.values.erase(found);
      pruning.deleted--;
      break;
    }
  }
  return pruning;
}

}  // namespace memscope
