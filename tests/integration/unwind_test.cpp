// User stacks through code built without frame pointers, the way Debian builds it: the test
// programs tests/testprogs/unwind_* (-O2 -g, frame pointers omitted) call into Debian's libc,
// libstdc++ and a dlopen()ed library, and Debian's own sqlite3 and perl run under memleak. Each
// test states the frames it expects, checks that an independent unwinder (valgrind, gdb:
// stack_oracle.hpp) shows them, then that memscope's stack of the same allocation, growth or
// fault holds them in that order (innermost first, other frames between allowed), none of them
// walked by frame pointer ("unwound": "fp"). --stack-mode fp keeps the old walk: its strdup stack
// lacks make_label, the gap these tests close.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "bpf_holdings.hpp"
#include "harness.hpp"
#include "reclaim_workload.hpp"
#include "stack_oracle.hpp"

namespace memscope::test {
namespace {

using nlohmann::json;
using oracle::ExpectedStack;

oracle::Stack functions_of(const json& entry) {
  oracle::Stack functions;
  for (const auto& frame : entry["frames"]) functions.push_back(frame.value("function", ""));
  return functions;
}

std::string describe_frames(const json& entry) {
  std::string text;
  for (const auto& frame : entry["frames"]) {
    text += text.empty() ? "" : " <- ";
    text += frame.value("function", "?");
    if (frame.value("unwound", "") == "fp") text += " [fp]";
  }
  if (entry.value("truncated", false)) text += " [truncated]";
  return text;
}

// Empty when memscope's stack `entry` holds `expected` in order with none of those frames walked
// by frame pointer; otherwise what is wrong, naming the frame.
std::string stack_problem(const json& entry, const ExpectedStack& expected) {
  const auto& frames = entry["frames"];
  size_t at = 0;
  for (const auto& wanted : expected) {
    bool found = false;
    for (; at < frames.size() && !found; at++) {
      std::string function = oracle::comparable_name(frames[at].value("function", ""));
      for (const auto& name : wanted.names)
        if (function == oracle::comparable_name(name)) found = true;
      if (found && frames[at].value("unwound", "") == "fp")
        return wanted.describe() + " was walked by frame pointer (\"unwound\": \"fp\")";
    }
    if (!found) return wanted.describe() + " is missing";
  }
  return "";
}

std::string joined(const oracle::Stack& stack) {
  std::string text;
  for (const auto& function : stack) text += (text.empty() ? "" : " <- ") + function;
  return text;
}

// The oracle must show the frames before memscope is held to them: a test program the compiler
// rearranged (inlined, tail-called) is the test's fault, not memscope's.
void expect_oracle_shows(const oracle::Run& seen, const ExpectedStack& expected) {
  ASSERT_TRUE(seen.error.empty()) << seen.error;
  ASSERT_EQ(oracle::first_missing_frame(seen.stack, expected), "")
      << "missing from the independent unwinder's stack " << joined(seen.stack);
}

// --- memleak -----------------------------------------------------------------------------------

struct MemleakRun {
  Finished finished;
  std::vector<json> objects;
  json report;  // the last outstanding_allocations report
};

// memscope memleak -c COMMAND --json --no-scan -a -T 1000 EXTRA…: every outstanding block with its
// size and stack id (-a), every stack (-T), at the command's exit.
MemleakRun memleak_command(const std::string& command, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {memscope_binary(), "memleak", "-c", command, "--json", "--no-scan", "-a", "-T", "1000"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  MemleakRun result;
  result.finished = run(argv, std::chrono::seconds(50));
  result.objects = json_objects(result.finished.out);
  for (const auto& object : result.objects)
    if (object["event"] == "outstanding_allocations") result.report = object;
  return result;
}

// The report's stacks of the outstanding blocks of exactly `size` bytes (the "allocation" records
// of -a name each block's stack id; every interval report lists them again).
std::vector<json> stacks_of_blocks(const std::vector<json>& objects, const json& report, uint64_t size) {
  std::set<int64_t> stack_ids;
  for (const auto& object : objects)
    if (object["event"] == "allocation" && object.value("size", uint64_t{0}) == size)
      stack_ids.insert(object["stack_id"].get<int64_t>());
  std::vector<json> found;
  if (!report.is_object()) return found;
  for (const auto& entry : report["stacks"])
    if (stack_ids.count(entry["stack_id"].get<int64_t>())) found.push_back(entry);
  return found;
}

// The oracle's block with the expected stack, then memscope's stack of that block in `report`.
void expect_memleak_stack(const std::vector<std::string>& program, const ExpectedStack& expected,
                          const std::vector<json>& objects, const json& report, const std::string& output) {
  oracle::Blocks blocks = oracle::valgrind_blocks(program);
  ASSERT_TRUE(blocks.error.empty()) << blocks.error;
  const oracle::Block* block = oracle::find_block(blocks, expected);
  ASSERT_NE(block, nullptr) << "valgrind shows no block allocated from " << oracle::describe(expected) << ":\n"
                            << oracle::describe(blocks);
  ASSERT_EQ(block->blocks, 1u) << "the test programs allocate each expected block once";

  auto stacks = stacks_of_blocks(objects, report, block->bytes);
  ASSERT_FALSE(stacks.empty()) << "memscope lists no outstanding block of " << block->bytes << " bytes:\n"
                               << output;
  std::string problems;
  for (const auto& entry : stacks) {
    std::string problem = stack_problem(entry, expected);
    if (problem.empty()) return;
    problems += "  " + problem + " in " + describe_frames(entry) + "\n";
  }
  ADD_FAILURE() << "memscope's stack of the " << block->bytes << "-byte block from "
                << oracle::describe(expected) << ":\n"
                << problems << "valgrind's stack: " << joined(block->stack);
}

void expect_memleak_stack(const std::vector<std::string>& program, const ExpectedStack& expected,
                          const MemleakRun& traced) {
  ASSERT_EQ(traced.finished.exit_code, 0) << traced.finished.err;
  expect_memleak_stack(program, expected, traced.objects, traced.report, traced.finished.out + traced.finished.err);
}

void expect_memleak_stack(const std::vector<std::string>& program, const ExpectedStack& expected) {
  std::string command;
  for (const auto& word : program) command += (command.empty() ? "" : " ") + word;
  expect_memleak_stack(program, expected, memleak_command(command));
}

const ExpectedStack kStrdupFromMakeLabel = {{{"strdup"}}, {{"make_label"}}, {{"main"}}};

TEST(Unwind, StrdupFromMakeLabel) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  expect_memleak_stack({testprog("unwind_libc")}, kStrdupFromMakeLabel);
}

TEST(Unwind, AsprintfFromFormatLabel) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  expect_memleak_stack({testprog("unwind_libc")}, {{{"asprintf"}}, {{"format_label"}}, {{"main"}}});
}

TEST(Unwind, GetlineFromReadLineLeak) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  // getline() is getdelim() with '\n'; glibc may reach it by a jump, leaving only getdelim.
  expect_memleak_stack({testprog("unwind_libc")},
                       {{{"getline", "getdelim", "_IO_getdelim"}}, {{"read_line_leak"}}, {{"main"}}});
}

TEST(Unwind, FopenFromOpenLeak) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  // fopen() jumps to __fopen_internal(), which allocates the FILE: a name only libc's debug info
  // (libc6-dbg) has, so the libc frame is not named here.
  expect_memleak_stack({testprog("unwind_libc")}, {{{"open_leak"}}, {{"main"}}});
}

// Above the handler: the kernel's signal frame (glibc's __restore_rt), then raise() interrupted.
TEST(Unwind, MallocInSignalHandlerReachesTheRaiser) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  expect_memleak_stack({testprog("unwind_signal")},
                       {{{"on_signal"}}, {{"raise", "gsignal"}}, {{"raise_here"}}, {{"main"}}});
}

// memleak probes operator new itself; between it and the named functions may be libstdc++'s own
// std::string code (no frame pointers either) and the templates inlined into them.
TEST(Unwind, CxxStringVectorAndMakeShared) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  MemleakRun traced = memleak_command(testprog("unwind_cxx"));
  for (const char* function : {"make_name", "grow_vector", "make_shared_here"}) {
    SCOPED_TRACE(function);
    expect_memleak_stack({testprog("unwind_cxx")}, {{{function}}, {{"main"}}}, traced);
  }
}

// libunwind_plugin.so is mapped by dlopen() after memleak attached.
TEST(Unwind, LeakInDlopenedLibrary) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  std::vector<std::string> program = {testprog("unwind_dlopen"), testprog("libunwind_plugin.so")};
  expect_memleak_stack(program, {{{"strdup"}}, {{"plugin_make_record"}}, {{"plugin_leak"}}, {{"main"}}});
}

// A library unloaded and another loaded in its place (dlclose, dlopen): the rows the unwinder cached
// for the first one's addresses must not be used for the second's code.
TEST(Unwind, LibrarySwappedAtTheSameAddresses) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  std::vector<std::string> program = {testprog("unwind_dlopen"), testprog("libunwind_plugin.so"), "swap",
                                      testprog("libunwind_plugin_second.so")};
  expect_memleak_stack(program, {{{"strdup"}}, {{"plugin_build_entry"}}, {{"plugin_leak"}}, {{"main"}}});
}

// Text output: the frames of make_label's strdup carry no " [fp]" marker.
TEST(Unwind, TextOutputMarksNoneOfTheDwarfFramesFp) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Finished finished = run({memscope_binary(), "memleak", "-c", testprog("unwind_libc"), "--no-scan", "-T", "1000"},
                          std::chrono::seconds(50));
  ASSERT_EQ(finished.exit_code, 0) << finished.err;
  auto text = lines(finished.out);
  bool found = false;
  for (size_t i = 0; i + 1 < text.size(); i++) {
    if (text[i].find("\t\tmake_label+0x") != 0) continue;
    found = true;
    EXPECT_EQ(text[i].find(" [fp]"), std::string::npos) << text[i];
    EXPECT_NE(text[i + 1].find("\t\tmain+0x"), std::string::npos) << "main does not follow make_label:\n" << text[i + 1];
    EXPECT_EQ(text[i + 1].find(" [fp]"), std::string::npos) << text[i + 1];
  }
  EXPECT_TRUE(found) << "no make_label frame in:\n" << finished.out << finished.err;
}

// `memleak -p` attached to `program` (waiting for its go line): sends the go line, waits for the
// leak, then checks `expected` in an interval report taken after it (the second from then), while
// the program lives. `oracle_program` is what valgrind runs for the expected block.
void expect_stack_while_attached(Child& program, const std::vector<std::string>& oracle_program,
                                 const ExpectedStack& expected) {
  Tracer tracer("memleak", {"-p", std::to_string(program.pid()), "--json", "--no-scan", "-a", "-T", "1000", "1"});
  program.write_stdin("go\n");
  ASSERT_TRUE(program.wait_for("leaked", std::chrono::seconds(10))) << program.err();
  auto reports_in = [&] {
    std::vector<json> reports;
    for (const auto& object : json_objects(tracer.out()))
      if (object["event"] == "outstanding_allocations") reports.push_back(object);
    return reports;
  };
  size_t seen = reports_in().size();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (reports_in().size() < seen + 2 && std::chrono::steady_clock::now() < deadline)
    tracer.wait_for("\x01never printed", std::chrono::milliseconds(100), true);
  auto reports = reports_in();
  ASSERT_GE(reports.size(), seen + 2) << tracer.out() << tracer.err();
  expect_memleak_stack(oracle_program, expected, json_objects(tracer.out()), reports.back(),
                       tracer.out() + tracer.err());
  program.finish();
  Finished stopped = tracer.stop();
  EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
}

// Attached by PID to a program whose libraries are all mapped already; it leaks on the go line.
TEST(Unwind, AttachedByPidBeforeTheGoLine) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Child program({testprog("unwind_libc")}, /*capture_stdin=*/true);
  ASSERT_TRUE(program.wait_for("ready", std::chrono::seconds(10))) << program.err();
  expect_stack_while_attached(program, {testprog("unwind_libc")}, kStrdupFromMakeLabel);
}

// A library replaced on disk while it is mapped (an upgrade under a running daemon): its tables
// must come from the file the process maps, not from the new one at that path.
TEST(Unwind, LibraryReplacedOnDiskWhileMapped) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  ScratchDirectory scratch("unwind-replaced");
  ASSERT_TRUE(scratch.ok());
  std::string plugin = scratch.path() + "/libplugin.so";
  std::filesystem::copy_file(testprog("libunwind_plugin.so"), plugin);
  Child program({testprog("unwind_dlopen"), plugin, "early"}, /*capture_stdin=*/true);
  ASSERT_TRUE(program.wait_for("ready", std::chrono::seconds(10))) << program.err();
  {
    // Garbage where the library was: a new inode at the same path, the mapped one deleted.
    std::string replacement = plugin + ".new";
    std::ofstream(replacement) << std::string(100000, '\x7f');
    std::filesystem::rename(replacement, plugin);
  }
  // valgrind runs the same program on the intact library.
  expect_stack_while_attached(program, {testprog("unwind_dlopen"), testprog("libunwind_plugin.so"), "early"},
                              {{{"strdup"}}, {{"plugin_make_record"}}, {{"plugin_leak"}}, {{"main"}}});
}

// --- brkstack, faults --------------------------------------------------------------------------

// What one run of a go-line program under `memscope TOOL ARGS… -p PID` saw.
struct TracedByPid {
  pid_t pid = 0;
  Finished traced;
};

// Starts `program`, attaches `memscope TOOL ARGS… -p PID` while it waits for its go line, sends it,
// waits for `done_marker`, and stops the tracer; the program then exits.
TracedByPid run_traced_by_pid(const std::vector<std::string>& program, const std::string& tool,
                              std::vector<std::string> args, const std::string& done_marker) {
  Child child(program, /*capture_stdin=*/true);
  if (!child.wait_for("ready", std::chrono::seconds(10))) throw std::runtime_error("did not start: " + child.err());
  args.insert(args.end(), {"-p", std::to_string(child.pid())});
  Tracer tracer(tool, args);
  child.write_stdin("go\n");
  if (!child.wait_for(done_marker, std::chrono::seconds(20)))
    throw std::runtime_error("did not print " + done_marker + ": " + child.err());
  TracedByPid result{child.pid(), tracer.stop()};
  child.finish();
  return result;
}

// The stack entry of `pid` with the largest `weight` in the last report `event` of `out`, held
// to `expected`; the entries with those frames weigh at least `min_weight` together.
void expect_heaviest_stack(const TracedByPid& run, const std::string& event, const std::string& weight,
                           uint64_t min_weight, const ExpectedStack& expected) {
  ASSERT_EQ(run.traced.exit_code, 0) << run.traced.err;
  json heaviest;
  for (const auto& object : json_objects(run.traced.out)) {
    if (object["event"] != event) continue;
    heaviest = json();
    for (const auto& entry : object["stacks"])
      if (entry.value("pid", 0) == run.pid && (heaviest.is_null() || entry[weight] > heaviest[weight])) heaviest = entry;
  }
  ASSERT_FALSE(heaviest.is_null()) << "no " << event << " entry of PID " << run.pid << ":\n"
                                   << run.traced.out << run.traced.err;
  // The weight of every entry of the last report with the expected frames: one call may show as
  // two stacks that differ only in the innermost address (memset's first store into a fresh page is
  // another instruction than its loop's on some CPUs).
  uint64_t whole = 0;
  for (const auto& object : json_objects(run.traced.out))
    if (object["event"] == event) {
      whole = 0;
      for (const auto& entry : object["stacks"])
        if (entry.value("pid", 0) == run.pid && stack_problem(entry, expected).empty())
          whole += entry[weight].get<uint64_t>();
    }
  EXPECT_GE(whole, min_weight) << "heaviest: " << describe_frames(heaviest);
  std::string problem = stack_problem(heaviest, expected);
  EXPECT_TRUE(problem.empty()) << "memscope's stack from " << oracle::describe(expected) << ": " << problem
                               << " in " << describe_frames(heaviest);
}

// sbrk() in Debian's libc keeps the old break in rbp: no frame-pointer walk gets past it.
TEST(Unwind, SbrkGrowthFromGrowHeapHere) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  constexpr int kGrowths = 5;
  constexpr uint64_t kBytes = 10000;
  std::vector<std::string> program = {testprog("unwind_sbrk"), std::to_string(kGrowths), std::to_string(kBytes)};
  const ExpectedStack expected = {{{"brk"}}, {{"sbrk"}}, {{"grow_heap_here"}}, {{"main"}}};
  expect_oracle_shows(oracle::gdb_backtrace(program, "grow_heap_here", {"catch syscall brk", "continue"}), expected);
  if (HasFatalFailure()) return;
  expect_heaviest_stack(run_traced_by_pid(program, "brkstack", {"--json"}, "grown"), "brk_stacks", "bytes",
                        kGrowths * kBytes, expected);
}

// A program started after memscope (machine-wide, --comm): no table is loaded at start. Its
// executable's table loads when it execs and libc's once the loader has mapped it
// (memscope reads its mappings again shortly after the exec), both asynchronously: the test waits
// for memscope to say libc's mapping is stored (-v), then lets the program grow its heap.
TEST(Unwind, ProgramStartedAfterMemscope) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  constexpr int kGrowths = 5;
  constexpr uint64_t kBytes = 10000;
  Tracer tracer("brkstack", {"--json", "-v", "--comm", "unwind_sbrk"});
  Child child({testprog("unwind_sbrk"), std::to_string(kGrowths), std::to_string(kBytes)}, /*capture_stdin=*/true);
  ASSERT_TRUE(child.wait_for("ready", std::chrono::seconds(10))) << child.err();
  // The executable, ld.so, the vDSO and libc: the mappings once the loader has mapped libc.
  ASSERT_TRUE(tracer.wait_for("(4 with unwind tables)", std::chrono::seconds(10)))
      << "libc's mapping never stored:\n" << tracer.err();
  child.write_stdin("go\n");
  ASSERT_TRUE(child.wait_for("grown", std::chrono::seconds(20))) << child.err();
  TracedByPid run{child.pid(), tracer.stop()};
  child.finish();
  expect_heaviest_stack(run, "brk_stacks", "bytes", kGrowths * kBytes,
                        {{{"brk"}}, {{"sbrk"}}, {{"grow_heap_here"}}, {{"main"}}});
}

// Every fault is taken inside libc's memset, a leaf without a frame.
TEST(Unwind, FaultsInMemsetFromTouchPagesHere) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  constexpr uint64_t kPages = 500;
  std::vector<std::string> program = {testprog("unwind_touch"), std::to_string(kPages)};
  const ExpectedStack expected = {{{"touch_pages_here"}}, {{"main"}}};
  // Stops at the first store into the fresh mapping (touch_pages_here's first argument).
  expect_oracle_shows(oracle::gdb_backtrace(program, "touch_pages_here", {"watch -l *(char *)$rdi", "continue"}),
                      expected);
  if (HasFatalFailure()) return;
  expect_heaviest_stack(run_traced_by_pid(program, "faults", {"--json", "-U"}, "touched"), "fault_stacks", "faults",
                        kPages, expected);
}

// --- tables of objects no live process maps -----------------------------------------------------

// What a process maps, from /proc/PID/maps: its executable mappings that get unwind tables (file
// mappings and the vDSO) and the distinct objects behind them (a file by device and inode).
struct ExecutableMappings {
  size_t mappings = 0;
  std::set<std::string> objects;
};

ExecutableMappings executable_mappings(pid_t pid) {
  ExecutableMappings seen;
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  for (std::string line; std::getline(maps, line);) {
    std::istringstream fields(line);
    std::string range, permissions, offset, device, inode, path;
    fields >> range >> permissions >> offset >> device >> inode;
    std::getline(fields >> std::ws, path);
    if (permissions.size() < 3 || permissions[2] != 'x') continue;
    if (path == "[vdso]") {
      seen.objects.insert(path);
    } else if (inode != "0" && !path.empty() && path.front() == '/') {
      seen.objects.insert(device + ":" + inode);
    } else {
      continue;
    }
    seen.mappings++;
  }
  return seen;
}

// The kernel's view of memscope's unwind tables: the array of maps memscope holds (its only one,
// /proc/PID/fdinfo map_type 12), dumped by bpftool as table id -> id of the inner map in that slot.
// nullopt when it cannot be told.
std::optional<std::map<uint64_t, uint64_t>> unwind_tables_in_kernel(pid_t memscope_pid) {
  auto outer = held_bpf_ids(memscope_pid, "map_id", {"map_type:\t12"});
  if (outer.size() != 1) return std::nullopt;
  Finished dumped = run({"/usr/sbin/bpftool", "map", "dump", "id", std::to_string(*outer.begin()), "--json"});
  auto entries = json::parse(dumped.out, nullptr, false);
  if (dumped.exit_code != 0 || !entries.is_array()) return std::nullopt;
  // Keys and values as bytes ("0x2a" strings, little endian): a u32 table id, a u32 map id.
  auto number = [](const json& bytes) {
    uint64_t value = 0;
    for (size_t i = bytes.size(); i-- > 0;) value = value << 8 | std::stoull(bytes[i].get<std::string>(), nullptr, 16);
    return value;
  };
  std::map<uint64_t, uint64_t> tables;
  for (const auto& entry : entries) tables[number(entry["key"])] = number(entry["value"]);
  return tables;
}

// Short-lived processes, each mapping libraries no other one maps (a build, a test suite, a CI
// runner): machine-wide (--comm) faults must free the unwind tables of objects no live process
// maps any more, and reuse their ids. unwind_dlopen_churn's children each dlopen kPerChild copies of
// libunwind_churn.so no other child loads and take kPages faults in each. While a child runs, its
// stacks through every one of its libraries are whole (churn_touch <- touch_library <- main, as
// gdb shows them) and the kernel holds exactly one table per object the child maps (its
// /proc/PID/maps); once it exited, none of its libraries' tables is left, and table ids stay
// below what the objects of one child need. After the parent exits, no table is left at all.
TEST(Unwind, TablesOfObjectsNoProcessMapsAreFreed) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  constexpr int kChildren = 5;
  constexpr int kPerChild = 8;
  constexpr uint64_t kPages = 50;
  ScratchDirectory scratch("unwind-churn");
  ASSERT_TRUE(scratch.ok());
  std::vector<std::string> program = {testprog("unwind_dlopen_churn"), std::to_string(kPages),
                                      std::to_string(kPerChild)};
  for (int i = 0; i < kChildren * kPerChild; i++) {
    std::string copy = scratch.path() + "/libchurn_" + std::to_string(i) + ".so";
    std::filesystem::copy_file(testprog("libunwind_churn.so"), copy);
    program.push_back(copy);
  }
  const ExpectedStack expected = {{{"churn_touch"}}, {{"touch_library"}}, {{"main"}}};
  // gdb's stack at churn_touch in the program doing a child's work itself (`once`: no fork).
  std::vector<std::string> once = program;
  once.insert(once.begin() + 1, "once");
  expect_oracle_shows(oracle::gdb_backtrace(once, "churn_touch"), expected);
  if (HasFatalFailure()) return;
  Tracer tracer("faults", {"--json", "-v", "-U", "--top", "1000", "--comm", "unwind_dlopen_c", "1"});
  Child parent(program, /*capture_stdin=*/true);
  ASSERT_TRUE(parent.wait_for("ready", std::chrono::seconds(10))) << parent.err();
  auto pump = [&](std::chrono::milliseconds time) { tracer.wait_for("\x01never printed", time, true); };
  // The children that printed "child PID loaded", in order.
  auto loaded_children = [&] {
    std::vector<pid_t> children;
    std::string err = parent.err();
    std::regex pattern(R"(child (\d+) loaded)");
    for (auto it = std::sregex_iterator(err.begin(), err.end(), pattern); it != std::sregex_iterator(); ++it)
      children.push_back(std::stoi((*it)[1]));
    return children;
  };
  size_t largest_id = 0;
  size_t most_objects = 0;
  for (int round = 0; round < kChildren; round++) {
    SCOPED_TRACE("child " + std::to_string(round));
    parent.write_stdin("child\n");
    for (int i = 0; i < 100 && loaded_children().size() <= static_cast<size_t>(round); i++)
      parent.wait_for("\x01never printed", std::chrono::milliseconds(100));
    ASSERT_EQ(loaded_children().size(), round + 1u) << parent.err();
    pid_t child = loaded_children().back();
    ExecutableMappings mapped = executable_mappings(child);
    ASSERT_EQ(mapped.objects.size(), kPerChild + 4u) << "the program, ld.so, libc, the vDSO and the libraries";
    most_objects = std::max(most_objects, mapped.objects.size());
    // Wait until memscope stored the child's whole mapping table (-v); the child touches a page in
    // each library again until it has (the unwinder asks for unknown mappings at most every 50 ms).
    std::regex stored("pid " + std::to_string(child) + R"(: \d+ executable mappings stored \((\d+) with)");
    bool loaded = false;
    for (int attempt = 0; attempt < 50 && !loaded; attempt++) {
      pump(std::chrono::milliseconds(200));
      std::string err = tracer.err();
      for (auto it = std::sregex_iterator(err.begin(), err.end(), stored); it != std::sregex_iterator(); ++it)
        loaded = loaded || std::stoul((*it)[1]) == mapped.mappings;
      if (!loaded) parent.write_stdin("prime\n");
    }
    ASSERT_TRUE(loaded) << "the child's tables never loaded:\n" << tracer.err();
    auto tables = unwind_tables_in_kernel(tracer.pid());
    ASSERT_TRUE(tables) << "bpftool cannot show memscope's unwind_tables";
    EXPECT_EQ(tables->size(), mapped.objects.size()) << "tables in the kernel while the child runs";
    if (!tables->empty()) largest_id = std::max<size_t>(largest_id, tables->rbegin()->first);

    parent.write_stdin("touch\n");
    std::string touched = "child " + std::to_string(child) + " touched";
    ASSERT_TRUE(parent.wait_for(touched, std::chrono::seconds(20))) << parent.err();
    // Faults with the whole stack, per library, summed over the reports (an interval may split them).
    std::map<std::string, uint64_t> whole;
    std::string problems;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline) {
      whole.clear();
      problems.clear();
      for (const auto& object : json_objects(tracer.out())) {
        if (object["event"] != "fault_stacks") continue;
        for (const auto& entry : object["stacks"]) {
          if (entry.value("pid", 0) != child || entry["frames"].empty()) continue;
          const auto& top = entry["frames"][0];
          if (top.value("function", "") != "churn_touch") continue;
          std::string problem = stack_problem(entry, expected);
          if (problem.empty())
            whole[top.value("module", "")] += entry["faults"].get<uint64_t>();
          else
            problems += "  " + problem + " in " + describe_frames(entry) + "\n";
        }
      }
      bool all = whole.size() == kPerChild;
      for (const auto& [module, faults] : whole) all = all && faults >= kPages;
      if (all) break;
      pump(std::chrono::milliseconds(200));
    }
    EXPECT_EQ(whole.size(), static_cast<size_t>(kPerChild)) << "libraries with whole stacks; others:\n" << problems;
    for (int i = 0; i < kPerChild; i++) {
      std::string module = "libchurn_" + std::to_string(round * kPerChild + i) + ".so";
      EXPECT_GE(whole[module], kPages) << module << "; stacks not whole:\n" << problems;
    }

    parent.write_stdin("exit\n");
    ASSERT_TRUE(parent.wait_for("child " + std::to_string(child) + " reaped", std::chrono::seconds(10)));
    // None of the child's libraries keeps a table: what is left are the parent's objects at most.
    size_t parent_objects = executable_mappings(parent.pid()).objects.size();
    std::optional<std::map<uint64_t, uint64_t>> left;
    for (int i = 0; i < 50; i++) {
      left = unwind_tables_in_kernel(tracer.pid());
      if (left && left->size() <= parent_objects) break;
      pump(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(left);
    EXPECT_LE(left->size(), parent_objects) << "tables after the child exited";
  }
  // Ids are reused: without, the last child's libraries would have ids past kChildren * kPerChild.
  EXPECT_LT(largest_id, 2 * most_objects);
  parent.finish();
  std::optional<std::map<uint64_t, uint64_t>> left;
  for (int i = 0; i < 50; i++) {
    left = unwind_tables_in_kernel(tracer.pid());
    if (left && left->empty()) break;
    pump(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(left);
  EXPECT_TRUE(left->empty()) << left->size() << " tables left after every traced process exited";
  Finished stopped = tracer.stop();
  EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
}

// --- Debian's own binaries ---------------------------------------------------------------------

bool has_any_function(const json& entry, const std::vector<std::string>& functions) {
  for (const auto& frame : entry["frames"])
    for (const auto& function : functions)
      if (frame.value("function", "") == function) return true;
  return false;
}

std::string describe_report(const json& report) {
  std::string text;
  for (const auto& entry : report["stacks"])
    text += std::to_string(entry.value("bytes", uint64_t{0})) + " B: " + describe_frames(entry) + "\n";
  return text;
}

// sqlite3's shell keeps the :memory: database until its input ends; the rows it holds were
// allocated inside sqlite3_step (or sqlite3_exec), deep in libsqlite3, which has no frame pointers.
TEST(Unwind, Sqlite3InsertsAreUnderSqlite3Step) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  if (!std::filesystem::exists("/usr/bin/sqlite3")) GTEST_SKIP() << "skipped: /usr/bin/sqlite3 is not installed (Debian package sqlite3)";
  Child tracer({memscope_binary(), "memleak", "-c", "/usr/bin/sqlite3 :memory:", "--json", "--no-scan", "-T", "5", "1"},
               /*capture_stdin=*/true);
  ASSERT_TRUE(tracer.wait_for("Hit Ctrl-C to end", std::chrono::seconds(30))) << tracer.err();
  tracer.write_stdin(
      "CREATE TABLE rows(id INTEGER PRIMARY KEY, payload BLOB);\n"
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)\n"
      "  INSERT INTO rows SELECT i, randomblob(200) FROM n;\n"
      "SELECT 'inserted ' || count(*) FROM rows;\n");
  ASSERT_TRUE(tracer.wait_for("inserted 20000", std::chrono::seconds(30), true)) << tracer.out() << tracer.err();
  size_t seen = tracer.out().size();
  // The next full report after the inserts.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  json report;
  while (report.is_null() && std::chrono::steady_clock::now() < deadline) {
    tracer.wait_for("\x01never printed", std::chrono::milliseconds(100), true);
    for (const auto& object : json_objects(tracer.out().substr(seen)))
      if (object["event"] == "outstanding_allocations") report = object;
  }
  Finished finished = tracer.finish();  // end of input: sqlite3 exits, memleak with it
  ASSERT_FALSE(report.is_null()) << finished.out << finished.err;
  EXPECT_EQ(finished.exit_code, 0) << finished.err;
  ASSERT_FALSE(report["stacks"].empty()) << finished.out;
  // Stacks are sorted largest first.
  const std::vector<std::string> in_sqlite = {"sqlite3_step", "sqlite3_exec"};
  EXPECT_TRUE(has_any_function(report["stacks"][0], in_sqlite))
      << "the largest stack has neither sqlite3_step nor sqlite3_exec:\n" << describe_report(report);
  uint64_t total = 0, under_sqlite = 0;
  for (const auto& entry : report["stacks"]) {
    total += entry["bytes"].get<uint64_t>();
    if (has_any_function(entry, in_sqlite)) under_sqlite += entry["bytes"].get<uint64_t>();
  }
  EXPECT_GE(2 * under_sqlite, total) << "most of the top stacks' bytes should be under sqlite3_step:\n"
                                     << describe_report(report);
}

// perl (libperl linked into /usr/bin/perl, no frame pointers) churning a hash: the interpreter's
// allocations are under its run loop.
TEST(Unwind, PerlHashChurnIsUnderTheRunLoop) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Finished finished = run({memscope_binary(), "memleak", "--json", "--no-scan", "-T", "20", "-c",
                           "/usr/bin/perl -e 'my %h; for my $round (1 .. 3) { $h{$_} = \"v\" x 64 for 1 .. 20000; "
                           "delete $h{$_} for 1 .. 10000 } print STDERR scalar(keys %h), \"\\n\"'"},
                          std::chrono::seconds(50));
  ASSERT_EQ(finished.exit_code, 0) << finished.err;
  json report;
  for (const auto& object : json_objects(finished.out))
    if (object["event"] == "outstanding_allocations") report = object;
  ASSERT_TRUE(report.is_object()) << finished.out << finished.err;
  bool found = false;
  for (const auto& entry : report["stacks"])
    if (has_any_function(entry, {"perl_run", "Perl_runops_standard"})) found = true;
  EXPECT_TRUE(found) << "no stack with perl_run or Perl_runops_standard:\n" << describe_report(report);
}

// --- --stack-mode ------------------------------------------------------------------------------

// The old frame-pointer walk, kept as --stack-mode fp: strdup's stack from make_label loses
// make_label (strdup has no frame, and make_label keeps no frame pointer), as the oracle shows it.
TEST(Unwind, StackModeFpLosesMakeLabel) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  oracle::Blocks blocks = oracle::valgrind_blocks({testprog("unwind_libc")});
  ASSERT_TRUE(blocks.error.empty()) << blocks.error;
  const oracle::Block* block = oracle::find_block(blocks, kStrdupFromMakeLabel);
  ASSERT_NE(block, nullptr) << oracle::describe(blocks);
  MemleakRun traced = memleak_command(testprog("unwind_libc"), {"--stack-mode", "fp"});
  ASSERT_EQ(traced.finished.exit_code, 0) << traced.finished.err;
  auto stacks = stacks_of_blocks(traced.objects, traced.report, block->bytes);
  ASSERT_EQ(stacks.size(), 1u) << traced.finished.out << traced.finished.err;
  EXPECT_NE(oracle::first_missing_frame(functions_of(stacks[0]), kStrdupFromMakeLabel), "")
      << "--stack-mode fp is expected to lose make_label, yet shows " << describe_frames(stacks[0]);
  EXPECT_LT(stacks[0]["frames"].size(), block->stack.size()) << describe_frames(stacks[0]);
}

TEST(Unwind, StackModeIsACommonOptionOfStackTools) {
  for (const char* tool : {"memleak", "brkstack", "faults", "mallocsnoop"}) {
    SCOPED_TRACE(tool);
    Finished help = run({memscope_binary(), tool, "--help"});
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_NE(help.out.find("--stack-mode"), std::string::npos) << help.out;
    Finished bad = run({memscope_binary(), tool, "--stack-mode", "frames", "-d", "1"});
    EXPECT_EQ(bad.exit_code, 2) << bad.err;
    EXPECT_EQ(lines(bad.err).size(), 1u) << bad.err;
    EXPECT_EQ(bad.err.rfind("memscope", 0), 0u) << bad.err;
    // The line names the option and what it accepts.
    EXPECT_NE(bad.err.find("--stack-mode"), std::string::npos) << bad.err;
    EXPECT_NE(bad.err.find("dwarf"), std::string::npos) << bad.err;
    EXPECT_EQ(bad.out, "");
  }
}

}  // namespace
}  // namespace memscope::test
