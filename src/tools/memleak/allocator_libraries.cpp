#include "allocator_libraries.hpp"

#include <elf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>

#include "runtime/log.hpp"
#include "runtime/result.hpp"
#include "symbols/process_maps.hpp"
#include "symbols/target_files.hpp"

namespace memscope::memleak {
namespace {

// PT_INTERP of an ELF executable; nullopt for a static executable. Throws for non-ELF files.
std::optional<std::string> elf_interpreter(const std::string& path) {
  // A regular file only: -c names may be anyone's, and a FIFO would hang the open.
  auto opened = symbols::open_host_file(path, {.follow_final_symlink = true});
  if (!opened) throw FatalError(fmt::format("cannot open {}", opened.error().message));
  int fd = opened->fd.get();
  Elf64_Ehdr header;
  if (pread(fd, &header, sizeof(header), 0) != sizeof(header) || memcmp(header.e_ident, ELFMAG, SELFMAG) != 0)
    throw FatalError(
        fmt::format("{} is not an ELF executable (scripts cannot be traced from their start: run "
                    "the interpreter, e.g. -c \"python3 script.py\")",
                    path));
  if (header.e_ident[EI_CLASS] != ELFCLASS64)
    throw FatalError(fmt::format("{} is not a 64-bit executable", path));
  for (unsigned i = 0; i < header.e_phnum; i++) {
    Elf64_Phdr program;
    off_t offset = static_cast<off_t>(header.e_phoff + i * static_cast<uint64_t>(header.e_phentsize));
    if (pread(fd, &program, sizeof(program), offset) != sizeof(program)) break;
    if (program.p_type != PT_INTERP) continue;
    std::string interpreter(program.p_filesz, '\0');
    if (pread(fd, interpreter.data(), interpreter.size(), static_cast<off_t>(program.p_offset)) !=
        static_cast<ssize_t>(interpreter.size()))
      throw FatalError(fmt::format("cannot read the interpreter of {}", path));
    interpreter.resize(strnlen(interpreter.c_str(), interpreter.size()));
    return interpreter;
  }
  return std::nullopt;
}

// Runs `argv` without a shell and returns its stdout; throws when it fails.
std::string capture_output(const std::vector<std::string>& argv) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) throw FatalError(fmt::format("pipe: {}", strerror(errno)));
  pid_t child = fork();
  if (child < 0) throw FatalError(fmt::format("fork: {}", strerror(errno)));
  if (child == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    dup2(out[1], STDOUT_FILENO);
    dup2(out[1], STDERR_FILENO);
    std::vector<char*> args;
    for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  std::string output;
  char buffer[4096];
  for (;;) {
    ssize_t n = read(out[0], buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    output.append(buffer, static_cast<size_t>(n));
  }
  close(out[0]);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw FatalError(fmt::format("`{}` failed: {}", fmt::join(argv, " "), output));
  return output;
}

// Where libraries live when neither the process nor the loader names them (-O NAME of a library
// not yet mapped, libstdc++ that a program will dlopen).
const char* const kLibraryDirectories[] = {
    "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
    "/usr/local/lib",
};

bool is_regular_file(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string basename_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// "c" names libc.so.6, "jemalloc" libjemalloc.so.2, "libtcmalloc.so.4" itself.
bool library_name_matches(const std::string& file_name, const std::string& wanted) {
  if (file_name == wanted) return true;
  auto starts = [&](const std::string& prefix) { return file_name.compare(0, prefix.size(), prefix) == 0; };
  if (starts(wanted + ".so") || starts(wanted + "-")) return true;
  if (wanted.compare(0, 3, "lib") != 0 && (starts("lib" + wanted + ".so") || starts("lib" + wanted + "-")))
    return true;
  return false;
}

std::optional<std::string> find_library_on_disk(const std::string& root, const std::string& wanted) {
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

std::string attachable(const std::string& root, const std::string& path) {
  if (root.empty()) return path;
  std::string inside = root + path;
  return is_regular_file(inside) ? inside : path;
}

}  // namespace

AllocatorPlan plan_allocator_for_process(pid_t pid, const AllocatorRequest& request) {
  auto maps = symbols::read_proc_maps(pid);
  if (!maps) throw FatalError(fmt::format("cannot read /proc/{}/maps", pid));
  std::vector<std::string> mapped;
  for (const auto& entry : *maps)
    if (entry.file_backed() && std::find(mapped.begin(), mapped.end(), entry.path) == mapped.end())
      mapped.push_back(entry.path);
  std::string root = fmt::format("/proc/{}/root", pid);
  AllocatorPlan plan = plan_allocator(mapped, fmt::format("/proc/{}/exe", pid), request, root);
  // A library replaced on disk after the process mapped it (every long-running daemon after a libc
  // upgrade): its path now names another inode, and uprobes placed through the path would go to
  // that file, which the process never runs. The process's own file stays reachable through
  // /proc/PID/map_files/START-END: probe (and read symbols) there, and check it is the mapped inode.
  std::map<std::string, std::string> replaced;
  for (const auto& entry : *maps) {
    if (!entry.file_backed() || replaced.count(entry.path)) continue;
    struct stat on_disk{};
    std::string path_seen = attachable(root, entry.path);
    bool same = !entry.deleted && stat(path_seen.c_str(), &on_disk) == 0 && on_disk.st_ino == entry.inode &&
                major(on_disk.st_dev) == entry.device_major && minor(on_disk.st_dev) == entry.device_minor;
    if (same) continue;
    std::string through = fmt::format("/proc/{}/map_files/{:x}-{:x}", pid, entry.start, entry.end);
    struct stat mapped_file{};
    if (stat(through.c_str(), &mapped_file) != 0 || mapped_file.st_ino != entry.inode) {
      replaced[entry.path] = "";
      continue;
    }
    replaced[entry.path] = through;
  }
  auto substitute = [&](std::string& object) {
    for (const auto& [path, through] : replaced) {
      if (object != attachable(root, path)) continue;
      if (through.empty())
        throw FatalError(fmt::format("PID {} runs {} as it was before that file was replaced on disk, and "
                                     "/proc/{}/map_files cannot reach the old file: its allocator cannot be probed",
                                     pid, path, pid));
      log::verbose("{} was replaced on disk after PID {} mapped it: probing the mapped file through {}", path, pid,
                   through);
      object = through;
    }
  };
  substitute(plan.malloc_object);
  substitute(plan.mapping_object);
  for (std::string& object : plan.cxx_objects) substitute(object);
  return plan;
}

AllocatorPlan plan_allocator_for_command(const std::string& executable, const AllocatorRequest& request) {
  std::optional<std::string> interpreter = elf_interpreter(executable);
  std::vector<std::string> mapped;
  if (interpreter) {
    std::string listing = capture_output({*interpreter, "--list", executable});
    for (const auto& object : parse_loader_list(listing)) mapped.push_back(object.path);
    log::verbose("{} will map: {}", executable, fmt::join(mapped, ", "));
  }
  return plan_allocator(mapped, executable, request, "");
}

std::string find_executable(const std::string& word) {
  if (word.empty()) throw FatalError("-c: empty command");
  if (word.find('/') != std::string::npos) {
    if (access(word.c_str(), X_OK) != 0)
      throw FatalError(fmt::format("-c: cannot execute {}: {}", word, strerror(errno)));
    return word;
  }
  const char* path_variable = getenv("PATH");
  std::string search = path_variable ? path_variable : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  for (;;) {
    size_t colon = search.find(':', start);
    std::string directory =
        search.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    std::string candidate = (directory.empty() ? std::string(".") : directory) + "/" + word;
    if (is_regular_file(candidate) && access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  throw FatalError(fmt::format("-c: {}: command not found in PATH", word));
}

std::vector<LoadedObject> parse_loader_list(std::string_view output) {
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

ObjectRole object_role(std::string_view path) {
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

AllocatorPlan plan_allocator(const std::vector<std::string>& mapped, const std::string& executable,
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
      plan.malloc_object = attachable(root, request.object);
      if (!is_regular_file(plan.malloc_object))
        throw FatalError(fmt::format("-O {}: no such file", request.object));
    } else {
      for (const auto& path : mapped)
        if (library_name_matches(basename_of(path), request.object)) {
          plan.malloc_object = attachable(root, path);
          break;
        }
      if (plan.malloc_object.empty()) {
        auto found = find_library_on_disk(root, request.object);
        if (!found)
          throw FatalError(
              fmt::format("-O {}: the process maps no such library and none is installed in the "
                          "usual library directories",
                          request.object));
        plan.malloc_object = *found;
      }
    }
  } else if (replacement) {
    plan.malloc_object = attachable(root, *replacement);
  } else if (libc) {
    plan.malloc_object = attachable(root, *libc);
  } else {
    plan.malloc_object = executable;
  }

  plan.mapping_object = libc ? attachable(root, *libc) : executable;
  for (const auto& path : cxx) plan.cxx_objects.push_back(attachable(root, path));
  // tcmalloc and mimalloc define operator new/delete themselves.
  if (object_role(plan.malloc_object) == ObjectRole::ReplacementAllocator || !request.object.empty())
    plan.cxx_objects.push_back(plan.malloc_object);
  if (plan.static_executable) {
    plan.cxx_objects.push_back(executable);
  } else if (cxx.empty()) {
    // A C program may still dlopen a C++ library later; the uprobes are bound to this process, so
    // probing the system's libstdc++ costs nothing until it is mapped.
    if (auto found = find_library_on_disk(root, "libstdc++.so.6")) plan.cxx_objects.push_back(*found);
  }
  std::sort(plan.cxx_objects.begin(), plan.cxx_objects.end());
  plan.cxx_objects.erase(std::unique(plan.cxx_objects.begin(), plan.cxx_objects.end()),
                         plan.cxx_objects.end());
  return plan;
}

}  // namespace memscope::memleak
