#include "allocator_libraries.hpp"

#include <elf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>

#include "runtime/log.hpp"
#include "runtime/result.hpp"
#include "symbols/process_maps.hpp"

namespace memscope::memleak {
namespace {

// PT_INTERP of an ELF executable; nullopt for a static executable. Throws for non-ELF files.
std::optional<std::string> elf_interpreter(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw FatalError(fmt::format("cannot open {}: {}", path, strerror(errno)));
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
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

}  // namespace

AllocatorPlan plan_allocator_for_process(pid_t pid, const AllocatorRequest& request) {
  auto maps = symbols::read_proc_maps(pid);
  if (!maps) throw FatalError(fmt::format("cannot read /proc/{}/maps", pid));
  std::vector<std::string> mapped;
  for (const auto& entry : *maps)
    if (entry.file_backed() && std::find(mapped.begin(), mapped.end(), entry.path) == mapped.end())
      mapped.push_back(entry.path);
  return plan_allocator(mapped, fmt::format("/proc/{}/exe", pid), request, fmt::format("/proc/{}/root", pid));
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
    if (detail::is_regular_file(candidate) && access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  throw FatalError(fmt::format("-c: {}: command not found in PATH", word));
}

}  // namespace memscope::memleak
