// Reading and emptying the aggregating BPF hash maps that counting tools report from (faults,
// ffaults, hfaults, …): a snapshot of every entry at report time, and a reset between intervals.
#pragma once

#include <bpf/bpf.h>

#include <cerrno>
#include <utility>
#include <vector>

namespace memscope {

// Every (key, value) in the map at this moment. Entries added while iterating may or may not be
// included; an entry deleted meanwhile is skipped.
template <typename Key, typename Value>
std::vector<std::pair<Key, Value>> read_hash_map(int map_fd) {
  std::vector<std::pair<Key, Value>> entries;
  Key key{};
  Key next{};
  const void* previous = nullptr;
  while (bpf_map_get_next_key(map_fd, previous, &next) == 0) {
    Value value{};
    if (bpf_map_lookup_elem(map_fd, &next, &value) == 0) entries.emplace_back(next, value);
    key = next;
    previous = &key;
  }
  return entries;
}

// Deletes every entry, for per-interval reports.
template <typename Key>
void clear_hash_map(int map_fd) {
  std::vector<Key> keys;
  Key key{};
  Key next{};
  const void* previous = nullptr;
  while (bpf_map_get_next_key(map_fd, previous, &next) == 0) {
    keys.push_back(next);
    key = next;
    previous = &key;
  }
  for (const Key& each : keys) bpf_map_delete_elem(map_fd, &each);
}

}  // namespace memscope
