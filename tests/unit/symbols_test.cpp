// The symbolizer against real processes: the test programs in tests/testprogs/symbols_target* report
// the run-time addresses of their functions, and the symbolizer must map them back to names, modules,
// offsets and source lines. Expectations about files come from the files themselves (nm, readelf,
// /proc/PID/maps), never from hard-coded addresses.
#include <dlfcn.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "symbols/elf_object.hpp"
#include "symbols/kernel_symbols.hpp"
#include "symbols/process_maps.hpp"
#include "symbols/symbolizer.hpp"

extern char** environ;

namespace memscope::symbols {
namespace {

namespace fs = std::filesystem;

struct Recorded {
  uint64_t entry = 0;
  uint64_t return_address = 0;  // inside the function, right after its call to record()
  int line = 0;                 // the line of the signature and of that call
};

// A test program running as a child, talking the protocol described in symbols_target_pie.cpp.
class TargetProcess {
 public:
  explicit TargetProcess(const std::string& path) {
    int to_child[2];
    int from_child[2];
    if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0)
      throw std::runtime_error("pipe");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, to_child[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, from_child[1], STDOUT_FILENO);
    char* argv[] = {const_cast<char*>(path.c_str()), nullptr};
    int error = posix_spawn(&pid_, path.c_str(), &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(to_child[0]);
    close(from_child[1]);
    if (error != 0) {
      close(to_child[1]);
      close(from_child[0]);
      throw std::runtime_error("cannot start " + path + ": " + std::strerror(error));
    }
    to_child_ = to_child[1];
    from_child_ = fdopen(from_child[0], "r");
    read_until_ready();
  }

  TargetProcess(const TargetProcess&) = delete;
  TargetProcess& operator=(const TargetProcess&) = delete;

  ~TargetProcess() {
    if (pid_ > 0 && to_child_ < 0) kill(pid_, SIGKILL);
    finish();
    if (from_child_ != nullptr) fclose(from_child_);
  }

  pid_t pid() const { return pid_; }
  std::optional<uint64_t> vdso_address() const { return vdso_address_; }

  const Recorded& record(const std::string& label) const {
    auto found = records_.find(label);
    if (found == records_.end()) throw std::runtime_error("the test program did not report " + label);
    return found->second;
  }

  void command(const std::string& line) {
    std::string text = line + "\n";
    if (write(to_child_, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
      throw std::runtime_error("cannot write to the test program");
    read_until_ready();
  }

  // Closes stdin, which makes the program exit, and reaps it.
  void finish() {
    if (to_child_ >= 0) {
      close(to_child_);
      to_child_ = -1;
    }
    if (pid_ > 0) {
      int status = 0;
      waitpid(pid_, &status, 0);
      pid_ = -1;
    }
  }

 private:
  void read_until_ready() {
    char line[512];
    while (std::fgets(line, sizeof line, from_child_) != nullptr) {
      char label[128];
      Recorded recorded;
      uint64_t address = 0;
      if (std::sscanf(line, "record %127s %" SCNx64 " %" SCNx64 " %d", label, &recorded.entry,
                      &recorded.return_address, &recorded.line) == 4) {
        records_[label] = recorded;
      } else if (std::sscanf(line, "vdso %" SCNx64, &address) == 1) {
        vdso_address_ = address;
      } else if (std::strncmp(line, "error", 5) == 0) {
        throw std::runtime_error(std::string("the test program failed: ") + line);
      } else if (std::strcmp(line, "ready\n") == 0) {
        return;
      }
    }
    throw std::runtime_error("the test program ended before reporting ready");
  }

  pid_t pid_ = -1;
  int to_child_ = -1;
  FILE* from_child_ = nullptr;
  std::map<std::string, Recorded> records_;
  std::optional<uint64_t> vdso_address_;
};

std::string basename_of(const std::string& path) { return fs::path(path).filename().string(); }

std::string command_output(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {};
  std::string output;
  char buffer[4096];
  size_t count = 0;
  while ((count = fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, count);
  pclose(pipe);
  return output;
}

// The mapping of `pid` that contains `address`, read independently of the symbolizer's parser.
struct ContainingMapping {
  uint64_t start = 0;
  uint64_t file_offset = 0;
  std::string path;
};

std::optional<ContainingMapping> mapping_containing(pid_t pid, uint64_t address) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(maps, line)) {
    uint64_t start = 0;
    uint64_t end = 0;
    uint64_t offset = 0;
    char path[4096] = {};
    if (std::sscanf(line.c_str(), "%" SCNx64 "-%" SCNx64 " %*s %" SCNx64 " %*s %*s %4095s", &start, &end,
                    &offset, path) >= 3 &&
        address >= start && address < end)
      return ContainingMapping{start, offset, path};
  }
  return std::nullopt;
}

// The value nm reports for the function `symbol` (from .symtab, else .dynsym).
std::optional<uint64_t> nm_value(const std::string& path, const std::string& symbol) {
  for (const char* table : {"", "-D "}) {
    std::istringstream symbols(command_output(std::string("nm ") + table + path + " 2>/dev/null"));
    std::string line;
    while (std::getline(symbols, line)) {
      std::istringstream fields(line);
      std::string address;
      std::string type;
      std::string name;
      if (fields >> address >> type >> name && name.substr(0, name.find('@')) == symbol &&
          (type == "T" || type == "t"))
        return std::stoull(address, nullptr, 16);
    }
  }
  return std::nullopt;
}

// The PT_LOAD segments of `path` as readelf shows them.
struct ReadelfSegment {
  uint64_t file_offset = 0;
  uint64_t vaddr = 0;
  uint64_t file_size = 0;
  bool executable = false;
};

std::vector<ReadelfSegment> load_segments_from_readelf(const std::string& path) {
  std::vector<ReadelfSegment> segments;
  std::istringstream headers(command_output("readelf -lW " + path));
  std::string line;
  while (std::getline(headers, line)) {
    std::istringstream fields(line);
    std::string type;
    std::string offset;
    std::string vaddr;
    std::string paddr;
    std::string file_size;
    if (!(fields >> type >> offset >> vaddr >> paddr >> file_size) || type != "LOAD") continue;
    segments.push_back({std::stoull(offset, nullptr, 16), std::stoull(vaddr, nullptr, 16),
                        std::stoull(file_size, nullptr, 16), line.find(" R E ") != std::string::npos});
  }
  return segments;
}

// What nm and readelf say the file offset of `symbol` is: its value, moved from the virtual address
// of its PT_LOAD segment to that segment's file offset. The symbol may come from a separate debug file,
// whose program headers do not describe the file that is mapped.
std::optional<uint64_t> file_offset_from_nm_and_readelf(const std::string& path, const std::string& symbol,
                                                        const std::string& symbols_path = {}) {
  std::optional<uint64_t> value = nm_value(symbols_path.empty() ? path : symbols_path, symbol);
  if (!value) return std::nullopt;
  for (const auto& segment : load_segments_from_readelf(path))
    if (*value >= segment.vaddr && *value < segment.vaddr + segment.file_size)
      return *value - segment.vaddr + segment.file_offset;
  return std::nullopt;
}

std::string mangled_name_containing(const std::string& path, const std::string& fragment) {
  std::istringstream symbols(command_output("nm " + path));
  std::string line;
  while (std::getline(symbols, line)) {
    std::istringstream fields(line);
    std::string address;
    std::string type;
    std::string name;
    if (fields >> address >> type >> name && name.find(fragment) != std::string::npos) return name;
  }
  return {};
}

std::string build_id_from_readelf(const std::string& path) {
  std::string notes = command_output("readelf -n " + path);
  const std::string marker = "Build ID: ";
  size_t position = notes.find(marker);
  if (position == std::string::npos) return {};
  std::istringstream rest(notes.substr(position + marker.size()));
  std::string id;
  rest >> id;
  return id;
}

class TemporaryDirectory {
 public:
  TemporaryDirectory() {
    std::string pattern = (fs::temp_directory_path() / "memscope-symbols-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp");
    path_ = pattern;
  }
  ~TemporaryDirectory() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Expects `frame` to be the function `name` of `module` at `offset`, with a source line when `line` > 0.
void expect_frame(const Frame& frame, const std::string& name, const std::string& module, uint64_t offset,
                  const std::string& source = {}, int line = 0) {
  EXPECT_EQ(frame.function, name);
  EXPECT_EQ(frame.module, module);
  EXPECT_EQ(frame.offset, offset) << name;
  EXPECT_FALSE(frame.kernel);
  if (line > 0) {
    EXPECT_EQ(basename_of(frame.file), source) << name;
    EXPECT_EQ(frame.line, line) << name;
  } else {
    EXPECT_EQ(frame.file, "") << name;
    EXPECT_EQ(frame.line, 0) << name;
  }
}

const std::string kPieModule = basename_of(SYMBOLS_TARGET_PIE);
const std::string kPieSource = "symbols_target_pie.cpp";

const std::map<std::string, std::string> kPieFunctions = {
    {"fibonacci", "fibonacci"},
    {"local_helper", "local_helper(int)"},
    {"namespaced_function", "memscope_test::inner::namespaced_function(long)"},
    {"twice", "int memscope_test::twice<int>(int)"},
    {"widget_compute", "memscope_test::Widget::compute(int) const"},
};

TEST(StackSymbolizer, ResolvesPieFunctionsWithDemangledNamesAndLines) {
  TargetProcess target(SYMBOLS_TARGET_PIE);
  StackSymbolizer symbolizer;
  for (const auto& [label, name] : kPieFunctions) {
    SCOPED_TRACE(label);
    const Recorded& recorded = target.record(label);
    expect_frame(symbolizer.user_frame(target.pid(), recorded.entry), name, kPieModule, 0, kPieSource,
                 recorded.line);
    Frame inside = symbolizer.user_frame(target.pid(), recorded.entry + 3);
    EXPECT_EQ(inside.function, name);
    EXPECT_EQ(inside.offset, 3u);
  }
}

TEST(StackSymbolizer, ReturnAddressesResolveToTheCallingLine) {
  TargetProcess target(SYMBOLS_TARGET_PIE);
  StackSymbolizer symbolizer;
  const Recorded& innermost = target.record("fibonacci");
  const Recorded& caller = target.record("namespaced_function");
  std::vector<Frame> frames = symbolizer.user_frames(target.pid(), {innermost.entry, caller.return_address});
  ASSERT_EQ(frames.size(), 2u);
  expect_frame(frames[0], "fibonacci", kPieModule, 0, kPieSource, innermost.line);
  expect_frame(frames[1], "memscope_test::inner::namespaced_function(long)", kPieModule,
               caller.return_address - caller.entry, kPieSource, caller.line);
  EXPECT_EQ(frames[1].address, caller.return_address);
}

// One function of an inline chain as a test compares it: name, source file's basename, line.
struct ChainFrame {
  std::string function;
  std::string source;
  int line = 0;
  bool operator==(const ChainFrame&) const = default;
  friend std::ostream& operator<<(std::ostream& out, const ChainFrame& frame) {
    return out << frame.function << " (" << frame.source << ":" << frame.line << ")";
  }
};

// What binutils' addr2line says is at link-time address `vaddr` of `path`: the inlined functions,
// innermost first, then the function they were inlined into.
std::vector<ChainFrame> addr2line_chain(const std::string& path, uint64_t vaddr) {
  char address[32];
  std::snprintf(address, sizeof address, "%#" PRIx64, vaddr);
  std::istringstream output(command_output("addr2line -i -f -C -e " + path + " " + address));
  std::vector<ChainFrame> chain;
  std::string function;
  std::string location;  // "/path/file.c:12", possibly followed by " (discriminator 1)"
  while (std::getline(output, function) && std::getline(output, location)) {
    location = location.substr(0, location.find(' '));
    size_t colon = location.rfind(':');
    int line = colon == std::string::npos ? 0 : std::atoi(location.c_str() + colon + 1);
    chain.push_back({function, basename_of(location.substr(0, colon)), line});
  }
  return chain;
}

std::vector<ChainFrame> chain_of(const std::vector<Frame>& frames) {
  std::vector<ChainFrame> chain;
  for (const auto& frame : frames) chain.push_back({frame.function, basename_of(frame.file), frame.line});
  return chain;
}

// user_frames() split by captured address: each address's frames end at its first one not inlined.
std::vector<std::vector<Frame>> chains_by_address(const std::vector<Frame>& frames) {
  std::vector<std::vector<Frame>> chains(1);
  for (const auto& frame : frames) {
    chains.back().push_back(frame);
    if (!frame.inlined) chains.emplace_back();
  }
  chains.pop_back();
  return chains;
}

// The link-time address of run-time `address` of `pid`, from /proc/PID/maps and readelf.
std::optional<uint64_t> link_time_address(pid_t pid, uint64_t address) {
  auto mapping = mapping_containing(pid, address);
  if (!mapping) return std::nullopt;
  uint64_t file_offset = address - mapping->start + mapping->file_offset;
  for (const auto& segment : load_segments_from_readelf(mapping->path))
    if (segment.executable && file_offset >= segment.file_offset &&
        file_offset < segment.file_offset + segment.file_size)
      return file_offset - segment.file_offset + segment.vaddr;
  return std::nullopt;
}

// The number of the line of `source` that carries the comment "inline-test: <marker>".
int marked_line(const std::string& source, const std::string& marker) {
  std::ifstream file(source);
  std::string text;
  for (int number = 1; std::getline(file, text); number++)
    if (text.find("inline-test: " + marker) != std::string::npos) return number;
  ADD_FAILURE() << "no line marked " << marker << " in " << source;
  return 0;
}

TEST(StackSymbolizer, ExpandsTheInlineChainsOfOptimisedCode) {
  TargetProcess target(SYMBOLS_TARGET_INLINE);
  const Recorded& in_leaf = target.record("leaf");
  const Recorded& in_outer = target.record("outer");
  const std::string module = basename_of(SYMBOLS_TARGET_INLINE);
  const std::string source = basename_of(SYMBOLS_TARGET_INLINE_SOURCE);
  auto line_marked = [](const std::string& marker) {
    return marked_line(SYMBOLS_TARGET_INLINE_SOURCE, marker);
  };
  ASSERT_EQ(in_leaf.line, line_marked("leaf records"));
  ASSERT_EQ(in_outer.line, line_marked("outer records"));

  StackSymbolizer symbolizer;
  // Both record() calls as the return addresses they are on a real stack.
  std::vector<uint64_t> addresses = {in_leaf.entry, in_leaf.return_address, in_outer.return_address};
  std::vector<std::vector<Frame>> chains = chains_by_address(symbolizer.user_frames(target.pid(), addresses));
  ASSERT_EQ(chains.size(), addresses.size());
  for (size_t i = 0; i < addresses.size(); i++) {
    SCOPED_TRACE(i);
    // The symbolizer looks a return address up at its call instruction; so must addr2line.
    auto vaddr = link_time_address(target.pid(), i == 0 ? addresses[i] : addresses[i] - 1);
    ASSERT_TRUE(vaddr.has_value());
    EXPECT_EQ(chain_of(chains[i]), addr2line_chain(SYMBOLS_TARGET_INLINE, *vaddr));
    for (const auto& frame : chains[i]) {
      EXPECT_EQ(frame.address, addresses[i]);
      EXPECT_EQ(frame.module, module);
      EXPECT_EQ(frame.offset, addresses[i] - in_leaf.entry);
    }
  }

  // leaf's own line, middle's call of leaf, outer's call of middle.
  EXPECT_EQ(chain_of(chains[1]),
            (std::vector<ChainFrame>{{"leaf", source, line_marked("leaf records")},
                                     {"middle", source, line_marked("middle calls leaf")},
                                     {"outer", source, line_marked("outer calls middle")}}));
  ASSERT_EQ(chains[1].size(), 3u);
  EXPECT_TRUE(chains[1][0].inlined);
  EXPECT_TRUE(chains[1][1].inlined);
  EXPECT_FALSE(chains[1][2].inlined);
  EXPECT_EQ(chains[1][0].display(), "leaf (inlined) [" + module + "] (" + source + ":" +
                                        std::to_string(line_marked("leaf records")) + ")");

  // Where nothing is inlined, the one frame is what it always was.
  ASSERT_EQ(chains[2].size(), 1u);
  expect_frame(chains[2][0], "outer", module, in_outer.return_address - in_outer.entry, source,
               line_marked("outer records"));
  EXPECT_FALSE(chains[2][0].inlined);

  // user_frame() gives the function the symbol table names, at its own line.
  expect_frame(symbolizer.user_frame(target.pid(), in_leaf.return_address - 1), "outer", module,
               in_leaf.return_address - 1 - in_leaf.entry, source, line_marked("outer calls middle"));
}

TEST(StackSymbolizer, ResolvesSharedLibraryWithDebugInfo) {
  TargetProcess target(SYMBOLS_TARGET_PIE);
  StackSymbolizer symbolizer;
  const Recorded& recorded = target.record("lib_debug_function");
  std::vector<Frame> frames = symbolizer.user_frames(target.pid(), {recorded.entry, recorded.return_address});
  const std::string name = "symbols_lib::debug_function(int, void (*)(char const*, void*, int))";
  const std::string module = basename_of(SYMBOLS_TARGET_LIB);
  expect_frame(frames[0], name, module, 0, "symbols_target_lib.cpp", recorded.line);
  expect_frame(frames[1], name, module, recorded.return_address - recorded.entry, "symbols_target_lib.cpp",
               recorded.line);
}

TEST(StackSymbolizer, ResolvesStrippedSharedLibraryFromDynamicSymbols) {
  TargetProcess target(SYMBOLS_TARGET_PIE);
  StackSymbolizer symbolizer;
  const Recorded& recorded = target.record("nodebug_function");
  const std::string module = basename_of(SYMBOLS_TARGET_NODEBUG);
  expect_frame(symbolizer.user_frame(target.pid(), recorded.entry), "nodebug_function", module, 0);
  expect_frame(symbolizer.user_frame(target.pid(), recorded.return_address), "nodebug_function", module,
               recorded.return_address - recorded.entry);
}

std::optional<ReadelfSegment> code_segment(const std::string& path) {
  for (const auto& segment : load_segments_from_readelf(path))
    if (segment.executable) return segment;
  return std::nullopt;
}

TEST(StackSymbolizer, ResolvesCodeLinkedAtAnAddressOtherThanItsFileOffset) {
  std::optional<ReadelfSegment> segment = code_segment(SYMBOLS_TARGET_NODEBUG);
  ASSERT_TRUE(segment.has_value());
  if (segment->file_offset == segment->vaddr) GTEST_SKIP() << "the library was not linked with lld";
  TargetProcess target(SYMBOLS_TARGET_PIE);
  StackSymbolizer symbolizer;
  const Recorded& recorded = target.record("nodebug_function");
  expect_frame(symbolizer.user_frame(target.pid(), recorded.entry + 2), "nodebug_function",
               basename_of(SYMBOLS_TARGET_NODEBUG), 2);
}

TEST(StackSymbolizer, ResolvesStaticNonPieExecutable) {
  TargetProcess target(SYMBOLS_TARGET_STATIC);
  StackSymbolizer symbolizer;
  const std::string module = basename_of(SYMBOLS_TARGET_STATIC);
  for (const char* label : {"static_function", "static_local"}) {
    SCOPED_TRACE(label);
    const Recorded& recorded = target.record(label);
    // Non-PIE: the link-time address is the run-time address.
    EXPECT_EQ(nm_value(SYMBOLS_TARGET_STATIC, label), recorded.entry);
    std::vector<Frame> frames =
        symbolizer.user_frames(target.pid(), {recorded.entry, recorded.return_address});
    expect_frame(frames[0], label, module, 0, "symbols_target_static.c", recorded.line);
    expect_frame(frames[1], label, module, recorded.return_address - recorded.entry,
                 "symbols_target_static.c", recorded.line);
  }
}

TEST(StackSymbolizer, ResolvesVdso) {
  TargetProcess target(SYMBOLS_TARGET_PIE);
  if (!target.vdso_address()) GTEST_SKIP() << "no vdso in the test program";
  StackSymbolizer symbolizer;
  Frame frame = symbolizer.user_frame(target.pid(), *target.vdso_address() + 1);
  EXPECT_EQ(frame.module, "[vdso]");
  // clock_gettime is a weak alias of __vdso_clock_gettime; the strong name wins.
  EXPECT_EQ(frame.function, "__vdso_clock_gettime");
  EXPECT_EQ(frame.offset, 1u);
}

TEST(StackSymbolizer, LibraryLoadedAfterPrepareIsFoundBySeparateDebugLink) {
  TargetProcess target(SYMBOLS_TARGET_PIE);
  StackSymbolizer symbolizer;
  symbolizer.prepare(target.pid());
  // The snapshot predates the library: the miss must re-read the maps.
  target.command(std::string("dlopen ") + SYMBOLS_TARGET_SPLIT);
  const std::string module = basename_of(SYMBOLS_TARGET_SPLIT);
  const Recorded& exported = target.record("split_function");
  const Recorded& local = target.record("split_local");
  // split_local and all lines exist only in the .gnu_debuglink file next to the stripped library.
  expect_frame(symbolizer.user_frame(target.pid(), exported.entry), "split_function", module, 0,
               "symbols_target_split.c", exported.line);
  expect_frame(symbolizer.user_frame(target.pid(), local.entry), "split_local", module, 0,
               "symbols_target_split.c", local.line);
}

// A debug directory holding `debug_file` under the build-id of the stripped test library.
fs::path place_by_build_id(const TemporaryDirectory& debug_root, const char* debug_file) {
  const std::string build_id = build_id_from_readelf(SYMBOLS_TARGET_BUILDID);
  EXPECT_GT(build_id.size(), 2u) << "the test library was linked without a build-id";
  fs::path placed = debug_root.path() / ".build-id" / build_id.substr(0, 2) / (build_id.substr(2) + ".debug");
  fs::create_directories(placed.parent_path());
  fs::copy_file(debug_file, placed);
  return placed;
}

TEST(StackSymbolizer, FindsSeparateDebugFileByBuildId) {
  TemporaryDirectory debug_root;
  place_by_build_id(debug_root, SYMBOLS_TARGET_SPLIT_DEBUG);

  TargetProcess target(SYMBOLS_TARGET_PIE);
  target.command(std::string("dlopen ") + SYMBOLS_TARGET_BUILDID);
  const Recorded& local = target.record("split_local");
  const std::string module = basename_of(SYMBOLS_TARGET_BUILDID);

  StackSymbolizer without_debug_file(SymbolizerOptions{{(debug_root.path() / "missing").string()}});
  Frame bare = without_debug_file.user_frame(target.pid(), local.entry);
  EXPECT_EQ(bare.function, "");
  EXPECT_EQ(bare.module, module);
  EXPECT_EQ(bare.file, "");

  StackSymbolizer with_debug_file(SymbolizerOptions{{debug_root.path().string()}});
  expect_frame(with_debug_file.user_frame(target.pid(), local.entry), "split_local", module, 0,
               "symbols_target_split.c", local.line);
}

// Distributions compress the DWARF of their debug files (libc6-dbg: zlib): the sections are inflated
// one at a time and lines come out as from the uncompressed file.
TEST(StackSymbolizer, CompressedDebugFileGivesTheSameLines) {
  std::string info = command_output(std::string("readelf -S -W ") + SYMBOLS_TARGET_SPLIT_ZLIB_DEBUG + " | grep ' .debug_info '");
  ASSERT_NE(info.find(" C "), std::string::npos) << "not compressed: " << info;
  TemporaryDirectory debug_root;
  place_by_build_id(debug_root, SYMBOLS_TARGET_SPLIT_ZLIB_DEBUG);

  TargetProcess target(SYMBOLS_TARGET_PIE);
  target.command(std::string("dlopen ") + SYMBOLS_TARGET_BUILDID);
  const std::string module = basename_of(SYMBOLS_TARGET_BUILDID);
  StackSymbolizer symbolizer(SymbolizerOptions{{debug_root.path().string()}});
  for (const char* function : {"split_local", "split_function"}) {
    const Recorded& recorded = target.record(function);
    expect_frame(symbolizer.user_frame(target.pid(), recorded.entry), function, module, 0, "symbols_target_split.c",
                 recorded.line);
  }
}

// The same through Debian's libc debug file (libc6-dbg, installed by scripts/setup.sh): megabytes of
// zlib-compressed DWARF. addr2line, reading the debug file on its own, is the oracle.
TEST(StackSymbolizer, LibcLinesFromItsCompressedDebugFile) {
  // libc's own malloc, not the first in the search order (a sanitizer's interceptor under ASan).
  void* libc_handle = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(libc_handle, nullptr) << dlerror();
  void* malloc_entry = dlsym(libc_handle, "malloc");
  dlclose(libc_handle);
  Dl_info libc;
  ASSERT_TRUE(malloc_entry != nullptr && dladdr(malloc_entry, &libc) != 0);
  const std::string build_id = build_id_from_readelf(libc.dli_fname);
  ASSERT_GT(build_id.size(), 2u) << libc.dli_fname;
  const std::string debug_file = "/usr/lib/debug/.build-id/" + build_id.substr(0, 2) + "/" + build_id.substr(2) + ".debug";
  ASSERT_TRUE(fs::exists(debug_file)) << debug_file << " is missing: scripts/setup.sh installs libc6-dbg";
  uint64_t vaddr = reinterpret_cast<uintptr_t>(malloc_entry) - reinterpret_cast<uintptr_t>(libc.dli_fbase);
  std::string oracle = command_output(fmt::format("addr2line -e {} {:#x}", debug_file, vaddr));
  size_t colon = oracle.rfind(':');
  ASSERT_NE(colon, std::string::npos) << oracle;
  std::string file = basename_of(oracle.substr(0, colon));
  int line = std::atoi(oracle.c_str() + colon + 1);
  ASSERT_GT(line, 0) << oracle;

  StackSymbolizer symbolizer;
  Frame frame = symbolizer.user_frame(getpid(), reinterpret_cast<uintptr_t>(malloc_entry));
  EXPECT_EQ(frame.module, basename_of(libc.dli_fname));
  EXPECT_EQ(frame.offset, 0u);
  EXPECT_EQ(basename_of(frame.file), file);
  EXPECT_EQ(frame.line, line);
}

TEST(StackSymbolizer, FramesResolveAfterTheProcessExits) {
  TargetProcess target(SYMBOLS_TARGET_PIE);
  pid_t pid = target.pid();
  Recorded recorded = target.record("fibonacci");
  Recorded library = target.record("lib_debug_function");
  StackSymbolizer symbolizer;
  symbolizer.prepare(pid);
  target.finish();
  ASSERT_NE(kill(pid, 0), 0) << "the test program should be gone";
  expect_frame(symbolizer.user_frame(pid, recorded.entry), "fibonacci", kPieModule, 0, kPieSource,
               recorded.line);
  EXPECT_EQ(symbolizer.user_frame(pid, library.entry).module, basename_of(SYMBOLS_TARGET_LIB));
}

bool can_open_map_files(pid_t pid) {
  for (const auto& entry : fs::directory_iterator("/proc/" + std::to_string(pid) + "/map_files")) {
    int fd = open(entry.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    close(fd);
    return true;
  }
  return false;
}

// Runs a copy of the PIE program, then makes its path useless with `spoil`, and checks that the frames
// still come from the file that is mapped — or, where /proc/PID/map_files cannot be opened (it needs
// CAP_SYS_ADMIN), that the frame is unknown rather than named from whatever the path holds now.
void expect_resolution_through_map_files(void (*spoil)(const fs::path&)) {
  TemporaryDirectory directory;
  fs::path copy = directory.path() / "symbols_target_copy";
  fs::copy_file(SYMBOLS_TARGET_PIE, copy);
  TargetProcess target(copy.string());
  bool map_files_usable = can_open_map_files(target.pid());
  spoil(copy);
  StackSymbolizer symbolizer;
  const Recorded& recorded = target.record("namespaced_function");
  Frame frame = symbolizer.user_frame(target.pid(), recorded.entry);
  if (map_files_usable) {
    expect_frame(frame, "memscope_test::inner::namespaced_function(long)", "symbols_target_copy", 0,
                 kPieSource, recorded.line);
  } else {
    EXPECT_EQ(frame.function, "");
    EXPECT_EQ(frame.module, "symbols_target_copy");
    EXPECT_EQ(frame.file, "");
  }
}

TEST(StackSymbolizer, ResolvesDeletedExecutable) {
  expect_resolution_through_map_files([](const fs::path& copy) { fs::remove(copy); });
}

TEST(StackSymbolizer, ResolvesReplacedExecutableFromTheMappedFile) {
  // A rebuilt binary at the same path: opening the path would give the wrong symbols.
  expect_resolution_through_map_files([](const fs::path& copy) {
    fs::remove(copy);
    fs::copy_file(SYMBOLS_TARGET_STATIC, copy);
  });
}

TEST(StackSymbolizer, NoticesAFileRewrittenUnderTheSameInode) {
  TemporaryDirectory directory;
  fs::path library = directory.path() / "libsymbols_target_rewritten.so";
  fs::copy_file(SYMBOLS_TARGET_BUILDID, library);
  StackSymbolizer symbolizer(SymbolizerOptions{{(directory.path() / "no-debug-files").string()}});
  {
    TargetProcess first(SYMBOLS_TARGET_PIE);
    first.command("dlopen " + library.string());
    // Stripped: the local function is unknown.
    EXPECT_EQ(symbolizer.user_frame(first.pid(), first.record("split_local").entry).function, "");
  }
  // Same inode, new contents: the unstripped build of the same code.
  struct stat before {};
  ASSERT_EQ(stat(library.c_str(), &before), 0);
  {
    std::ifstream source(SYMBOLS_TARGET_SPLIT_FULL, std::ios::binary);
    std::ofstream rewrite(library, std::ios::binary | std::ios::trunc);
    rewrite << source.rdbuf();
  }
  struct stat after {};
  ASSERT_EQ(stat(library.c_str(), &after), 0);
  ASSERT_EQ(after.st_ino, before.st_ino);
  TargetProcess second(SYMBOLS_TARGET_PIE);
  second.command("dlopen " + library.string());
  const Recorded& local = second.record("split_local");
  expect_frame(symbolizer.user_frame(second.pid(), local.entry), "split_local", library.filename().string(),
               0, "symbols_target_split.c", local.line);
}

TEST(StackSymbolizer, SharesParsedObjectsAcrossProcesses) {
  TargetProcess first(SYMBOLS_TARGET_PIE);
  TargetProcess second(SYMBOLS_TARGET_PIE);
  TargetProcess static_target(SYMBOLS_TARGET_STATIC);
  StackSymbolizer symbolizer;
  symbolizer.prepare(first.pid());
  size_t objects = symbolizer.cached_object_count();
  // The program, its two libraries, libc, libstdc++, libm, libgcc_s and the dynamic loader.
  EXPECT_GE(objects, 5u);
  symbolizer.prepare(second.pid());
  EXPECT_EQ(symbolizer.cached_object_count(), objects);
  symbolizer.prepare(static_target.pid());
  EXPECT_EQ(symbolizer.cached_object_count(), objects + 1);
  expect_frame(symbolizer.user_frame(second.pid(), second.record("fibonacci").entry), "fibonacci", kPieModule,
               0, kPieSource, second.record("fibonacci").line);
}

TEST(StackSymbolizer, AddressesOutsideEveryMappingAreUnknown) {
  TargetProcess target(SYMBOLS_TARGET_PIE);
  StackSymbolizer symbolizer;
  Frame frame = symbolizer.user_frame(target.pid(), 0x10);
  EXPECT_EQ(frame.function, "");
  EXPECT_EQ(frame.module, "");
  EXPECT_EQ(frame.display(), "[unknown] 0x10");
  EXPECT_EQ(frame.short_name(), "[unknown]");
  // And a pid that does not exist.
  EXPECT_EQ(symbolizer.user_frame(-1, 0x1234).display(), "[unknown] 0x1234");
}

TEST(StackSymbolizer, ForgetDropsTheSnapshot) {
  TargetProcess target(SYMBOLS_TARGET_PIE);
  pid_t pid = target.pid();
  uint64_t entry = target.record("fibonacci").entry;
  StackSymbolizer symbolizer;
  symbolizer.prepare(pid);
  target.finish();
  symbolizer.forget(pid);
  EXPECT_EQ(symbolizer.user_frame(pid, entry).function, "");
}

TEST(SymbolFileOffset, MatchesTheMappingOfTheRunningCode) {
  TargetProcess pie(SYMBOLS_TARGET_PIE);
  TargetProcess static_target(SYMBOLS_TARGET_STATIC);
  struct Case {
    const TargetProcess& process;
    std::string label;
    std::string file;
    std::string symbol;
  };
  std::vector<Case> cases = {
      {pie, "fibonacci", SYMBOLS_TARGET_PIE, "fibonacci"},
      {pie, "namespaced_function", SYMBOLS_TARGET_PIE,
       mangled_name_containing(SYMBOLS_TARGET_PIE, "namespaced_function")},
      {pie, "lib_debug_function", SYMBOLS_TARGET_LIB,
       mangled_name_containing(SYMBOLS_TARGET_LIB, "debug_function")},
      {pie, "nodebug_function", SYMBOLS_TARGET_NODEBUG, "nodebug_function"},
      {static_target, "static_function", SYMBOLS_TARGET_STATIC, "static_function"},
  };
  for (const auto& test : cases) {
    SCOPED_TRACE(test.symbol);
    ASSERT_FALSE(test.symbol.empty());
    std::optional<uint64_t> offset = StackSymbolizer::symbol_file_offset(test.file, test.symbol);
    ASSERT_TRUE(offset.has_value());
    // A uprobe fires where the kernel maps that file offset: exactly where the function runs.
    uint64_t entry = test.process.record(test.label).entry;
    auto mapping = mapping_containing(test.process.pid(), entry);
    ASSERT_TRUE(mapping.has_value());
    EXPECT_EQ(fs::canonical(mapping->path), fs::canonical(test.file));
    EXPECT_EQ(*offset, entry - mapping->start + mapping->file_offset);
    EXPECT_EQ(offset, file_offset_from_nm_and_readelf(test.file, test.symbol));
  }
}

TEST(SymbolFileOffset, AliasesAndVersionsOfLibcSymbols) {
  TargetProcess target(SYMBOLS_TARGET_PIE);
  // Find libc the way the tracer would: through the process's mappings.
  std::string libc;
  std::ifstream maps("/proc/" + std::to_string(target.pid()) + "/maps");
  for (const auto& entry : parse_proc_maps(maps))
    if (basename_of(entry.path).rfind("libc.so", 0) == 0) libc = entry.path;
  ASSERT_FALSE(libc.empty());
  std::optional<uint64_t> malloc_offset = StackSymbolizer::symbol_file_offset(libc, "malloc");
  ASSERT_TRUE(malloc_offset.has_value());
  EXPECT_EQ(malloc_offset, file_offset_from_nm_and_readelf(libc, "malloc"));
  // __libc_malloc is an alias that the frame view folds away; attaching by it must still work.
  EXPECT_EQ(StackSymbolizer::symbol_file_offset(libc, "__libc_malloc"), malloc_offset);
}

TEST(SymbolFileOffset, SymbolsFromTheSeparateDebugFile) {
  // The stripped library has no split_local at all; its .gnu_debuglink file has.
  std::optional<uint64_t> offset = StackSymbolizer::symbol_file_offset(SYMBOLS_TARGET_SPLIT, "split_local");
  ASSERT_TRUE(offset.has_value());
  EXPECT_EQ(offset,
            file_offset_from_nm_and_readelf(SYMBOLS_TARGET_SPLIT, "split_local", SYMBOLS_TARGET_SPLIT_DEBUG));
}

TEST(SymbolFileOffset, MissingSymbolOrFile) {
  EXPECT_FALSE(StackSymbolizer::symbol_file_offset(SYMBOLS_TARGET_PIE, "no_such_function").has_value());
  EXPECT_FALSE(StackSymbolizer::symbol_file_offset("/nonexistent/binary", "main").has_value());
  // Data symbols are not functions: a uprobe there would never fire.
  EXPECT_FALSE(StackSymbolizer::symbol_file_offset(SYMBOLS_TARGET_PIE, "_edata").has_value());
}

TEST(SymbolNames, DemanglesAndDropsVersions) {
  EXPECT_EQ(readable_symbol_name("_ZN13memscope_test5inner19namespaced_functionEl"),
            "memscope_test::inner::namespaced_function(long)");
  EXPECT_EQ(readable_symbol_name("_ZNK13memscope_test6Widget7computeEi"),
            "memscope_test::Widget::compute(int) const");
  EXPECT_EQ(readable_symbol_name("_Znwm"), "operator new(unsigned long)");
  EXPECT_EQ(readable_symbol_name("_ZNSt6vectorIiSaIiEE9push_backERKi@@GLIBCXX_3.4"),
            "std::vector<int, std::allocator<int> >::push_back(int const&)");
  EXPECT_EQ(readable_symbol_name("memcpy@GLIBC_2.14"), "memcpy");
  EXPECT_EQ(readable_symbol_name("malloc"), "malloc");
  // Not a valid mangling: shown as it is rather than lost.
  EXPECT_EQ(readable_symbol_name("_Z_not_mangled"), "_Z_not_mangled");
}

TEST(FrameFormat, DisplayAndShortName) {
  Frame frame;
  frame.address = 0x55aa00001234;
  frame.function = "fibonacci";
  frame.offset = 0x23;
  frame.module = "leak";
  EXPECT_EQ(frame.display(), "fibonacci+0x23 [leak]");
  EXPECT_EQ(frame.short_name(), "fibonacci");
  frame.file = "/src/examples/leak.c";
  frame.line = 12;
  EXPECT_EQ(frame.display(), "fibonacci+0x23 [leak] (leak.c:12)");

  Frame unknown;
  unknown.address = 0x7f1200000010;
  unknown.module = "libfoo.so";
  EXPECT_EQ(unknown.display(), "[unknown] 0x7f1200000010 [libfoo.so]");
  EXPECT_EQ(unknown.short_name(), "[unknown]");
}

TEST(ProcMaps, ParsesSpecialAndDeletedMappings) {
  std::istringstream fixture(
      "55d4c8a00000-55d4c8a01000 r--p 00000000 fd:01 1835023                    /usr/bin/leak\n"
      "55d4c8a01000-55d4c8a02000 r-xp 00001000 fd:01 1835023                    /usr/bin/leak\n"
      "7f0e5c000000-7f0e5c021000 rw-s 00000000 00:01 1027                       /dev/zero (deleted)\n"
      "7f0e5c200000-7f0e5c228000 r-xp 00028000 103:02 42                        /tmp/my lib.so (deleted)\n"
      "7ffc5b5f0000-7ffc5b5f2000 r-xp 00000000 00:00 0                          [vdso]\n"
      "7f0e5c100000-7f0e5c121000 rwxp 00000000 00:00 0 \n"
      "not a mapping line\n");
  std::vector<MapsEntry> entries = parse_proc_maps(fixture);
  ASSERT_EQ(entries.size(), 6u);
  EXPECT_EQ(entries[1].start, 0x55d4c8a01000u);
  EXPECT_EQ(entries[1].end, 0x55d4c8a02000u);
  EXPECT_EQ(entries[1].file_offset, 0x1000u);
  EXPECT_TRUE(entries[1].executable);
  EXPECT_FALSE(entries[1].writable);
  EXPECT_EQ(entries[1].device_major, 0xfdu);
  EXPECT_EQ(entries[1].inode, 1835023u);
  EXPECT_EQ(entries[1].path, "/usr/bin/leak");
  EXPECT_TRUE(entries[1].file_backed());
  EXPECT_FALSE(entries[1].shared);
  EXPECT_TRUE(entries[2].shared);
  EXPECT_TRUE(entries[2].deleted);
  EXPECT_EQ(entries[2].path, "/dev/zero");
  EXPECT_EQ(entries[3].path, "/tmp/my lib.so");
  EXPECT_TRUE(entries[3].deleted);
  EXPECT_EQ(entries[3].device_major, 0x103u);
  EXPECT_EQ(entries[3].device_minor, 2u);
  EXPECT_EQ(entries[4].path, "[vdso]");
  EXPECT_FALSE(entries[4].file_backed());
  EXPECT_EQ(entries[5].path, "");
  EXPECT_EQ(entries[5].inode, 0u);
  EXPECT_FALSE(entries[5].file_backed());
}

constexpr const char* kKallsymsFixture =
    "ffffffff81000000 T _stext\n"
    "ffffffff81000000 T startup_64\n"
    "ffffffff81001000 T do_one_initcall\n"
    "ffffffff81001200 t __schedule\n"
    "ffffffff81001200 T __schedule_alias\n"
    "ffffffff81001800 T schedule\n"
    "ffffffff81002000 D some_data\n"
    "ffffffff81003000 T kmalloc_trace\n"
    "ffffffffc0002000 t ext4_fill_super\t[ext4]\n"
    "ffffffffc0001000 t ext4_get_block\t[ext4]\n"
    "ffffffffc0003000 t bpf_prog_6deef7357e7b4530_memscope\t[bpf]\n";

TEST(KernelSymbols, ParsesSortsAndFindsSymbols) {
  std::istringstream fixture(kKallsymsFixture);
  KernelSymbolTable table = KernelSymbolTable::parse(fixture);
  EXPECT_FALSE(table.addresses_hidden());
  // Data symbols are dropped, aliases folded.
  EXPECT_EQ(table.size(), 8u);

  auto startup = table.find(0xffffffff81000010);
  ASSERT_TRUE(startup.has_value());
  EXPECT_EQ(startup->name, "startup_64");  // the undecorated alias
  EXPECT_EQ(startup->module, "");

  auto schedule = table.find(0xffffffff81001805);
  ASSERT_TRUE(schedule.has_value());
  EXPECT_EQ(schedule->name, "schedule");
  EXPECT_EQ(schedule->address, 0xffffffff81001800u);
  EXPECT_EQ(table.find(0xffffffff81001200)->name, "__schedule");
  // some_data is not code: the address belongs to the function before it.
  EXPECT_EQ(table.find(0xffffffff81002004)->name, "schedule");

  // Module symbols are out of order in kallsyms.
  auto block = table.find(0xffffffffc0001010);
  ASSERT_TRUE(block.has_value());
  EXPECT_EQ(block->name, "ext4_get_block");
  EXPECT_EQ(block->module, "ext4");
  EXPECT_EQ(table.find(0xffffffffc0002001)->name, "ext4_fill_super");

  EXPECT_FALSE(table.find(0xffffffff80000000).has_value());
}

TEST(KernelSymbols, RecognisesHiddenAddresses) {
  std::istringstream fixture(
      "0000000000000000 T _stext\n"
      "0000000000000000 T schedule\n"
      "0000000000000000 t ext4_get_block\t[ext4]\n");
  KernelSymbolTable table = KernelSymbolTable::parse(fixture);
  EXPECT_TRUE(table.addresses_hidden());
  EXPECT_FALSE(table.find(0xffffffff81001805).has_value());
}

TEST(KernelFrames, NamesOffsetsAndModules) {
  StackSymbolizer symbolizer;
  std::istringstream fixture(kKallsymsFixture);
  symbolizer.load_kernel_symbols(fixture);
  EXPECT_FALSE(symbolizer.kernel_symbols_hidden());

  Frame core = symbolizer.kernel_frame(0xffffffff81003026);
  EXPECT_TRUE(core.kernel);
  EXPECT_EQ(core.function, "kmalloc_trace");
  EXPECT_EQ(core.offset, 0x26u);
  EXPECT_EQ(core.module, "kernel");
  EXPECT_EQ(core.display(), "kmalloc_trace+0x26 [kernel]");
  EXPECT_EQ(core.short_name(), "kmalloc_trace");

  Frame module = symbolizer.kernel_frame(0xffffffffc0003010);
  EXPECT_EQ(module.function, "bpf_prog_6deef7357e7b4530_memscope");
  EXPECT_EQ(module.module, "bpf");

  // A return address right after a call that ends a function belongs to the caller, not to the next
  // symbol; the innermost frame is an exact address.
  std::vector<Frame> frames = symbolizer.kernel_frames({0xffffffff81001800, 0xffffffff81001800});
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].function, "schedule");
  EXPECT_EQ(frames[0].offset, 0u);
  EXPECT_EQ(frames[1].function, "__schedule");
  EXPECT_EQ(frames[1].offset, 0x600u);
}

TEST(KernelFrames, HiddenAddressesAreReported) {
  StackSymbolizer symbolizer;
  std::istringstream fixture("0000000000000000 T _stext\n0000000000000000 T schedule\n");
  symbolizer.load_kernel_symbols(fixture);
  EXPECT_TRUE(symbolizer.kernel_symbols_hidden());
  Frame frame = symbolizer.kernel_frame(0xffffffff81001805);
  EXPECT_EQ(frame.function, "[unknown]");
  EXPECT_EQ(frame.short_name(), "[unknown]");
  EXPECT_EQ(frame.display(), "[unknown] 0xffffffff81001805 [kernel]");
}

TEST(KernelFrames, LiveKallsyms) {
  std::ifstream kallsyms("/proc/kallsyms");
  std::string line;
  std::optional<uint64_t> schedule;
  while (std::getline(kallsyms, line)) {
    std::istringstream fields(line);
    std::string address;
    std::string type;
    std::string name;
    if (fields >> address >> type >> name && name == "schedule" && (type == "T" || type == "t")) {
      schedule = std::stoull(address, nullptr, 16);
      break;
    }
  }
  if (!schedule || *schedule == 0) GTEST_SKIP() << "/proc/kallsyms hides addresses from this user";
  StackSymbolizer symbolizer;
  Frame frame = symbolizer.kernel_frame(*schedule + 4);
  EXPECT_EQ(frame.function, "schedule");
  EXPECT_EQ(frame.offset, 4u);
  EXPECT_EQ(frame.module, "kernel");
}

TEST(DebugLink, Crc32MatchesTheReferenceValue) {
  const char* check = "123456789";
  EXPECT_EQ(debuglink_crc32(reinterpret_cast<const unsigned char*>(check), 9), 0xcbf43926u);
}

}  // namespace
}  // namespace memscope::symbols
