#include "symbols/target_files.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace memscope::symbols {
namespace {

Error system_error(std::string_view what, int error) {
  return Error{fmt::format("{}: {}", what, strerror(error))};
}

// The descriptor of an O_PATH open, checked, reopened for reading. Reopening through /proc/self/fd
// reaches the same inode without resolving any name again, so nothing can be swapped in between.
Result<OpenedFile> reopen_regular(FileDescriptor path_fd, std::string_view what, const TargetFileRules& rules) {
  struct stat status {};
  if (fstat(path_fd.get(), &status) != 0) return system_error(what, errno);
  if (!S_ISREG(status.st_mode)) {
    const char* kind = S_ISLNK(status.st_mode)    ? "a symbolic link"
                       : S_ISFIFO(status.st_mode) ? "a FIFO"
                       : S_ISCHR(status.st_mode) || S_ISBLK(status.st_mode) ? "a device"
                       : S_ISSOCK(status.st_mode) ? "a socket"
                       : S_ISDIR(status.st_mode)  ? "a directory"
                                                  : "not a regular file";
    return Error{fmt::format("{}: {}, not read", what, kind)};
  }
  if (status.st_size < 0 || static_cast<uint64_t>(status.st_size) > rules.max_bytes)
    return Error{fmt::format("{}: {} bytes, more than the {} memscope reads", what, status.st_size, rules.max_bytes)};
  int fd = open(fmt::format("/proc/self/fd/{}", path_fd.get()).c_str(),
                O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return system_error(what, errno);
  OpenedFile opened{FileDescriptor(fd), {}};
  if (fstat(fd, &opened.status) != 0) return system_error(what, errno);
  if (opened.status.st_dev != status.st_dev || opened.status.st_ino != status.st_ino ||
      !S_ISREG(opened.status.st_mode))
    return Error{fmt::format("{}: changed while opened", what)};
  return opened;
}

long openat2_call(int directory, const char* path, open_how* how) {
  return syscall(SYS_openat2, directory, path, how, sizeof(*how));
}

}  // namespace

FileDescriptor& FileDescriptor::operator=(FileDescriptor&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = other.release();
  }
  return *this;
}

FileDescriptor::~FileDescriptor() {
  if (fd_ >= 0) close(fd_);
}

FileRoot FileRoot::host() {
  static const FileRoot root = [] {
    int fd = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    return FileRoot(std::make_shared<FileDescriptor>(fd), "/", true);
  }();
  return root;
}

Result<FileRoot> FileRoot::of_process(pid_t pid) {
  std::string name = fmt::format("/proc/{}/root", pid);
  int fd = ::open(name.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return system_error(name, errno);
  return FileRoot(std::make_shared<FileDescriptor>(fd), std::move(name), false);
}

Result<FileRoot> FileRoot::directory(const std::string& path) {
  int fd = ::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return system_error(path, errno);
  return FileRoot(std::make_shared<FileDescriptor>(fd), path, false);
}

Result<FileDescriptor> FileRoot::resolve(std::string_view path, bool follow_final_symlink) const {
  std::string what = host_ ? std::string(path) : fmt::format("{} (in {})", path, name_);
  if (path.empty() || path.find('\0') != std::string_view::npos) return Error{fmt::format("{}: not a path", what)};
  if (!fd_ || !*fd_) return Error{fmt::format("{}: no root directory", what)};
  std::string terminated(path);
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC | (follow_final_symlink ? 0 : O_NOFOLLOW);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  int directory = fd_->get();
  if (host_ && path.front() != '/') {
    // A relative path memscope was given (-c ./prog) is relative to the working directory; the host's
    // root needs no confining.
    directory = AT_FDCWD;
    how.resolve = RESOLVE_NO_MAGICLINKS;
  }
  long fd = -1;
  // EAGAIN: a rename raced with the resolution of ".." and the kernel could not vouch for the result.
  for (int attempt = 0; attempt < 8; attempt++) {
    fd = openat2_call(directory, terminated.c_str(), &how);
    if (fd >= 0 || errno != EAGAIN) break;
  }
  if (fd < 0) {
    if (errno == ENOSYS) return Error{fmt::format("{}: this kernel has no openat2 (Linux 5.6)", what)};
    return system_error(what, errno);
  }
  return FileDescriptor(static_cast<int>(fd));
}

Result<OpenedFile> FileRoot::open(std::string_view path, const TargetFileRules& rules) const {
  auto resolved = resolve(path, rules.follow_final_symlink);
  if (!resolved) return resolved.error();
  std::string what = host_ ? std::string(path) : fmt::format("{} (in {})", path, name_);
  return reopen_regular(std::move(*resolved), what, rules);
}

Result<struct stat> FileRoot::status(std::string_view path) const {
  auto resolved = resolve(path, false);
  if (!resolved) return resolved.error();
  struct stat status {};
  if (fstat(resolved->get(), &status) != 0) return system_error(path, errno);
  return status;
}

Result<OpenedFile> open_mapped_file(pid_t pid, uint64_t start, uint64_t end, const TargetFileRules& rules) {
  std::string path = fmt::format("/proc/{}/map_files/{:x}-{:x}", pid, start, end);
  // The magic link is the kernel's own pointer to the mapped file: following it is the point.
  int fd = ::open(path.c_str(), O_PATH | O_CLOEXEC);
  if (fd < 0) return system_error(path, errno);
  return reopen_regular(FileDescriptor(fd), path, rules);
}

Result<OpenedFile> open_host_file(const std::string& path, const TargetFileRules& rules) {
  return FileRoot::host().open(path, rules);
}

Result<TargetPath> split_target_path(const std::string& path) {
  static constexpr std::string_view kProc = "/proc/";
  static constexpr std::string_view kRoot = "/root/";
  std::string_view rest(path);
  if (rest.starts_with(kProc)) {
    rest.remove_prefix(kProc.size());
    size_t digits = 0;
    while (digits < rest.size() && digits < 9 && rest[digits] >= '0' && rest[digits] <= '9') digits++;
    if (digits > 0 && rest.substr(digits).starts_with(kRoot)) {
      auto pid = static_cast<pid_t>(std::stol(std::string(rest.substr(0, digits))));
      auto root = FileRoot::of_process(pid);
      if (!root) return root.error();
      return TargetPath{*root, std::string(rest.substr(digits + kRoot.size() - 1))};
    }
  }
  return TargetPath{FileRoot::host(), path};
}

Result<OpenedFile> open_target_path(const std::string& path, const TargetFileRules& rules) {
  auto target = split_target_path(path);
  if (!target) return target.error();
  return target->root.open(target->path, rules);
}

Result<std::string> read_file_bytes(const OpenedFile& file, uint64_t max_bytes) {
  auto size = static_cast<uint64_t>(file.status.st_size);
  if (size > max_bytes) return Error{fmt::format("{} bytes, more than the {} memscope reads", size, max_bytes)};
  std::string bytes(size, '\0');
  uint64_t done = 0;
  while (done < size) {
    ssize_t got = pread(file.fd.get(), bytes.data() + done, size - done, static_cast<off_t>(done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return system_error("read", errno);
    if (got == 0) return Error{"the file shrank while it was read"};
    done += static_cast<uint64_t>(got);
  }
  return bytes;
}

bool is_plain_file_name(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

}  // namespace memscope::symbols
