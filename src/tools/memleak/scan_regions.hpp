// Which memory of a stopped process is a root of the leak proof, decided from /proc/PID/maps and
// each thread's stack and thread pointers. Pure, so that the unit tier tests the policy on
// fixtures; docs/memleak-scan.md ("Leak proof") explains each rule.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tools/memleak/heap_scanner.hpp"
#include "tools/memleak/scan_marking.hpp"

namespace memscope::memleak::scan {

// One line of /proc/PID/maps. (symbols::MapsEntry has no private/shared flag, which decides here
// whether a mapping is anonymous shared memory.)
struct Mapping {
  uint64_t start = 0;
  uint64_t end = 0;
  bool readable = false;
  bool writable = false;
  bool shared = false;
  uint64_t inode = 0;
  std::string path;  // without " (deleted)"
  bool deleted = false;

  bool file_backed() const {
    return inode != 0 && !path.empty() && path.front() == '/' && !shared_anonymous();
  }
  // MAP_SHARED|MAP_ANONYMOUS shows as "/dev/zero (deleted)", System V shared memory as "/SYSV…".
  bool shared_anonymous() const {
    return shared && ((path == "/dev/zero" && deleted) || path.starts_with("/SYSV"));
  }
  // Unnamed, or named with prctl(PR_SET_VMA_ANON_NAME) ("[anon:name]").
  bool anonymous() const { return path.empty() || path.starts_with("[anon:") || shared_anonymous(); }
  // The brk heap, and glibc's arenas when glibc.mem.decorate_maps names them.
  bool malloc_heap() const { return path == "[heap]" || path.starts_with("[anon: glibc: malloc"); }
  bool contains(uint64_t address) const { return address >= start && address < end; }
};

std::vector<Mapping> parse_maps(std::string_view text);

struct ThreadPointers {
  pid_t tid = 0;
  uint64_t stack_pointer = 0;
  uint64_t thread_pointer = 0;  // x86-64 fs_base, aarch64 TPIDR_EL0; 0 when unknown
};

enum class RootKind { Stack, ThreadLocal, Data, Bss, ForeignAnonymous, UntrackedHeap };

struct RootRegion {
  MemoryRange range;
  RootKind kind;
  // A thread's stack inside a tracked block (pthread stacks are mmap'd, and memleak tracks mmap): the
  // block is reachable (the thread runs on it) but only its live part, from the stack pointer up, is
  // scanned: the block's slot, else npos.
  size_t stack_block = BlockIndex::npos;
};

const char* root_kind_name(RootKind kind);

// x86-64 leaf functions may keep live values up to 128 bytes below the stack pointer.
constexpr uint64_t kRedZone = 128;
// When the thread pointer lies in heap memory (a static binary's main thread: glibc sbrk()s its
// TLS), scan only this window around it: static TLS sits below the thread pointer (variant II), the
// TCB above it.
constexpr uint64_t kStaticTlsWindowBelow = 64 * 1024;
constexpr uint64_t kTcbWindowAbove = 4096;
// A stack found inside heap memory (pthread_attr_setstack on untracked memory) is scanned this far up.
constexpr uint64_t kHeapStackLimit = 8ULL << 20;

// The root regions, by rule, before merging and before tracked blocks are taken out.
std::vector<RootRegion> classify_roots(const std::vector<Mapping>& mappings,
                                       const std::vector<ThreadPointers>& threads, const BlockIndex& blocks,
                                       const ScanOptions& options);

// Sorted, overlaps merged, tracked blocks taken out. Stacks inside tracked blocks are left to the
// caller (they are roots although they lie in a block).
std::vector<MemoryRange> root_ranges(const std::vector<RootRegion>& regions, const BlockIndex& blocks);

}  // namespace memscope::memleak::scan
