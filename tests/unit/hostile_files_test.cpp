// Files other users control, read by a root tracer: FIFOs and devices where a debug file is expected,
// symlinks out of a container's root, debug links with a '/', /proc magic links, files truncated
// while memscope holds them. Each test builds the hostile file itself and checks that memscope
// neither blocks, opens the device, leaves the root, nor crashes, and (where there is one) that the
// same lookup with an honest file still works, so a refusal is not mistaken for success.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include "symbols/cfi_table.hpp"
#include "symbols/elf_object.hpp"
#include "symbols/target_files.hpp"

namespace memscope::symbols {
namespace {

namespace fs = std::filesystem;

class TemporaryDirectory {
 public:
  TemporaryDirectory() {
    char name[] = "/tmp/memscope-hostile-XXXXXX";
    if (mkdtemp(name) == nullptr) throw std::runtime_error("mkdtemp");
    path_ = name;
  }
  ~TemporaryDirectory() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

void run_command(const std::string& command) {
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
}

// Runs `body` in a child process and says whether it exited 0 within `limit`; a child that does not
// is killed. A hang in the code under test then fails the test instead of the whole run.
bool finishes_within(std::chrono::seconds limit, const std::function<int()>& body) {
  pid_t child = fork();
  if (child == 0) _exit(body());
  auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (waitpid(child, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(child, SIGKILL);
      waitpid(child, &status, 0);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Counts IN_OPEN events on one file: whether anything opened it (O_PATH opens do not count; they run
// no driver code).
class OpenWatch {
 public:
  explicit OpenWatch(const std::string& path) {
    fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    watch_ = fd_ >= 0 ? inotify_add_watch(fd_, path.c_str(), IN_OPEN) : -1;
  }
  ~OpenWatch() {
    if (fd_ >= 0) close(fd_);
  }
  bool ready() const { return watch_ >= 0; }
  int opens() {
    alignas(inotify_event) char buffer[4096];
    int count = 0;
    ssize_t length;
    while ((length = read(fd_, buffer, sizeof(buffer))) > 0)
      for (ssize_t offset = 0; offset < length;) {
        auto* event = reinterpret_cast<inotify_event*>(buffer + offset);
        if (event->mask & IN_OPEN) count++;
        offset += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
      }
    return count;
  }

 private:
  int fd_ = -1;
  int watch_ = -1;
};

// The stripped split library with a .gnu_debuglink naming `link_name` (CRC of `crc_source`), at `out`.
void make_stripped_library(const std::string& out, const std::string& link_name, const std::string& crc_source) {
  std::string section = out + ".gnu_debuglink";
  std::ifstream source(crc_source, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(source)), std::istreambuf_iterator<char>());
  uint32_t crc = debuglink_crc32(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  std::string contents = link_name;
  contents.push_back('\0');
  while (contents.size() % 4) contents.push_back('\0');
  contents.append(reinterpret_cast<const char*>(&crc), sizeof(crc));
  std::ofstream(section, std::ios::binary) << contents;
  run_command(std::string(MEMSCOPE_OBJCOPY) + " --strip-all --add-section .gnu_debuglink=" + section + " " +
              SYMBOLS_TARGET_SPLIT_FULL + " " + out);
  fs::remove(section);
}

OpenedFile open_or_fail(const std::string& path) {
  auto file = open_host_file(path);
  if (!file) throw std::runtime_error(file.error().message);
  return std::move(*file);
}

TEST(TargetFiles, FifoIsRefusedWithoutBlocking) {
  TemporaryDirectory directory;
  std::string fifo = directory / "fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_TRUE(finishes_within(std::chrono::seconds(10), [&] {
    auto opened = open_host_file(fifo);
    return !opened && opened.error().message.find("a FIFO") != std::string::npos ? 0 : 1;
  }));
}

TEST(TargetFiles, DeviceIsRefusedWithoutBeingOpened) {
  OpenWatch watch("/dev/full");
  ASSERT_TRUE(watch.ready()) << "inotify on /dev/full";
  auto opened = open_host_file("/dev/full");
  ASSERT_FALSE(opened);
  EXPECT_NE(opened.error().message.find("a device"), std::string::npos) << opened.error().message;
  EXPECT_EQ(watch.opens(), 0);
}

TEST(TargetFiles, FinalSymlinkIsFollowedOnlyWhenAsked) {
  TemporaryDirectory directory;
  std::ofstream(directory / "real") << "contents";
  fs::create_symlink("real", directory / "link");
  auto literal = open_host_file(directory / "link");
  ASSERT_FALSE(literal);
  EXPECT_NE(literal.error().message.find("a symbolic link"), std::string::npos) << literal.error().message;
  auto followed = open_host_file(directory / "link", {.follow_final_symlink = true});
  ASSERT_TRUE(followed) << followed.error().message;
  EXPECT_EQ(*read_file_bytes(*followed), "contents");
}

TEST(TargetFiles, AbsoluteSymlinksStayInsideTheRoot) {
  TemporaryDirectory outside;
  TemporaryDirectory root_directory;
  std::ofstream(outside / "secret") << "outside";
  fs::create_directories(root_directory.path() / "lib");
  // An absolute link in the root names a path of the root, wherever it points on the host.
  fs::create_symlink(outside.path(), root_directory.path() / "lib" / "escape");
  fs::create_symlink(outside / "secret", root_directory.path() / "secret_link");
  auto root = FileRoot::directory(root_directory.path().string());
  ASSERT_TRUE(root);
  auto through_directory = root->open("/lib/escape/secret");
  EXPECT_FALSE(through_directory) << "read a file outside the root through a directory symlink";
  auto through_final = root->open("/secret_link", {.follow_final_symlink = true});
  EXPECT_FALSE(through_final) << "read a file outside the root through a final symlink";
  // ".." does not climb out either.
  auto climbing = root->open("../../" + outside.path().string() + "/secret");
  EXPECT_FALSE(climbing);
  // The same path, when it exists inside the root, is found there.
  fs::create_directories(root_directory.path() / outside.path().relative_path());
  std::ofstream(root_directory.path() / outside.path().relative_path() / "secret") << "inside";
  auto inside = root->open("/lib/escape/secret");
  ASSERT_TRUE(inside) << inside.error().message;
  EXPECT_EQ(*read_file_bytes(*inside), "inside");
}

TEST(TargetFiles, ProcMagicLinksAreNotFollowed) {
  // /proc/self/root is a magic link: it would lead into whatever root a process has.
  auto opened = open_host_file("/proc/self/root/etc/hostname");
  ASSERT_FALSE(opened);
  EXPECT_NE(opened.error().message.find("/proc/self/root/etc/hostname"), std::string::npos);
}

TEST(TargetFiles, ProcessRootPathsResolveInThatRoot) {
  auto target = split_target_path("/proc/" + std::to_string(getpid()) + "/root/etc/hostname");
  ASSERT_TRUE(target) << target.error().message;
  EXPECT_FALSE(target->root.is_host());
  EXPECT_EQ(target->path, "/etc/hostname");
  auto host = split_target_path("/proc/self/maps");
  ASSERT_TRUE(host);
  EXPECT_TRUE(host->root.is_host());
}

TEST(TargetFiles, FileThatShrinksWhileReadIsAnError) {
  TemporaryDirectory directory;
  std::string path = directory / "file";
  std::ofstream(path) << std::string(100000, 'x');
  OpenedFile file = open_or_fail(path);
  ASSERT_EQ(truncate(path.c_str(), 10), 0);
  auto bytes = read_file_bytes(file);
  ASSERT_FALSE(bytes);
  EXPECT_NE(bytes.error().message.find("shrank"), std::string::npos);
}

TEST(TargetFiles, FilesOverTheSizeLimitAreRefused) {
  TemporaryDirectory directory;
  std::string path = directory / "file";
  std::ofstream(path) << std::string(5000, 'x');
  auto opened = open_host_file(path, {.max_bytes = 4096});
  ASSERT_FALSE(opened);
  EXPECT_NE(opened.error().message.find("more than the 4096"), std::string::npos) << opened.error().message;
}

TEST(TargetFiles, RelativeHostPathsAreRelativeToTheWorkingDirectory) {
  TemporaryDirectory directory;
  std::ofstream(directory / "file") << "here";
  auto previous = fs::current_path();
  fs::current_path(directory.path());
  auto opened = open_host_file("./file");
  fs::current_path(previous);
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ(*read_file_bytes(*opened), "here");
}

TEST(TargetFiles, PlainFileNames) {
  EXPECT_TRUE(is_plain_file_name("libc.so.6.debug"));
  EXPECT_FALSE(is_plain_file_name(""));
  EXPECT_FALSE(is_plain_file_name("."));
  EXPECT_FALSE(is_plain_file_name(".."));
  EXPECT_FALSE(is_plain_file_name("../libc.debug"));
  EXPECT_FALSE(is_plain_file_name("/dev/watchdog"));
  EXPECT_FALSE(is_plain_file_name(std::string_view("a\0b", 3)));
}

// ---- Debug links ----

TEST(DebugLinks, HonestDebugLinkNextToTheObjectIsUsed) {
  TemporaryDirectory directory;
  fs::copy_file(SYMBOLS_TARGET_SPLIT_DEBUG, directory / "libt.debug");
  make_stripped_library(directory / "libt.so", "libt.debug", SYMBOLS_TARGET_SPLIT_DEBUG);
  auto object = ElfObject::open_file(open_or_fail(directory / "libt.so"),
                                     DebugFileSearch{FileRoot::host(), directory / "libt.so", {}});
  ASSERT_TRUE(object);
  EXPECT_EQ(object->debug_file_path(), directory / "libt.debug");
  EXPECT_TRUE(object->symbol_address("split_local").has_value());
}

TEST(DebugLinks, FifoDebugLinkDoesNotBlock) {
  TemporaryDirectory directory;
  make_stripped_library(directory / "libt.so", "libt.debug", SYMBOLS_TARGET_SPLIT_DEBUG);
  ASSERT_EQ(mkfifo((directory / "libt.debug").c_str(), 0600), 0);
  EXPECT_TRUE(finishes_within(std::chrono::seconds(10), [&] {
    auto object = ElfObject::open_path(directory / "libt.so",
                                       DebugFileSearch{FileRoot::host(), directory / "libt.so", {}});
    return object && object->debug_file_path().empty() ? 0 : 1;
  }));
}

TEST(DebugLinks, DeviceDebugLinkIsNeverOpened) {
  TemporaryDirectory directory;
  make_stripped_library(directory / "libt.so", "full", SYMBOLS_TARGET_SPLIT_DEBUG);
  OpenWatch watch("/dev/full");
  ASSERT_TRUE(watch.ready()) << "inotify on /dev/full";
  // The object as if the process mapped it from /dev: its debug link then names /dev/full.
  auto object = ElfObject::open_file(open_or_fail(directory / "libt.so"),
                                     DebugFileSearch{FileRoot::host(), "/dev/libt.so", {}});
  ASSERT_TRUE(object);
  EXPECT_TRUE(object->debug_file_path().empty());
  EXPECT_EQ(watch.opens(), 0) << "memscope opened /dev/full";
}

TEST(DebugLinks, DebugLinkWithASlashIsNotLookedUp) {
  TemporaryDirectory directory;
  fs::create_directories(directory.path() / "sub");
  fs::copy_file(SYMBOLS_TARGET_SPLIT_DEBUG, directory / "sub/libt.debug");
  make_stripped_library(directory / "libt.so", "sub/libt.debug", SYMBOLS_TARGET_SPLIT_DEBUG);
  auto object = ElfObject::open_file(open_or_fail(directory / "libt.so"),
                                     DebugFileSearch{FileRoot::host(), directory / "libt.so", {}});
  ASSERT_TRUE(object);
  ASSERT_TRUE(object->debug_link());
  EXPECT_EQ(object->debug_link()->name, "sub/libt.debug");
  EXPECT_TRUE(object->debug_file_path().empty()) << object->debug_file_path();
  EXPECT_FALSE(object->symbol_address("split_local").has_value());
}

// A container whose /usr/lib/debug is an absolute symlink to a host directory: the debug file there
// must not be used for the container's object (it is the host's file, not the container's).
TEST(DebugLinks, DebugDirectoryBehindASymlinkOutOfTheRootIsNotUsed) {
  TemporaryDirectory outside;
  TemporaryDirectory container;
  fs::create_directories(outside.path() / "lib");
  fs::copy_file(SYMBOLS_TARGET_SPLIT_DEBUG, outside.path() / "lib" / "libt.debug");
  fs::create_directories(container.path() / "lib");
  fs::create_directories(container.path() / "usr" / "lib");
  make_stripped_library((container.path() / "lib" / "libt.so").string(), "libt.debug", SYMBOLS_TARGET_SPLIT_DEBUG);
  fs::create_symlink(outside.path(), container.path() / "usr" / "lib" / "debug");
  auto root = FileRoot::directory(container.path().string());
  ASSERT_TRUE(root);
  auto object = ElfObject::open_file(open_or_fail((container.path() / "lib" / "libt.so").string()),
                                     DebugFileSearch{*root, "/lib/libt.so", {"/usr/lib/debug"}});
  ASSERT_TRUE(object);
  EXPECT_TRUE(object->debug_file_path().empty()) << object->debug_file_path();

  // The same layout with the debug directory inside the container is honoured.
  fs::remove(container.path() / "usr" / "lib" / "debug");
  fs::create_directories(container.path() / "usr" / "lib" / "debug" / "lib");
  fs::copy_file(SYMBOLS_TARGET_SPLIT_DEBUG, container.path() / "usr" / "lib" / "debug" / "lib" / "libt.debug");
  auto honest = ElfObject::open_file(open_or_fail((container.path() / "lib" / "libt.so").string()),
                                     DebugFileSearch{*root, "/lib/libt.so", {"/usr/lib/debug"}});
  ASSERT_TRUE(honest);
  EXPECT_EQ(honest->debug_file_path(), container.path().string() + "/usr/lib/debug/lib/libt.debug");
}

// ---- Files truncated while memscope holds them ----

TEST(TruncatedFiles, ObjectAnswersAfterItsFileIsTruncated) {
  TemporaryDirectory directory;
  std::string path = directory / "libt.so";
  fs::copy_file(SYMBOLS_TARGET_SPLIT_FULL, path);
  auto object = ElfObject::open_path(path, DebugFileSearch{});
  ASSERT_TRUE(object);
  auto vaddr = object->symbol_address("split_local");
  ASSERT_TRUE(vaddr);
  auto before = object->source_frames(*vaddr);
  ASSERT_FALSE(before.empty());
  // The owner truncates the file: a mapping of it would now raise SIGBUS on every access.
  ASSERT_EQ(truncate(path.c_str(), 0), 0);
  const ElfSymbol* symbol = object->symbol_at(*vaddr);
  ASSERT_NE(symbol, nullptr);
  EXPECT_EQ(readable_symbol_name(symbol->name), "split_local");
  auto after = object->source_frames(*vaddr + 1);  // not cached: read from the copy
  ASSERT_FALSE(after.empty());
  EXPECT_EQ(after.back().location.file, before.back().location.file);
}

// The DWARF of an object is copied when first asked for: truncated before that, the object keeps its
// symbols and has no lines, and nothing crashes.
TEST(TruncatedFiles, TruncatedBeforeItsDwarfIsReadTheObjectHasNoLines) {
  TemporaryDirectory directory;
  std::string path = directory / "libt.so";
  fs::copy_file(SYMBOLS_TARGET_SPLIT_FULL, path);
  auto object = ElfObject::open_path(path, DebugFileSearch{});
  ASSERT_TRUE(object);
  auto vaddr = object->symbol_address("split_local");
  ASSERT_TRUE(vaddr);
  ASSERT_EQ(truncate(path.c_str(), 0), 0);
  const ElfSymbol* symbol = object->symbol_at(*vaddr);
  ASSERT_NE(symbol, nullptr);
  EXPECT_EQ(readable_symbol_name(symbol->name), "split_local");
  EXPECT_TRUE(object->source_frames(*vaddr).empty());
}

TEST(TruncatedFiles, UnwindTableOfATruncatedFileIsAnError) {
  TemporaryDirectory directory;
  std::string path = directory / "libt.so";
  fs::copy_file(SYMBOLS_TARGET_SPLIT_FULL, path);
  OpenedFile file = open_or_fail(path);
  ASSERT_EQ(truncate(path.c_str(), 4096), 0);
  auto table = compile_cfi_table(file.fd.get(), -1);
  EXPECT_FALSE(table);
}

}  // namespace
}  // namespace memscope::symbols
