// The allocator functions memleak probes in user mode, which BPF program handles each one's entry
// and return, and attaching them (one uprobe link per function entry and one per return: libbpf
// 1.1 has no uprobe_multi).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "allocator_libraries.hpp"
#include "runtime/bpf_skeleton.hpp"
#include "runtime/hook.hpp"

namespace memscope::memleak {

// True when the kernel has uprobe_multi links. Then, before load, every uprobe program of the
// object is marked for them (expected attach type BPF_TRACE_UPROBE_MULTI); such programs attach
// only through uprobe_multi links.
bool prepare_uprobe_multi(bpf_object* object);

enum class AllocatorFamily { Malloc, Mapping, Cxx };

struct AllocatorFunction {
  const char* symbol;  // raw (mangled) name, before --symbols-prefix
  AllocatorFamily family;
  const char* entry_program;   // BPF program on entry
  const char* return_program;  // BPF program on return; nullptr for frees
};

const std::vector<AllocatorFunction>& allocator_functions();

struct AttachedFunction {
  std::string object;  // file the uprobe is on
  std::string symbol;
};

// The BPF programs of allocator_functions(), each once: their targets are found at attach.
std::vector<HookProgram> allocator_programs();

// Attaches every function of the plan that its object defines (an object may lack some, e.g. an
// older libc without reallocarray), bound to `pid`, keeping the links in `links`.
// Each uprobe unregistration waits for RCU grace periods (about 0.1 s on 6.x kernels, serialized),
// so ~50 perf-event uprobes kept memscope alive for five seconds after the traced program ended.
// Kernels with uprobe_multi links (6.6+) detach all the offsets of one link with a single wait:
// when prepare_uprobe_multi() chose them, there is one such link per program and object (created
// with the bpf syscall directly: libbpf 1.1 predates them), else one perf-event link per function
// entry and return.
// Aliases (two names at one address, like memalign and aligned_alloc in some glibc versions) are
// probed once. Throws FatalError when the allocator object has no malloc or an attach fails.
std::vector<AttachedFunction> attach_allocator_probes(bpf_object* object, BpfObjectLinks& links,
                                                      const AllocatorPlan& plan, pid_t pid,
                                                      bool uprobe_multi);

}  // namespace memscope::memleak
