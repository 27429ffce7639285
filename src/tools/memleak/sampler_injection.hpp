// memleak -p --sample-bytes: loads the sampler library into a running process and points the
// process's allocator calls at it; at the end puts them back (docs/sampled-heap.md, "-p").
//
// One thread of the process is seized with ptrace at a moment it holds no allocator or loader lock,
// made to call dlopen(library) and then the library's memscope_sampler_inject(), which redirects the
// GOT entries of the allocator functions in every loaded object (src/sampler/got_redirect.c); the
// thread's registers are put back and it goes on. The other threads never stop.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "symbols/target_files.hpp"

namespace memscope::memleak {

class SamplerInjection {
 public:
  // Throws FatalError with one line (naming what still works) when the process cannot take the
  // library safely: gone, traced by someone else, under a seccomp filter, static, with its own malloc
  // in the executable, or sampled by another memscope. A process in another mount namespace (a
  // container, where the library's path need not exist) gets the library as a sealed memory file.
  static SamplerInjection inject(pid_t pid, const std::string& library, uint64_t sample_bytes, uint64_t set_slots);

  SamplerInjection(SamplerInjection&& other) noexcept;
  SamplerInjection& operator=(SamplerInjection&&) = delete;
  SamplerInjection(const SamplerInjection&) = delete;
  ~SamplerInjection();

  // GOT entries redirected at injection.
  long redirected() const { return redirected_; }
  // The file the ddheap probes attach to: the library, or memscope's descriptor of the memory file a
  // process in another mount namespace loaded it from (as /proc/self/fd/N).
  std::string probe_path() const;
  // Puts the GOT entries back (sampling stopped already when the probes were detached). Never throws:
  // a process that is gone needs nothing; a failure is printed as a warning. Idempotent.
  void eject();

 private:
  SamplerInjection(pid_t pid, std::string library) : pid_(pid), library_(std::move(library)) {}
  pid_t pid_ = 0;
  std::string library_;
  symbols::FileDescriptor memory_file_;
  uint64_t eject_function_ = 0;
  long redirected_ = 0;
};

}  // namespace memscope::memleak
