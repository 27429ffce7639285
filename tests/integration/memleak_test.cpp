// memleak traces what test programs leak, exactly: the seed's fibonacci leak by PID, one leak per
// allocator function (exact bytes each) from a command traced from its first instruction, C++ new
// inside a shared library, a program that lives a few milliseconds, frees on another thread, the
// size filters, sampling and --combined-only, and kernel memory held by pipes coming and going.
// (The LEAKED/REACHABLE verdicts are asserted in memleak_scan_test.cpp.)
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "harness.hpp"

namespace memscope::test {
namespace {

using nlohmann::json;

std::string read_file(const std::string& path) {
  std::ifstream stream(path);
  std::stringstream text;
  text << stream.rdbuf();
  return text.str();
}

bool has_frame(const json& entry, const std::set<std::string>& functions) {
  for (const auto& frame : entry["frames"])
    if (functions.count(frame["function"].get<std::string>())) return true;
  return false;
}

// The stacks of the last report whose first frame is `function` (user mode: the allocator's caller).
// Reads the child's output until `done` holds or the timeout passes.
template <typename Predicate>
bool wait_until(Child& child, std::chrono::milliseconds timeout, Predicate done) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    child.wait_for("\x01never printed", std::chrono::milliseconds(100), true);  // reads for 100 ms
  }
  return true;
}

// memscope memleak ARGS… run to completion (a -c command that ends by itself).
Finished memleak(std::vector<std::string> args) {
  std::vector<std::string> argv = {memscope_binary(), "memleak"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, std::chrono::seconds(90));
}

// The final report of `memleak -c COMMAND --json --no-scan -T 200 extra…`.
json final_report(const std::string& command, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"-c", command, "--json", "--no-scan", "-T", "200"};
  args.insert(args.end(), extra.begin(), extra.end());
  Finished finished = memleak(args);
  EXPECT_EQ(finished.exit_code, 0) << finished.err;
  auto all = outstanding_reports(finished.out);
  if (all.empty()) {
    ADD_FAILURE() << "no report in:\n" << finished.out << finished.err;
    return json::object({{"stacks", json::array()}});
  }
  return all.back();
}

// function on top of the stack -> exact outstanding bytes (1 allocation each), from leak_funcs.c.
const std::map<std::string, uint64_t> kLeakFuncsExpected = {
    {"leak_via_malloc", 11001},       {"leak_via_calloc", 11011},         {"leak_via_realloc", 11021},
    {"leak_via_reallocarray", 11031}, {"leak_via_posix_memalign", 11041}, {"leak_via_aligned_alloc", 11072},
    {"leak_via_memalign", 11081},     {"leak_via_valloc", 11091},         {"leak_via_pvalloc", 11101},
    {"leak_via_mmap", 12288},         {"leak_via_mremap", 20480},         {"leak_on_thread", 31013},
    // Their realloc/mremap failed: the block is still the one allocated first (the record the call's
    // entry took out is put back).
    {"leak_despite_failed_realloc", 11121}, {"leak_despite_failed_mremap", 28672},
};

void expect_leak_funcs_report(const json& report, const std::string& program) {
  for (const auto& [function, bytes] : kLeakFuncsExpected) {
    auto found = entries_from(report, function);
    ASSERT_EQ(found.size(), 1u) << function << " in:\n" << describe(report);
    EXPECT_EQ(found[0]["bytes"], bytes) << function;
    EXPECT_EQ(found[0]["allocations"], 1u) << function;
    EXPECT_EQ(found[0]["frames"][0]["module"], program) << function;
    EXPECT_EQ(found[0]["comm"], program.substr(0, 15));  // the kernel keeps 15 characters
  }
  // Freed again (also by another thread), or never allocated: not outstanding.
  for (const char* function :
       {"allocate_and_free", "fail_to_allocate", "allocate_for_other_thread", "free_from_other_thread"})
    EXPECT_TRUE(entries_from(report, function).empty()) << function << " in:\n" << describe(report);
  std::set<uint64_t> freed_sizes = {64,    32,    21001, 21011, 21021, 21031, 21041,    21056,
                                    21081, 21091, 21101, 21111, 24576, 31001, 8 * 31001};
  for (const auto& entry : report["stacks"]) {
    if (!has_frame(entry, {"main", "allocate_for_other_thread"})) continue;
    EXPECT_EQ(freed_sizes.count(entry["bytes"].get<uint64_t>()), 0u) << describe(report);
  }
}

// The seed program leaks one 8 KiB block from fibonacci() a second: waits (15 s at most) for a
// report holding at least `blocks` of them.
bool wait_for_fibonacci_blocks(Tracer& tracer, uint64_t blocks) {
  return wait_until(tracer, std::chrono::seconds(15), [&] {
    for (const auto& report : outstanding_reports(tracer.out()))
      for (const auto& entry : entries_from(report, "fibonacci"))
        if (entry["allocations"].get<uint64_t>() >= blocks) return true;
    return false;
  });
}

TEST(Memleak, SeedProgramNamesFibonacciAndChild) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Child seed({testprog("leak_seed")});
  usleep(200000);
  Tracer tracer("memleak", {"-p", std::to_string(seed.pid()), "--json", "--no-scan", "-o", "0", "1"});
  // Every second one more 8 KiB block; wait for a report holding at least two.
  bool seen = wait_for_fibonacci_blocks(tracer, 2);
  Finished traced = tracer.stop();
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  ASSERT_TRUE(seen) << traced.out << traced.err;
  for (const auto& report : outstanding_reports(traced.out)) {
    for (const auto& entry : entries_from(report, "fibonacci")) {
      ASSERT_GE(entry["frames"].size(), 2u);
      EXPECT_EQ(entry["frames"][1]["function"], "child");
      EXPECT_EQ(entry["frames"][0]["module"], "leak_seed");
      EXPECT_TRUE(entry["frames"][0]["file"].get<std::string>().ends_with("leak.c")) << entry.dump();
      EXPECT_EQ(entry["pid"], seed.pid());
      EXPECT_EQ(entry["comm"], "leak_seed");
      // calloc(1024, sizeof(long long)) per call.
      EXPECT_EQ(entry["bytes"].get<uint64_t>(), 8192 * entry["allocations"].get<uint64_t>());
    }
  }
}

TEST(Memleak, TextOutputKeepsBccLayout) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Child seed({testprog("leak_seed")});
  usleep(200000);
  Tracer tracer("memleak", {"-p", std::to_string(seed.pid()), "--no-scan", "-o", "0", "1"});
  tracer.wait_for("fibonacci", std::chrono::seconds(10), true);
  Finished traced = tracer.stop();
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  std::regex title(R"(^\[\d\d:\d\d:\d\d\] Top 10 stacks with outstanding allocations:$)");
  std::regex heading(R"(^\t(\d+) bytes in (\d+) allocations from stack$)");
  std::regex fibonacci(R"(^\t\tfibonacci\+0x[0-9a-f]+ \[leak_seed\] \(leak\.c:\d+\)$)");
  std::regex child(R"(^\t\tchild\+0x[0-9a-f]+ \[leak_seed\] \(leak\.c:\d+\)$)");
  auto text = lines(traced.out);
  bool titled = false, found = false;
  for (size_t i = 0; i + 2 < text.size(); i++) {
    if (std::regex_match(text[i], title)) titled = true;
    std::smatch counts;
    if (std::regex_match(text[i], counts, heading) && std::regex_match(text[i + 1], fibonacci) &&
        std::regex_match(text[i + 2], child)) {
      found = true;
      EXPECT_EQ(std::stoull(counts[1]), 8192 * std::stoull(counts[2]));
    }
  }
  EXPECT_TRUE(titled) << traced.out;
  EXPECT_TRUE(found) << traced.out;
}

TEST(Memleak, EachAllocatorFunctionLeaksItsExactBytes) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  expect_leak_funcs_report(final_report(testprog("leak_funcs")), "leak_funcs");
}

TEST(Memleak, StaticExecutableIsItsOwnAllocator) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  // Built with the tests (tests/testprogs/memleak.cmake): missing is a build regression.
  ASSERT_TRUE(std::filesystem::exists(testprog("leak_funcs_static")));
  expect_leak_funcs_report(final_report(testprog("leak_funcs_static")), "leak_funcs_static");
}

TEST(Memleak, CxxNewInSharedLibraryNamesTheCaller) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  std::string library = testprog("liballoc_new.so");
  ASSERT_TRUE(std::filesystem::exists(library)) << library << " is built with the tests (tests/testprogs/memleak.cmake)";
  json report = final_report(testprog("leak_cxx") + " " + library + " 3");
  auto widgets = entries_from(report, "widgets::make_widget()");
  ASSERT_EQ(widgets.size(), 1u) << describe(report);
  EXPECT_EQ(widgets[0]["bytes"], 3 * 4008u);
  EXPECT_EQ(widgets[0]["allocations"], 3u);
  EXPECT_EQ(widgets[0]["frames"][0]["module"], "liballoc_new.so");
  EXPECT_EQ(widgets[0]["frames"][1]["function"], "leak_widgets");
  auto buffers = entries_from(report, "widgets::make_buffer(unsigned long)");
  ASSERT_EQ(buffers.size(), 1u) << describe(report);
  EXPECT_EQ(buffers[0]["bytes"], 50021u);
  // new int[5003] / delete[] in main: not outstanding.
  for (const auto& entry : entries_from(report, "main"))
    EXPECT_NE(entry["bytes"], 20012u) << describe(report);
}

// -O by library name: jemalloc preloaded into a running program replaces glibc's malloc, and is
// also what memleak probes by default, since the process maps it.
TEST(Memleak, JemallocByNameInARunningProcess) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  const std::string jemalloc = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
  if (!std::filesystem::exists(jemalloc))
    GTEST_SKIP() << "skipped: " << jemalloc << " is not installed (Debian package libjemalloc2)";
  Child seed({"/usr/bin/env", "LD_PRELOAD=" + jemalloc, testprog("leak_seed")});
  std::string maps_path = "/proc/" + std::to_string(seed.pid()) + "/maps";
  bool mapped = false;
  for (int i = 0; i < 50 && !mapped; i++, usleep(100000))
    mapped = read_file(maps_path).find("libjemalloc.so.2") != std::string::npos;
  ASSERT_TRUE(mapped) << read_file(maps_path);
  for (const auto& object : std::vector<std::vector<std::string>>{{"-O", "jemalloc"}, {}}) {
    std::vector<std::string> args = {"-p", std::to_string(seed.pid()), "--json", "--no-scan", "-o", "0"};
    args.insert(args.end(), object.begin(), object.end());
    args.push_back("1");
    Tracer tracer("memleak", args);
    bool seen = wait_for_fibonacci_blocks(tracer, 2);
    Finished traced = tracer.stop();
    ASSERT_EQ(traced.exit_code, 0) << traced.err;
    EXPECT_TRUE(seen) << traced.out << traced.err;
    EXPECT_NE(traced.err.find("(libjemalloc.so.2)"), std::string::npos) << traced.err;
    for (const auto& report : outstanding_reports(traced.out))
      for (const auto& entry : entries_from(report, "fibonacci")) {
        EXPECT_EQ(entry["frames"][1]["function"], "child");
        EXPECT_EQ(entry["bytes"].get<uint64_t>(), 8192 * entry["allocations"].get<uint64_t>());
      }
  }
}

TEST(Memleak, ShortLivedCommandIsTracedFromStartToAtexit) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  auto start = std::chrono::steady_clock::now();
  Finished alone = run({testprog("leak_short")});
  auto lifetime = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(alone.exit_code, 0);
  EXPECT_LT(lifetime, std::chrono::milliseconds(50)) << "leak_short is meant to live less than 50 ms";

  json report = final_report(testprog("leak_short"));
  std::multiset<uint64_t> briefly;
  for (const auto& entry : entries_from(report, "leak_briefly"))
    briefly.insert(entry["bytes"].get<uint64_t>());
  EXPECT_EQ(briefly, (std::multiset<uint64_t>{40961, 40973})) << describe(report);
  // Allocated by an atexit handler, after main returned: the report happens after it.
  auto at_exit = entries_from(report, "leak_at_exit");
  ASSERT_EQ(at_exit.size(), 1u) << describe(report);
  EXPECT_EQ(at_exit[0]["bytes"], 40981u);
}

TEST(Memleak, SizeFiltersKeepOnlyTheirRange) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  json report = final_report(testprog("leak_funcs"), {"-z", "11030", "-Z", "11050"});
  for (const auto& [function, bytes] : kLeakFuncsExpected) {
    auto found = entries_from(report, function);
    bool in_range = bytes >= 11030 && bytes <= 11050;
    EXPECT_EQ(found.size(), in_range ? 1u : 0u) << function << " in:\n" << describe(report);
  }
  for (const auto& entry : report["stacks"]) {
    EXPECT_GE(entry["bytes"].get<uint64_t>() / entry["allocations"].get<uint64_t>(), 11030u);
  }
}

TEST(Memleak, CombinedOnlyCountsTheSameInTheKernel) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  expect_leak_funcs_report(final_report(testprog("leak_funcs"), {"--combined-only"}), "leak_funcs");
}

TEST(Memleak, SamplingTracksEveryNthAllocation) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  json report = final_report(testprog("leak_many"), {"-s", "10"});
  auto found = entries_from(report, "leak_many_blocks");
  ASSERT_EQ(found.size(), 1u) << describe(report);
  // 10000 mallocs of 100 bytes; the counter is per CPU, so a migration may lose one sample per CPU.
  uint64_t count = found[0]["allocations"];
  EXPECT_GE(count, 990u);
  EXPECT_LE(count, 1001u);
  EXPECT_EQ(found[0]["bytes"], 100 * count);
}

TEST(Memleak, ShowAllocsListsEachBlockOfTheReportedStacks) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Finished finished = memleak({"-c", testprog("leak_short"), "--json", "--no-scan", "-a"});
  ASSERT_EQ(finished.exit_code, 0) << finished.err;
  auto all = outstanding_reports(finished.out);
  ASSERT_FALSE(all.empty()) << finished.out;
  std::map<uint64_t, uint64_t> size_to_stack;
  for (const auto& object : json_objects(finished.out))
    if (object["event"] == "allocation") {
      EXPECT_GT(object["address"].get<uint64_t>(), 0u);
      size_to_stack[object["size"].get<uint64_t>()] = object["stack_id"].get<int64_t>();
    }
  for (uint64_t size : {40961u, 40973u, 40981u}) EXPECT_EQ(size_to_stack.count(size), 1u) << finished.out;
  auto at_exit = entries_from(all.back(), "leak_at_exit");
  ASSERT_EQ(at_exit.size(), 1u);
  EXPECT_EQ(at_exit[0]["stack_id"].get<uint64_t>(), size_to_stack[40981]);
}

TEST(Memleak, TraceOptionPrintsEachCall) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Finished finished = memleak({"-c", testprog("leak_short"), "--json", "--no-scan", "-t"});
  ASSERT_EQ(finished.exit_code, 0) << finished.err;
  std::multiset<uint64_t> allocated;
  for (const auto& object : json_objects(finished.out))
    if (object["event"] == "alloc") allocated.insert(object["size"].get<uint64_t>());
  for (uint64_t size : {40961u, 40973u, 40981u}) EXPECT_EQ(allocated.count(size), 1u) << finished.out;
}

TEST(Memleak, FoldedOutputForFlameGraphs) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Finished finished = memleak({"-c", testprog("leak_short"), "--folded", "--no-scan"});
  ASSERT_EQ(finished.exit_code, 0) << finished.err;
  std::regex briefly(R"(^leak_short;.*;main;leak_briefly (40961|40973)$)");
  int matches = 0;
  for (const auto& line : lines(finished.out))
    if (std::regex_match(line, briefly)) matches++;
  EXPECT_EQ(matches, 2) << finished.out;
}

TEST(Memleak, BadInputIsOneClearLine) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Finished both = memleak({"-p", std::to_string(getpid()), "-c", "true"});
  EXPECT_EQ(both.exit_code, 1);
  EXPECT_NE(both.err.find("-p and -c exclude each other"), std::string::npos) << both.err;
  Finished missing = memleak({"-c", "memscope-no-such-command --flag"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("memscope-no-such-command: command not found"), std::string::npos)
      << missing.err;
  Finished quote = memleak({"-c", "echo 'unterminated"});
  EXPECT_EQ(quote.exit_code, 1);
  EXPECT_NE(quote.err.find("unterminated single quote"), std::string::npos) << quote.err;
  Finished script = memleak({"-c", std::string(MEMSCOPE_SOURCE_DIR) + "/scripts/demo.sh"});
  EXPECT_EQ(script.exit_code, 1);
  EXPECT_NE(script.err.find("not an ELF executable"), std::string::npos) << script.err;
  for (const auto* result : {&both, &missing, &quote, &script})
    EXPECT_EQ(lines(result->err).size(), 1u) << result->err;
}

// Every stack of a kernel report has frames (a lost stack is one "[stack lost]" frame) and starts
// at a kernel function, not in the BPF program or the tracepoint machinery that ran it.
void expect_kernel_stacks_start_at_the_allocator(const json& report) {
  for (const auto& entry : report["stacks"]) {
    ASSERT_FALSE(entry["frames"].empty()) << entry.dump();
    std::string top = top_function(entry);
    EXPECT_FALSE(top.starts_with("bpf_prog_") || top.starts_with("bpf_trace_run") ||
                 top.starts_with("__bpf_trace_") || top.starts_with("__traceiter_"))
        << top << " on top of " << entry.dump();
  }
}

// Kernel memory held by `holder` (which prints `holding` once it holds it, then releases it on a
// line on stdin and prints "released") shows up under `functions` and goes away.
struct KernelHold {
  std::vector<std::string> holder;
  std::string holding;
  std::set<std::string> functions;
  uint64_t min_bytes;
};

// The last report of the tracer that came at least two reports after the first `seen`.
json report_after(Tracer& tracer, size_t seen) {
  wait_until(tracer, std::chrono::seconds(10), [&] { return outstanding_reports(tracer.out()).size() >= seen + 2; });
  auto all = outstanding_reports(tracer.out());
  return all.size() >= seen + 2 ? all.back() : json();
}

// New slab pages taken on the way stay with the slab cache after the objects are freed: not
// counted.
uint64_t held_bytes(const json& report, const std::set<std::string>& functions) {
  const std::set<std::string> slab_growth = {"allocate_slab", "new_slab", "___slab_alloc"};
  uint64_t bytes = 0;
  for (const auto& entry : report["stacks"])
    if (has_frame(entry, functions) && !has_frame(entry, slab_growth))
      bytes += entry["bytes"].get<uint64_t>();
  return bytes;
}

void expect_pipe_memory_comes_and_goes(const std::vector<std::string>& extra_args) {
  std::vector<std::string> args = {"--comm", "leak_kpipes", "-o", "0", "-T", "100", "--json"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  args.push_back("1");
  Tracer tracer("memleak", args);
  Child holder({testprog("leak_kpipes"), "256"}, /*capture_stdin=*/true);
  ASSERT_TRUE(holder.wait_for("holding 256 pipes", std::chrono::seconds(10))) << holder.err();

  // Pages holding the pipes' data (pipe_write, anon_pipe_write since 6.14) and the pipe_inode_info
  // plus buffer array of each pipe (kmalloc in alloc_pipe_info).
  const std::set<std::string> writers = {"pipe_write", "anon_pipe_write"};
  json holding = report_after(tracer, outstanding_reports(tracer.out()).size());
  ASSERT_FALSE(holding.is_null()) << tracer.out() << tracer.err();
  expect_kernel_stacks_start_at_the_allocator(holding);
  uint64_t page_bytes = held_bytes(holding, writers);
  uint64_t pipe_info_bytes = held_bytes(holding, {"alloc_pipe_info"});
  EXPECT_GE(page_bytes, 256u * 4096) << describe(holding) << tracer.err();
  // At least one 192-byte pipe_inode_info and one 640-byte buffer array per pipe.
  EXPECT_GE(pipe_info_bytes, 256u * (192 + 640)) << describe(holding) << tracer.err();

  holder.write_stdin("release\n");
  ASSERT_TRUE(holder.wait_for("released", std::chrono::seconds(10))) << holder.err();
  json released = report_after(tracer, outstanding_reports(tracer.out()).size());
  ASSERT_FALSE(released.is_null()) << tracer.err();
  EXPECT_LT(held_bytes(released, writers), page_bytes / 10) << describe(released);
  EXPECT_LT(held_bytes(released, {"alloc_pipe_info"}), pipe_info_bytes / 10) << describe(released);
  holder.write_stdin("exit\n");
  holder.finish();
  Finished traced = tracer.stop();
  EXPECT_EQ(traced.exit_code, 0) << traced.err;
}

TEST(Memleak, KernelModeSeesPipeMemoryComeAndGo) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  expect_pipe_memory_comes_and_goes({});
}

// Each hook kind of kernel mode, forced: the same memory, the same stacks.
TEST(Memleak, KernelModeOnRawTracepoints) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  expect_pipe_memory_comes_and_goes({"--probe", "raw_tp"});
}

TEST(Memleak, KernelModeOnClassicTracepoints) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  expect_pipe_memory_comes_and_goes({"--probe", "tracepoint"});
}

TEST(Memleak, KernelModeOnBtfTracepoints) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  expect_pipe_memory_comes_and_goes({"--probe", "tp_btf"});
}

TEST(Memleak, PercpuModeSeesPerCpuMapsComeAndGo) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Tracer tracer("memleak", {"--percpu", "--comm", "leak_kpercpu", "-o", "0", "-T", "100", "--json", "1"});
  Child holder({testprog("leak_kpercpu"), "64"}, /*capture_stdin=*/true);
  ASSERT_TRUE(holder.wait_for("holding 64 maps", std::chrono::seconds(10))) << holder.err();
  // 64 maps x 16 entries, each a 64-byte percpu allocation (bytes_alloc counts every CPU's copy).
  const std::set<std::string> entries = {"array_map_alloc"};
  json holding = report_after(tracer, outstanding_reports(tracer.out()).size());
  ASSERT_FALSE(holding.is_null()) << tracer.out() << tracer.err();
  expect_kernel_stacks_start_at_the_allocator(holding);
  uint64_t held = held_bytes(holding, entries);
  EXPECT_GE(held, 64u * 16 * 64) << describe(holding);
  uint64_t held_count = 0;
  for (const auto& entry : holding["stacks"])
    if (has_frame(entry, entries)) held_count += entry["allocations"].get<uint64_t>();
  EXPECT_EQ(held_count, 64u * 16) << describe(holding);

  holder.write_stdin("release\n");
  ASSERT_TRUE(holder.wait_for("released", std::chrono::seconds(10))) << holder.err();
  // Maps are freed from a workqueue after the last close: a report or two later.
  json released;
  for (int attempt = 0; attempt < 3; attempt++) {
    released = report_after(tracer, outstanding_reports(tracer.out()).size());
    if (!released.is_null() && held_bytes(released, entries) < held / 10) break;
  }
  ASSERT_FALSE(released.is_null()) << tracer.err();
  EXPECT_LT(held_bytes(released, entries), held / 10) << describe(released);
  holder.write_stdin("exit\n");
  holder.finish();
  Finished traced = tracer.stop();
  EXPECT_EQ(traced.exit_code, 0) << traced.err;
}

TEST(Memleak, LeavesNoBpfProgramBehind) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  int mark = highest_bpf_program_id();
  ASSERT_GE(mark, 0) << "bpftool prog show failed";
  Finished finished = memleak({"-c", testprog("leak_short"), "--no-scan"});
  ASSERT_EQ(finished.exit_code, 0) << finished.err;
  EXPECT_EQ(bpf_programs_loaded_after(mark), std::vector<std::string>{});
}

}  // namespace
}  // namespace memscope::test
