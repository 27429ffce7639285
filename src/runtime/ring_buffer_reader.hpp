// The one reader of the `events` ring buffer every tool declares (bpf/memscope.bpf.h), and of the
// `drops` counters beside it, so lost events are always counted the same way.
#pragma once

#include <bpf/libbpf.h>

#include <cstdint>
#include <functional>
#include <string>

namespace memscope {

struct DropCounts {
  uint64_t ring_buffer_full = 0;
  uint64_t stack_failures = 0;
  uint64_t map_full = 0;
  uint64_t total() const { return ring_buffer_full + stack_failures + map_full; }
  std::string describe() const;  // "3 events lost (ring buffer full), 1 stack not captured"
};

class RingBufferReader {
 public:
  using Handler = std::function<void(const void* data, size_t size)>;

  // object must contain the maps `events` and `drops`.
  RingBufferReader(bpf_object* object, Handler handler);
  RingBufferReader(const RingBufferReader&) = delete;
  RingBufferReader& operator=(const RingBufferReader&) = delete;
  ~RingBufferReader();

  int epoll_fd() const;
  // Delivers the records available now, at most kConsumeBudget of them; returns how many. libbpf
  // keeps consuming while the producer keeps producing, so without a budget a tracer whose events
  // arrive faster than it prints them would never get back to its event loop (no timer, no
  // Ctrl-C): the rest waits for the next call.
  static constexpr int kConsumeBudget = 16384;
  int consume();
  DropCounts drops() const;

 private:
  static int dispatch(void* context, void* data, size_t size);

  int budget_left_ = 0;
  Handler handler_;
  ring_buffer* ring_ = nullptr;
  int drops_fd_ = -1;
};

// Before load, for tools whose counts live in maps read by user space: the `events` ring buffer
// stays empty, so it is given the smallest size (one page) instead of the shared default.
void shrink_unused_ring_buffer(bpf_map* events);

// Reads the per-CPU drop counters of an object that has a `drops` map but no ring buffer reader.
DropCounts read_drop_counts(bpf_object* object);

}  // namespace memscope
