#include "runtime/ring_buffer_reader.hpp"

#include <bpf/bpf.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "memscope_shared.h"
#include "runtime/result.hpp"

namespace memscope {
namespace {

DropCounts read_drops_from_fd(int drops_fd) {
  DropCounts counts;
  if (drops_fd < 0) return counts;
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return counts;
  std::vector<uint64_t> per_cpu(cpus);
  uint64_t* fields[] = {&counts.ring_buffer_full, &counts.stack_failures, &counts.map_full};
  for (uint32_t reason = 0; reason < MEMSCOPE_DROP_REASONS; reason++) {
    if (bpf_map_lookup_elem(drops_fd, &reason, per_cpu.data()) != 0) continue;
    for (uint64_t value : per_cpu) *fields[reason] += value;
  }
  return counts;
}

}  // namespace

std::string DropCounts::describe() const {
  std::vector<std::string> parts;
  if (ring_buffer_full) parts.push_back(fmt::format("{} events lost (ring buffer full)", ring_buffer_full));
  if (stack_failures)
    parts.push_back(fmt::format("{} stacks not captured (stack map full or collision)", stack_failures));
  if (map_full) parts.push_back(fmt::format("{} updates lost (BPF map full)", map_full));
  return fmt::format("{}", fmt::join(parts, ", "));
}

RingBufferReader::RingBufferReader(bpf_object* object, Handler handler) : handler_(std::move(handler)) {
  bpf_map* events = bpf_object__find_map_by_name(object, "events");
  bpf_map* drops = bpf_object__find_map_by_name(object, "drops");
  if (!events || !drops) throw FatalError("internal: BPF object lacks the events/drops maps");
  drops_fd_ = bpf_map__fd(drops);
  ring_ = ring_buffer__new(bpf_map__fd(events), &RingBufferReader::dispatch, this, nullptr);
  if (!ring_) throw FatalError(fmt::format("cannot open the ring buffer: {}", strerror(errno)));
}

RingBufferReader::~RingBufferReader() { ring_buffer__free(ring_); }

int RingBufferReader::epoll_fd() const { return ring_buffer__epoll_fd(ring_); }

namespace {
// Returned by dispatch() to make libbpf stop (after consuming the record just handled).
constexpr int kBudgetSpent = -EAGAIN;
}  // namespace

int RingBufferReader::consume() {
  budget_left_ = kConsumeBudget;
  int consumed = ring_buffer__consume(ring_);
  return consumed == kBudgetSpent ? kConsumeBudget : consumed;
}

int RingBufferReader::dispatch(void* context, void* data, size_t size) {
  auto* reader = static_cast<RingBufferReader*>(context);
  reader->handler_(data, size);
  return --reader->budget_left_ > 0 ? 0 : kBudgetSpent;
}

DropCounts RingBufferReader::drops() const { return read_drops_from_fd(drops_fd_); }

DropCounts read_drop_counts(bpf_object* object) {
  bpf_map* drops = bpf_object__find_map_by_name(object, "drops");
  return drops ? read_drops_from_fd(bpf_map__fd(drops)) : DropCounts{};
}

void shrink_unused_ring_buffer(bpf_map* events) {
  bpf_map__set_max_entries(events, static_cast<uint32_t>(sysconf(_SC_PAGESIZE)));
}

}  // namespace memscope
