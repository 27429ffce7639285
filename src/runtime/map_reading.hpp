// Reading BPF maps that counting tools report from (faults, ffaults, hfaults, …): a snapshot of
// every entry of a hash map at report time, a reset between intervals, per-CPU counter sums.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <type_traits>
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

// Per-interval increments of a hash map whose values are u64 counters, or structs holding some
// (`fields`; their other members, a command name, are reported as they are now), that BPF programs
// add to through a pointer they looked up. Copying and deleting each entry would lose an increment
// that lands between a program's lookup and its add (1 of 20,000 faults, now and then); here an
// entry that moves is never deleted: each take reports value - value at the previous take. One
// that did not move since the previous take is deleted, so the map stays bounded (removed() lists
// those, for tools that free what their keys refer to); only an increment racing with the
// deletion of such an idle entry can still be lost.
template <typename Value>
struct CounterFieldOf {
  using type = __u64 Value::*;  // the counters of the BPF headers' structs
};
template <>
struct CounterFieldOf<uint64_t> {
  using type = std::nullptr_t;  // the value is the counter
};

template <typename Key, typename Value = uint64_t>
class CounterDeltas {
 public:
  using Field = typename CounterFieldOf<Value>::type;

  CounterDeltas()
    requires std::is_same_v<Value, uint64_t>
  = default;
  explicit CounterDeltas(std::vector<Field> fields) : fields_(std::move(fields)) {}

  std::vector<std::pair<Key, Value>> take(int map_fd) {
    std::vector<std::pair<Key, Value>> moved;
    removed_.clear();
    std::map<std::string, Value> now;  // by the key's bytes (BPF zeroes the keys' padding)
    for (const auto& [key, value] : read_hash_map<Key, Value>(map_fd)) {
      std::string bytes(reinterpret_cast<const char*>(&key), sizeof(Key));
      auto last = last_.find(bytes);
      Value before = last != last_.end() ? last->second : Value{};
      if (grew(value, before)) {
        moved.emplace_back(key, minus(value, before));
      } else if (last != last_.end() && bpf_map_delete_elem(map_fd, &key) == 0) {
        // Seen at the previous take and idle since. (One seen for the first time with nothing
        // counted yet may be a program's fresh entry about to be added to: it waits a take.)
        removed_.push_back(key);
        continue;
      }
      now[bytes] = value;
    }
    last_ = std::move(now);
    return moved;
  }

  // The entries the last take() deleted because they had not moved.
  const std::vector<Key>& removed() const { return removed_; }

 private:
  bool grew(const Value& now, const Value& before) const {
    if constexpr (std::is_same_v<Value, uint64_t>) {
      return now > before;
    } else {
      for (Field field : fields_)
        if (now.*field > before.*field) return true;
      return false;
    }
  }

  Value minus(const Value& now, const Value& before) const {
    if constexpr (std::is_same_v<Value, uint64_t>) {
      return now - before;
    } else {
      Value delta = now;
      for (Field field : fields_) delta.*field = now.*field >= before.*field ? now.*field - before.*field : now.*field;
      return delta;
    }
  }

  std::vector<Field> fields_;
  std::map<std::string, Value> last_;
  std::vector<Key> removed_;
};

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

// The sum over all CPUs of a per-CPU array's __u64 slot; 0 when it cannot be read.
inline uint64_t sum_percpu_counter(int map_fd, uint32_t slot) {
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return 0;
  std::vector<uint64_t> per_cpu(static_cast<size_t>(cpus));
  if (bpf_map_lookup_elem(map_fd, &slot, per_cpu.data()) != 0) return 0;
  uint64_t sum = 0;
  for (uint64_t value : per_cpu) sum += value;
  return sum;
}

}  // namespace memscope
