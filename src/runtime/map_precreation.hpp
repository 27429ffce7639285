// BPF maps that the kernel builds on another thread while memscope gets ready, handed to libbpf
// before load in place of the maps libbpf would create.
//
// Why: a preallocated table takes the kernel milliseconds to build (memleak's kernel-mode
// allocation table, 262,144 entries, ~6-8 ms of page zeroing and free-list set-up), and libbpf
// creates maps one after the other inside bpf_object__load. Started as soon as the tool's options
// are known, the creation overlaps memscope's own start-up (probe resolution, the CO-RE BTF cut,
// opening the object) on any machine with a second CPU; with one CPU it costs nothing extra.
#pragma once

#include <bpf/libbpf.h>

#include <cstdint>
#include <future>
#include <string>
#include <vector>

namespace memscope {

class PrecreatedMaps {
 public:
  struct Definition {
    bpf_map_type type;
    std::string name;
    uint32_t key_size;
    uint32_t value_size;
    uint32_t max_entries;
    uint32_t flags;
  };

  // Creates each map on a thread of its own, at once.
  explicit PrecreatedMaps(std::vector<Definition> definitions);
  PrecreatedMaps(const PrecreatedMaps&) = delete;
  PrecreatedMaps& operator=(const PrecreatedMaps&) = delete;
  // Waits for the creation; closes the maps (libbpf keeps its own descriptors of those it took).
  ~PrecreatedMaps();

  // Before load: makes libbpf use the map made here under `map`'s name, if `map` is now defined
  // exactly as it was (type, sizes, entries, flags) and its creation succeeded. Otherwise (a
  // definition changed since, no privileges) returns false and libbpf creates `map` itself.
  bool hand_to(bpf_map* map);

 private:
  // The descriptor (or -errno) of definitions_[index], waiting for its creation.
  int descriptor(size_t index);

  std::vector<Definition> definitions_;
  std::vector<std::future<int>> created_;
  std::vector<int> fds_;
};

}  // namespace memscope
