// Leak proof: decides whether an outstanding allocation is a real leak (nothing in the process
// refers to it any more) or long-lived memory that is still referenced, by stopping the process
// and scanning its memory conservatively, the way LeakSanitizer and valgrind's memcheck do.
//
// Semantics (docs/memleak-scan.md, "Leak proof"):
// - Roots: the general-purpose registers of every thread; each thread's stack from its
//   stack pointer (minus the 128-byte x86-64 red zone) to the end of the mapping holding it; the
//   TLS/TCB area at each thread's thread pointer; the writable data and .bss of every loaded
//   object; writable anonymous mappings that hold no tracked block (the application's own mmap'd
//   memory, the dynamic loader's early allocations); and, with roots_include_untracked_heap, every
//   writable anonymous byte (the [heap] included) outside the tracked blocks.
// - A reference is an 8-byte-aligned word whose value lies anywhere in [address, address + size)
//   of a tracked block: interior pointers count (valgrind's "possibly lost" is reported here as
//   Reachable). Unaligned words are not considered, as in LeakSanitizer and valgrind.
// - Tracked blocks are never roots themselves: their contents are scanned only once they are
//   reached, so a cycle or a chain that no root reaches is Leaked as a whole.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "runtime/result.hpp"

namespace memscope::memleak {

struct TrackedBlock {
  uint64_t address;
  uint64_t size;
};

enum class BlockVerdict : uint8_t { Leaked, Reachable };

struct ScanReport {
  std::vector<BlockVerdict> verdicts;  // parallel to the input blocks
  double pause_ms = 0;                 // first interrupt to last detach (scan_process); scan time otherwise
  uint64_t bytes_scanned = 0;          // root memory plus the contents of every reached block
  size_t threads = 0;                  // threads whose registers and stacks were roots
};

struct ScanOptions {
  // Attached late (-p): allocations made before tracing began are not tracked blocks, yet they may
  // hold the only reference to a tracked one. Scan every writable anonymous mapping and the [heap]
  // outside the tracked blocks as roots. This also scans free chunks, whose stale contents can make
  // a leaked block look reachable: a verdict errs towards Reachable, never towards Leaked.
  // Under -c (traced from the first instruction) every allocation is tracked; leave it off.
  bool roots_include_untracked_heap = false;
  // Writable anonymous mappings that contain no tracked block are memory the traced allocator does
  // not manage (mmap'd pools, ld.so's early allocations, glibc's cached thread stacks): roots.
  bool roots_include_foreign_anonymous = true;
  // Bounds on one scan. Past either, the scan stops, the process is resumed and the scan fails with
  // one line saying which bound it hit (no verdicts: a partial scan would call reachable blocks
  // leaked). 0: no bound.
  uint64_t max_bytes = 0;                      // bytes read from the process
  std::chrono::milliseconds max_pause{0};      // from the first interrupt
  // How long all threads together may take to stop (a thread in uninterruptible sleep stops only
  // when it leaves it): past it the scan fails and every thread is resumed.
  std::chrono::milliseconds max_stop_wait{2000};
};

// Reads the outstanding blocks while the process is stopped: nothing can allocate or free then, so
// a block freed (and its address reused) while the list is read cannot be reported leaked.
using BlockReader = std::function<std::vector<TrackedBlock>()>;

// Stops every thread of pid (PTRACE_SEIZE + PTRACE_INTERRUPT, re-listing /proc/PID/task until no
// new thread appears), scans, and detaches; the target is never left stopped, on any path.
// Errors: "PID N is already traced by PID M" when another tracer (gdb, strace) holds it.
// Call it from the thread that will make every ptrace call (ptrace ties a tracee to one thread).
Result<ScanReport> scan_process(pid_t pid, const std::vector<TrackedBlock>& blocks,
                                const ScanOptions& options = {});
// The same, with the blocks read by read_blocks() once every thread is stopped (the order a scan
// of a running process needs: stop, read the outstanding blocks, scan, resume).
Result<ScanReport> scan_process_reading_blocks(pid_t pid, const BlockReader& read_blocks,
                                               const ScanOptions& options = {});

// For a process this process already holds in ptrace-stop (the -c child stopped at
// PTRACE_EVENT_EXIT, after its atexit handlers ran): reads registers and memory of stopped_tids and
// stays attached; nothing is stopped or resumed here.
Result<ScanReport> scan_stopped_process(pid_t pid, const std::vector<pid_t>& stopped_tids,
                                        const std::vector<TrackedBlock>& blocks,
                                        const ScanOptions& options = {});

}  // namespace memscope::memleak
