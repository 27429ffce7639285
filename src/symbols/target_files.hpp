// Opening files on behalf of a traced process. memscope runs as root and reads files that other users
// control: the objects a process maps, the debug files their .gnu_debuglink and build-id name, the
// USDT notes of a binary. Every such file is opened here, and only as a regular file of bounded size:
// - paths resolve inside the process's root (/proc/PID/root) with openat2(RESOLVE_IN_ROOT |
//   RESOLVE_NO_MAGICLINKS), so an absolute symlink in a container stays in the container and no
//   /proc magic link leads elsewhere;
// - the final component is not followed when it is a symlink (unless the caller says otherwise);
// - the file is first opened O_PATH, which runs no driver and blocks on no FIFO, then checked with
//   fstat (regular, size within the limit) and only then opened for reading, O_NONBLOCK | O_NOCTTY;
// - its bytes are read with pread into memory memscope owns: a file truncated by its owner later
//   cannot take memscope down with SIGBUS, as a mapping of it would.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "runtime/result.hpp"

namespace memscope::symbols {

// Owns one descriptor.
class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(other.release()) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept;
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor();

  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// The largest file memscope reads on a process's behalf (an object or its debug file). Larger files
// are refused: they would be copied into memscope's memory whole.
inline constexpr uint64_t kMaxTargetFileBytes = 1ull << 30;

struct OpenedFile {
  FileDescriptor fd;   // open for reading
  struct stat status;  // of that very descriptor: a regular file no larger than the limit
};

struct TargetFileRules {
  uint64_t max_bytes = kMaxTargetFileBytes;
  // Build-id links (/usr/lib/debug/.build-id/ab/cdef.debug) are symlinks by design on some
  // distributions; everything else a process names (a mapped path, a debug link) is taken literally.
  bool follow_final_symlink = false;
};

// A directory that paths are resolved in: a process's root, the host's, or any directory (tests).
// Copies share the descriptor.
class FileRoot {
 public:
  // The host's "/": for files memscope is asked for by path (--lib, -c) and host debug directories.
  static FileRoot host();
  static Result<FileRoot> of_process(pid_t pid);
  static Result<FileRoot> directory(const std::string& path);

  // `path` is taken as inside the root whether it is absolute or not; in the host's root a relative
  // path is relative to the working directory.
  Result<OpenedFile> open(std::string_view path, const TargetFileRules& rules = {}) const;
  // The status of what `path` names (not following a final symlink), resolved the same way; nothing
  // is opened for reading.
  Result<struct stat> status(std::string_view path) const;
  // For messages: "/proc/42/root", "/" or the directory given.
  const std::string& name() const { return name_; }
  bool is_host() const { return host_; }

 private:
  Result<FileDescriptor> resolve(std::string_view path, bool follow_final_symlink) const;
  FileRoot(std::shared_ptr<FileDescriptor> fd, std::string name, bool host)
      : fd_(std::move(fd)), name_(std::move(name)), host_(host) {}
  std::shared_ptr<FileDescriptor> fd_;
  std::string name_;
  bool host_ = false;
};

// The file a process has mapped at [start, end), through /proc/PID/map_files (the very file, even when
// deleted, replaced or in another mount namespace; needs CAP_SYS_ADMIN), with the same checks.
Result<OpenedFile> open_mapped_file(pid_t pid, uint64_t start, uint64_t end,
                                    const TargetFileRules& rules = {});

// Opens a path as memscope itself sees it (host root), with the same checks.
Result<OpenedFile> open_host_file(const std::string& path, const TargetFileRules& rules = {});
// For paths the tools carry as text: "/proc/PID/root/rest" is `rest` in that process's root, anything
// else a path in the host's.
struct TargetPath {
  FileRoot root;
  std::string path;
};
Result<TargetPath> split_target_path(const std::string& path);
Result<OpenedFile> open_target_path(const std::string& path, const TargetFileRules& rules = {});

// The whole file as bytes, read with pread; an error when it is larger than `max_bytes` or shrinks
// while it is read.
Result<std::string> read_file_bytes(const OpenedFile& file, uint64_t max_bytes = kMaxTargetFileBytes);

// A .gnu_debuglink name that may be looked up: a plain file name, not "." or "..", no '/'. A debug link
// is written by whoever built the object and must not lead out of the directories searched.
bool is_plain_file_name(std::string_view name);

}  // namespace memscope::symbols
