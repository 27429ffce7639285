#include "oom_kill_decoding.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "oomkill.skel.h"
#include "runtime/kernel_introspection.hpp"
#include "symbols/symbolizer.hpp"

namespace memscope::oomkill_decoding {
namespace {

std::string fixed_string(const char* text, size_t size) { return std::string(text, strnlen(text, size)); }

// On the tracepoint path there is no oom_control; a memcg OOM has mem_cgroup_out_of_memory on the
// kernel stack of the triggering task.
bool stack_says_memcg_oom(const oomkill_event& event, symbols::StackSymbolizer& symbolizer) {
  size_t depth = std::min<size_t>(event.kernel_stack_bytes / sizeof(uint64_t), OOMKILL_STACK_DEPTH);
  std::vector<uint64_t> addresses(event.kernel_stack, event.kernel_stack + depth);
  for (const auto& frame : symbolizer.kernel_frames(addresses))
    if (frame.function == "mem_cgroup_out_of_memory" || frame.function == "try_charge_memcg" ||
        frame.function == "mem_cgroup_oom")
      return true;
  return false;
}

}  // namespace

OomKill decode(const oomkill_event& event, symbols::StackSymbolizer& symbolizer) {
  OomKill kill;
  kill.victim_comm = event.victim_comm_known ? fixed_string(event.victim_comm, sizeof(event.victim_comm))
                                             : process_comm(static_cast<int>(event.victim_pid));
  if (kill.victim_comm.empty()) kill.victim_comm.push_back('?');
  kill.triggered_comm = fixed_string(event.triggered_comm, sizeof(event.triggered_comm));
  kill.memcg_oom = event.memcg_source == OOMKILL_MEMCG_OOM_CONTROL ||
                   (event.memcg_source == OOMKILL_MEMCG_VICTIM && stack_says_memcg_oom(event, symbolizer));
  if (kill.memcg_oom)
    kill.memcg = cgroup_path_from_id(event.memcg_id).value_or(fmt::format("cgroup id {}", event.memcg_id));
  return kill;
}

void configure(::oomkill& skeleton) {
  // mark_victim(int pid) became mark_victim(struct task_struct *, uid_t) in 6.8.
  skeleton.rodata->mark_victim_passes_task = btf_tracepoint_arg_is_pointer("mark_victim", 0).value_or(false);
}

}  // namespace memscope::oomkill_decoding
