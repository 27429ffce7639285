// Which objects hold the allocator functions memleak probes in a user process: the allocator
// (libc, or jemalloc/tcmalloc/mimalloc when the process maps one, or the executable itself when it
// is static), libc for mmap/munmap/mremap, and the C++ runtime for operator new/delete.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/result.hpp"

namespace memscope::memleak {

// An object the dynamic loader would map, from `ld.so --list` output.
struct LoadedObject {
  std::string soname;  // "libc.so.6"; the path's basename for objects given by path (LD_PRELOAD)
  std::string path;    // "/lib/x86_64-linux-gnu/libc.so.6"
};

// Parses the dynamic loader's list mode output:
//   "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f…)"
//   "\t/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 (0x…)"   (preloaded, or the loader itself)
//   "\tlinux-vdso.so.1 (0x…)" and "\tlibfoo.so => not found" are skipped (no file to probe).
std::vector<LoadedObject> parse_loader_list(std::string_view output);

enum class ObjectRole { Other, Libc, ReplacementAllocator, CxxRuntime };

// What an object is, from its file name: "libc.so.6" (or glibc 2.33-'s "libc-2.31.so") is libc;
// jemalloc, tcmalloc (also _minimal) and mimalloc replace malloc; libstdc++ and libc++ hold
// operator new/delete.
ObjectRole object_role(std::string_view path);

// Where each family of functions is probed. Paths are as memscope opens them (for -p, through
// /proc/PID/root so that processes in containers work).
struct AllocatorPlan {
  std::string malloc_object;             // malloc, calloc, …, free
  std::string mapping_object;            // mmap, munmap, mremap
  std::vector<std::string> cxx_objects;  // operator new/delete
  std::string symbol_prefix;             // --symbols-prefix, for the malloc family (je_malloc)
  bool static_executable = false;
};

struct AllocatorRequest {
  std::string object;         // -O: a path, or a library name ("c", "jemalloc", "libtcmalloc.so.4")
  std::string symbol_prefix;  // --symbols-prefix
};

// Chooses from the objects a process maps (or will map). `mapped` holds paths as the process sees
// them; `root` is prepended to every chosen path ("" or "/proc/PID/root"). Throws FatalError when
// -O names nothing usable.
AllocatorPlan plan_allocator(const std::vector<std::string>& mapped, const std::string& executable,
                             const AllocatorRequest& request, const std::string& root);

// For -p: the objects /proc/PID/maps lists, executable first.
AllocatorPlan plan_allocator_for_process(pid_t pid, const AllocatorRequest& request);

// For -c, before the command runs: the executable's interpreter (PT_INTERP) in list mode tells
// which objects it will map; a static executable (no PT_INTERP) is its own allocator.
AllocatorPlan plan_allocator_for_command(const std::string& executable, const AllocatorRequest& request);

// The executable a command word names: a path as is, otherwise the first executable match in
// $PATH (like execvp). Throws FatalError when there is none.
std::string find_executable(const std::string& word);

}  // namespace memscope::memleak
