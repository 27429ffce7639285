// The stack service: how tools get user stacks, in one place. The BPF side
// (bpf/memscope_unwind.bpf.h, memscope_user_stack_id()) walks user stacks with DWARF call-frame
// information that this class compiles (symbols/cfi_table) and loads into BPF maps: one table per
// object (keyed by the file's identity, shared by every process that maps it) and one mapping table
// per process, loaded for the target process at start and, for every other process, dlopen and
// exec, when the BPF side asks (the `unwind_requests` ring buffer, served by a thread of its own).
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "output/stack.hpp"
#include "runtime/bpf_skeleton.hpp"
#include "runtime/kernel_features.hpp"
#include "runtime/options.hpp"
#include "runtime/stack_map.hpp"

struct bpf_object;
struct bpf_link;
struct ring_buffer;

namespace memscope {

struct UserStackCounters {
  uint64_t stacks = 0;                // walked with CFI
  uint64_t truncated = 0;             // stopped at the depth limit
  uint64_t frame_pointer_frames = 0;  // frames crossed with the frame pointer (no CFI there)
  uint64_t unknown_process = 0;       // stacks taken with frame pointers before the process was loaded
  uint64_t requests_lost = 0;
};

class UserStacks {
 public:
  // Before load: writes --stack-mode into the unwinder's .rodata and, in frame-pointer mode (or for
  // objects without the unwinder), switches its programs off. Objects that do not include
  // bpf/memscope_unwind.bpf.h are left alone and read_into() reads the stack trace map only.
  UserStacks(bpf_object* object, const CommonOptions& options);
  ~UserStacks();
  UserStacks(const UserStacks&) = delete;
  UserStacks& operator=(const UserStacks&) = delete;

  // Before load, for a command memscope ptraces (-c): when its dynamic loader maps libraries, the
  // thread stops until their tables are loaded; the tracer passes each SIGSTOP to take_stop().
  void stop_while_loading(pid_t pid);
  // True (and the tables are loaded) when the SIGSTOP `tid` reported was the unwinder's; the tracer
  // then resumes the thread without the signal.
  bool take_stop(pid_t tid);

  // Before start(): a process whose tables load before tracing starts, so that its first stacks
  // are complete (the -p/-t target is added by the constructor; memleak adds its -c command).
  void preload(pid_t pid);
  // After load, before the tool's programs are attached: loads the preloaded processes, watches
  // their dynamic loader, attaches the exec/exit bookkeeping and starts serving the BPF side's
  // requests. Nothing in frame-pointer mode.
  void start();
  // The service's links so far (exec/exit bookkeeping, the loaders' uprobes), for the tool to
  // release together with its own, while the service still answers a loader's stop.
  BpfObjectLinks& links();
  // Loads (again) the mappings of one process, e.g. after a -c target's exec.
  void load_process(pid_t pid);

  bool cfi_enabled() const { return cfi_enabled_; }

  // Sizes a tool's frame-pointer stack map that holds user stacks only (before load). With CFI it
  // keeps just the stacks taken before a process's tables were loaded (the walked ones live in
  // unwound_stacks): 1,024 entries at most. The full size, preallocated at 1016 bytes an entry,
  // took ~3 ms of every start-up (16,384 entries) for a map that stays nearly empty.
  void fit_user_only_stack_map(bpf_map* stacks) const {
    if (cfi_enabled_) bpf_map__set_max_entries(stacks, std::min<uint32_t>(bpf_map__max_entries(stacks), 1024));
  }

  // Fills stack.user (and its frame-pointer and truncation marks) from an id that
  // memscope_user_stack_id() or bpf_get_stackid() returned; `stack_map_fd` is the tool's stack
  // trace map. Negative ids leave it empty.
  void read_into(output::Stack& stack, int stack_map_fd, int32_t stack_id) const;
  std::vector<uint64_t> read(int stack_map_fd, int32_t stack_id) const;
  // Forgets stored stacks no longer referenced (per-interval tools clear their counts).
  void forget(int stack_map_fd, int32_t stack_id) const;
  // The maps user stacks are stored in: the tool's stack trace map and, in CFI mode, the
  // unwinder's (ids with MEMSCOPE_UNWOUND_STACK_ID), for prune_stack_maps() (runtime/stack_map.hpp),
  // which deletes every stored stack whose id no outstanding record uses.
  std::vector<StoredStackMap> stored_stack_maps(int stack_map_fd) const;

  UserStackCounters counters() const;
  // "unwind tables: 12 objects, 183,402 rows, 2.8 MiB; 3 processes" for -v and doctor.
  std::string table_summary() const;

 private:
  struct LoadedObject;
  struct Impl;
  void serve_requests();
  bool cfi_enabled_ = false;
  std::vector<pid_t> preloaded_;
  std::unique_ptr<Impl> impl_;
};

// Whether this kernel runs the DWARF unwinder (bpf_loop, bpf_task_pt_regs, read from its BTF);
// the reason names what is missing. Without it --stack-mode dwarf falls back to frame pointers.
Support cfi_unwinding_support();

}  // namespace memscope
