// The allocator functions memleak probes in user mode, which BPF program handles each one's entry
// and return, and attaching them (one uprobe link per function entry and one per return: libbpf
// 1.1 has no uprobe_multi).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "allocator_libraries.hpp"

struct bpf_object;

namespace memscope {
class BpfObjectLinks;
}

namespace memscope::memleak {

enum class AllocatorFamily { Malloc, Mapping, Cxx };

struct AllocatorFunction {
  const char* symbol;          // raw (mangled) name, before --symbols-prefix
  AllocatorFamily family;
  const char* entry_program;   // BPF program on entry
  const char* return_program;  // BPF program on return; nullptr for frees
};

const std::vector<AllocatorFunction>& allocator_functions();

struct AttachedFunction {
  std::string object;  // file the uprobe is on
  std::string symbol;
};

// Attaches every function of the plan that its object defines (an object may lack some, e.g. an
// older libc without reallocarray), bound to `pid`. Aliases (two names at one address, like
// memalign and aligned_alloc in some glibc versions) are probed once. Throws FatalError when the
// allocator object has no malloc or an attach fails.
std::vector<AttachedFunction> attach_allocator_probes(bpf_object* object, BpfObjectLinks& links,
                                                      const AllocatorPlan& plan, pid_t pid);

}  // namespace memscope::memleak
