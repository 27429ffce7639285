// Which objects hold the allocator functions memleak probes in a user process: the allocator
// (libc, or jemalloc/tcmalloc/mimalloc when the process maps one, or the executable itself when it
// is static), libc for mmap/munmap/mremap, and the C++ runtime for operator new/delete.
#pragma once

#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <algorithm>
#include <filesystem>
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
inline std::vector<LoadedObject> parse_loader_list(std::string_view output) {
  std::vector<LoadedObject> objects;
  size_t start = 0;
  while (start < output.size()) {
    size_t end = output.find('\n', start);
    if (end == std::string_view::npos) end = output.size();
    std::string_view line = output.substr(start, end - start);
    start = end + 1;
    size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos) continue;
    line.remove_prefix(first);
    auto strip_address = [](std::string_view text) {
      size_t paren = text.rfind(" (0x");
      if (paren != std::string_view::npos) text = text.substr(0, paren);
      while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
      return text;
    };
    size_t arrow = line.find(" => ");
    if (arrow != std::string_view::npos) {
      std::string_view path = strip_address(line.substr(arrow + 4));
      if (path.empty() || path.front() != '/') continue;  // "not found"
      objects.push_back({std::string(line.substr(0, arrow)), std::string(path)});
      continue;
    }
    std::string_view path = strip_address(line);
    if (path.empty() || path.front() != '/') continue;  // linux-vdso.so.1
    size_t slash = path.rfind('/');
    objects.push_back({std::string(path.substr(slash + 1)), std::string(path)});
  }
  return objects;
}

enum class ObjectRole { Other, Libc, ReplacementAllocator, CxxRuntime };

// What an object is, from its file name: "libc.so.6" (or glibc 2.33-'s "libc-2.31.so") is libc;
// jemalloc, tcmalloc (also _minimal) and mimalloc replace malloc; libstdc++ and libc++ hold
// operator new/delete.
inline ObjectRole object_role(std::string_view path) {
  size_t slash = path.rfind('/');
  std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  auto starts = [&](std::string_view prefix) { return name.substr(0, prefix.size()) == prefix; };
  if (starts("libc.so") || (starts("libc-") && name.find(".so") != std::string_view::npos))
    return ObjectRole::Libc;
  if (starts("libjemalloc") || starts("libtcmalloc") || starts("libmimalloc"))
    return ObjectRole::ReplacementAllocator;
  if (starts("libstdc++.so") || starts("libc++.so")) return ObjectRole::CxxRuntime;
  return ObjectRole::Other;
}

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

namespace detail {

// Where libraries live when neither the process nor the loader names them (-O NAME of a library
// not yet mapped, libstdc++ that a program will dlopen).
inline const char* const kLibraryDirectories[] = {
    "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
    "/usr/local/lib",
};

inline bool is_regular_file(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

inline std::string basename_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// "c" names libc.so.6, "jemalloc" libjemalloc.so.2, "libtcmalloc.so.4" itself.
inline bool library_name_matches(const std::string& file_name, const std::string& wanted) {
  if (file_name == wanted) return true;
  auto starts = [&](const std::string& prefix) { return file_name.compare(0, prefix.size(), prefix) == 0; };
  if (starts(wanted + ".so") || starts(wanted + "-")) return true;
  if (wanted.compare(0, 3, "lib") != 0 && (starts("lib" + wanted + ".so") || starts("lib" + wanted + "-")))
    return true;
  return false;
}

inline std::optional<std::string> find_library_on_disk(const std::string& root, const std::string& wanted) {
  namespace fs = std::filesystem;
  for (const char* directory : kLibraryDirectories) {
    std::error_code error;
    fs::path dir = root + directory;
    if (!fs::is_directory(dir, error)) continue;
    std::vector<std::string> matches;
    for (const auto& entry : fs::directory_iterator(dir, error)) {
      std::string name = entry.path().filename().string();
      if (library_name_matches(name, wanted) && name.find(".so") != std::string::npos &&
          is_regular_file(entry.path().string()))
        matches.push_back(entry.path().string());
    }
    if (!matches.empty()) {
      // Prefer the runtime name (libfoo.so.2) over the development link (libfoo.so).
      std::sort(matches.begin(), matches.end(),
                [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
      for (const auto& match : matches)
        if (match.find(".so.") != std::string::npos) return match;
      return matches.front();
    }
  }
  return std::nullopt;
}

inline std::string attachable(const std::string& root, const std::string& path) {
  if (root.empty()) return path;
  std::string inside = root + path;
  return is_regular_file(inside) ? inside : path;
}

}  // namespace detail

// Chooses from the objects a process maps (or will map). `mapped` holds paths as the process sees
// them; `root` is prepended to every chosen path ("" or "/proc/PID/root"). Throws FatalError when
// -O names nothing usable.
inline AllocatorPlan plan_allocator(const std::vector<std::string>& mapped, const std::string& executable,
                                    const AllocatorRequest& request, const std::string& root) {
  AllocatorPlan plan;
  plan.symbol_prefix = request.symbol_prefix;
  std::optional<std::string> libc, replacement;
  std::vector<std::string> cxx;
  for (const auto& path : mapped) {
    switch (object_role(path)) {
      case ObjectRole::Libc:
        if (!libc) libc = path;
        break;
      case ObjectRole::ReplacementAllocator:
        if (!replacement) replacement = path;
        break;
      case ObjectRole::CxxRuntime:
        if (std::find(cxx.begin(), cxx.end(), path) == cxx.end()) cxx.push_back(path);
        break;
      case ObjectRole::Other:
        break;
    }
  }
  plan.static_executable = !libc;

  if (!request.object.empty()) {
    if (request.object.find('/') != std::string::npos) {
      plan.malloc_object = detail::attachable(root, request.object);
      if (!detail::is_regular_file(plan.malloc_object))
        throw FatalError(fmt::format("-O {}: no such file", request.object));
    } else {
      for (const auto& path : mapped)
        if (detail::library_name_matches(detail::basename_of(path), request.object)) {
          plan.malloc_object = detail::attachable(root, path);
          break;
        }
      if (plan.malloc_object.empty()) {
        auto found = detail::find_library_on_disk(root, request.object);
        if (!found)
          throw FatalError(
              fmt::format("-O {}: the process maps no such library and none is installed in the "
                          "usual library directories",
                          request.object));
        plan.malloc_object = *found;
      }
    }
  } else if (replacement) {
    plan.malloc_object = detail::attachable(root, *replacement);
  } else if (libc) {
    plan.malloc_object = detail::attachable(root, *libc);
  } else {
    plan.malloc_object = executable;
  }

  plan.mapping_object = libc ? detail::attachable(root, *libc) : executable;
  for (const auto& path : cxx) plan.cxx_objects.push_back(detail::attachable(root, path));
  // tcmalloc and mimalloc define operator new/delete themselves.
  if (object_role(plan.malloc_object) == ObjectRole::ReplacementAllocator || !request.object.empty())
    plan.cxx_objects.push_back(plan.malloc_object);
  if (plan.static_executable) {
    plan.cxx_objects.push_back(executable);
  } else if (cxx.empty()) {
    // A C program may still dlopen a C++ library later; the uprobes are bound to this process, so
    // probing the system's libstdc++ costs nothing until it is mapped.
    if (auto found = detail::find_library_on_disk(root, "libstdc++.so.6")) plan.cxx_objects.push_back(*found);
  }
  std::sort(plan.cxx_objects.begin(), plan.cxx_objects.end());
  plan.cxx_objects.erase(std::unique(plan.cxx_objects.begin(), plan.cxx_objects.end()),
                         plan.cxx_objects.end());
  return plan;
}

// For -p: the objects /proc/PID/maps lists, executable first.
AllocatorPlan plan_allocator_for_process(pid_t pid, const AllocatorRequest& request);

// For -c, before the command runs: the executable's interpreter (PT_INTERP) in list mode tells
// which objects it will map; a static executable (no PT_INTERP) is its own allocator.
AllocatorPlan plan_allocator_for_command(const std::string& executable, const AllocatorRequest& request);

// The executable a command word names: a path as is, otherwise the first executable match in
// $PATH (like execvp). Throws FatalError when there is none.
std::string find_executable(const std::string& word);

}  // namespace memscope::memleak
