// memleak --sample-bytes: the in-process sampler (libmemscope-sampler.so) with the test programs.
// With --sample-bytes 1 every allocation is a sample of its own size, so the reports must be
// exact (the same figures the full-fidelity tests expect); with a real interval the estimates must
// come within 20 % of what sampled_estimates.c allocates, and its kept memory is never LEAKED.
// Expected values come from the programs' sources, never from memscope.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "harness.hpp"

namespace memscope::test {
namespace {

using nlohmann::json;

// Stacks that allocated and hold nothing any more are listed too (alloc_bytes only): the stacks
// from `function` that still hold memory.
std::vector<json> outstanding_from(const json& report, const std::string& function) {
  std::vector<json> found;
  for (const auto& entry : entries_from(report, function))
    if (entry["bytes"].get<uint64_t>() > 0) found.push_back(entry);
  return found;
}

Finished memleak(std::vector<std::string> args) {
  std::vector<std::string> argv = {memscope_binary(), "memleak"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, std::chrono::seconds(120));
}

// The final report of `memleak -c COMMAND --sample-bytes BYTES --json -T 200 extra…`.
json final_report(const std::string& command, const std::string& bytes, std::vector<std::string> extra = {},
                  Finished* finished_out = nullptr) {
  std::vector<std::string> args = {"-c", command, "--sample-bytes", bytes, "--json", "-T", "200"};
  args.insert(args.end(), extra.begin(), extra.end());
  Finished finished = memleak(args);
  EXPECT_EQ(finished.exit_code, 0) << finished.err;
  if (finished_out) *finished_out = finished;
  auto all = outstanding_reports(finished.out);
  if (all.empty()) {
    ADD_FAILURE() << "no report in:\n" << finished.out << finished.err;
    return json::object({{"stacks", json::array()}});
  }
  return all.back();
}

// One entry from `function`, with exactly these bytes in these many allocations, marked estimated.
void expect_exact(const json& report, const std::string& function, uint64_t bytes, uint64_t allocations) {
  auto found = outstanding_from(report, function);
  ASSERT_EQ(found.size(), 1u) << function << " in:\n" << describe(report);
  EXPECT_EQ(found[0]["bytes"], bytes) << function;
  EXPECT_EQ(found[0]["allocations"], allocations) << function;
  EXPECT_EQ(found[0]["alloc_bytes"], bytes) << function;
  EXPECT_EQ(found[0]["estimated"], true) << function;
}

void expect_absent(const json& report, const std::string& function) {
  for (const auto& entry : entries_from(report, function))
    EXPECT_EQ(entry["bytes"], 0u) << function << " in:\n" << describe(report);
}

// leak_funcs.c's malloc family, exact (the sampler does not wrap mmap/mremap: those are absent).
TEST(SampledMemleak, EachAllocatorFunctionIsExactWhenEveryByteIsSampled) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  json report = final_report(testprog("leak_funcs"), "1", {"--no-scan"});
  const std::map<std::string, uint64_t> expected = {
      {"leak_via_malloc", 11001},       {"leak_via_calloc", 11011},         {"leak_via_realloc", 11021},
      {"leak_via_reallocarray", 11031}, {"leak_via_posix_memalign", 11041}, {"leak_via_aligned_alloc", 11072},
      {"leak_via_memalign", 11081},     {"leak_via_valloc", 11091},         {"leak_via_pvalloc", 11101},
      {"leak_on_thread", 31013},
  };
  for (const auto& [function, bytes] : expected) expect_exact(report, function, bytes, 1);
  for (const char* function : {"allocate_and_free", "fail_to_allocate", "allocate_for_other_thread",
                               "free_from_other_thread", "leak_via_mmap", "leak_via_mremap"})
    EXPECT_TRUE(outstanding_from(report, function).empty()) << function << " in:\n" << describe(report);
  // What was allocated and freed again still shows in the allocated totals.
  auto freed = entries_from(report, "allocate_and_free");
  ASSERT_FALSE(freed.empty()) << describe(report);
  for (const auto& entry : freed) EXPECT_GT(entry["alloc_bytes"].get<uint64_t>(), 0u) << entry.dump();
}

// An allocator preloaded by the user (jemalloc) stays the allocator: the sampler comes first in
// LD_PRELOAD and forwards to the next definition, jemalloc's. (sampled_hard rather than leak_funcs,
// which frees a block from glibc's pvalloc, which jemalloc lacks, with jemalloc's free.)
TEST(SampledMemleak, PreloadedJemallocIsWrappedToo) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  const std::string jemalloc = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
  if (!std::filesystem::exists(jemalloc))
    GTEST_SKIP() << "skipped: " << jemalloc << " is not installed (Debian package libjemalloc2)";
  // memscope inherits LD_PRELOAD (through env: the test's own environment stays as it is) and puts
  // the sampler in front of it.
  Finished finished = run({"/usr/bin/env", "LD_PRELOAD=" + jemalloc, memscope_binary(), "memleak", "-c",
                           testprog("sampled_hard"), "--sample-bytes", "1", "--json", "--no-scan", "-T", "200", "-v"},
                          std::chrono::seconds(120));
  ASSERT_EQ(finished.exit_code, 0) << finished.err;
  auto all = outstanding_reports(finished.out);
  ASSERT_FALSE(all.empty()) << finished.out << finished.err;
  const json& report = all.back();
  EXPECT_NE(finished.err.find("libjemalloc.so.2"), std::string::npos) << finished.err;  // -v: what it maps
  EXPECT_NE(finished.out.find("sampled_hard ok"), std::string::npos) << finished.out;
  expect_exact(report, "thread_leak()", 40000, 40);
  expect_exact(report, "realloc_moves()", 200000, 1);
  expect_exact(report, "new_aligned()", 7001, 1);
  expect_exact(report, "new_object()", 4008, 1);
  for (const char* function : {"freed_pairs()", "churn()", "child_leak()"}) expect_absent(report, function);
}

// The seed's leak: one calloc(1024, 8) from fibonacci() a second, on a child thread.
TEST(SampledMemleak, SeedLeakNamesFibonacciAndChild) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  json report = final_report(testprog("leak_seed"), "1", {"--no-scan", "-d", "3"});
  auto found = entries_from(report, "fibonacci");
  ASSERT_EQ(found.size(), 1u) << describe(report);
  const json& entry = found[0];
  EXPECT_GE(entry["allocations"].get<uint64_t>(), 2u);
  EXPECT_EQ(entry["bytes"].get<uint64_t>(), 8192 * entry["allocations"].get<uint64_t>());
  ASSERT_GE(entry["frames"].size(), 2u);
  EXPECT_EQ(entry["frames"][0]["module"], "leak_seed");
  EXPECT_EQ(entry["frames"][1]["function"], "child");
  EXPECT_EQ(entry["comm"], "leak_seed");
}

TEST(SampledMemleak, CxxNewInSharedLibraryNamesTheCaller) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  std::string library = testprog("liballoc_new.so");
  ASSERT_TRUE(std::filesystem::exists(library)) << library;
  json report = final_report(testprog("leak_cxx") + " " + library + " 3", "1", {"--no-scan"});
  expect_exact(report, "widgets::make_widget()", 3 * 4008, 3);
  auto widgets = outstanding_from(report, "widgets::make_widget()");
  ASSERT_FALSE(widgets.empty());
  EXPECT_EQ(widgets[0]["frames"][0]["module"], "liballoc_new.so");
  EXPECT_EQ(widgets[0]["frames"][1]["function"], "leak_widgets");
  expect_exact(report, "widgets::make_buffer(unsigned long)", 50021, 1);
  for (const auto& entry : entries_from(report, "main")) EXPECT_NE(entry["bytes"], 20012u) << describe(report);
}

// Threads, realloc moving a sampled block, every operator new, names crossed, fork.
TEST(SampledMemleak, ThreadsReallocNewDeleteAndForkAreExact) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Finished finished;
  json report = final_report(testprog("sampled_hard"), "1", {"--no-scan"}, &finished);
  EXPECT_NE(finished.out.find("sampled_hard ok"), std::string::npos) << finished.out << finished.err;
  expect_exact(report, "thread_leak()", 40000, 40);
  expect_exact(report, "realloc_moves()", 200000, 1);
  expect_exact(report, "realloc_shrinks()", 3000, 1);
  expect_exact(report, "new_array()", 5001, 1);
  expect_exact(report, "new_nothrow()", 6001, 1);
  expect_exact(report, "new_aligned()", 7001, 1);
  expect_exact(report, "new_object()", 4008, 1);
  // Freed (through the same or another name), or another process's.
  for (const char* function : {"freed_pairs()", "churn()", "child_leak()"}) expect_absent(report, function);
  // Not a single block of 100 bytes (realloc's old one) or of a freed pair's size is outstanding.
  for (const auto& entry : report["stacks"])
    for (uint64_t freed : {100u, 3333u, 4444u, 5555u, 6666u, 9999u})
      EXPECT_NE(entry["bytes"].get<uint64_t>(), freed) << describe(report);
}

// sampled_estimates.c: 64 MiB leaked in 4 KiB blocks, 32 MiB kept, 1 GiB churned. At one sample
// per 64 KiB the leak has ~1024 samples and the kept memory ~512 (relative standard deviations
// 3 % and 4.4 %), so 20 % is more than four deviations away.
TEST(SampledMemleak, EstimatesOfLargeWorkloadsAreWithin20Percent) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  constexpr double kMiB = 1024.0 * 1024.0;
  json report = final_report(testprog("sampled_estimates"), "65536");
  auto within = [](uint64_t value, double expected) {
    return std::fabs(static_cast<double>(value) - expected) <= 0.2 * expected;
  };
  auto leaked = outstanding_from(report, "leak_blocks");
  auto kept = outstanding_from(report, "keep_blocks");
  auto churned = entries_from(report, "churn");
  ASSERT_EQ(leaked.size(), 1u) << describe(report);
  ASSERT_EQ(kept.size(), 1u) << describe(report);
  ASSERT_EQ(churned.size(), 1u) << describe(report);
  EXPECT_TRUE(within(leaked[0]["bytes"], 64 * kMiB)) << leaked[0].dump();
  EXPECT_TRUE(within(leaked[0]["allocations"], 16384)) << leaked[0].dump();
  EXPECT_TRUE(within(kept[0]["bytes"], 32 * kMiB)) << kept[0].dump();
  EXPECT_TRUE(within(kept[0]["allocations"], 8192)) << kept[0].dump();
  EXPECT_TRUE(within(churned[0]["alloc_bytes"], 1024 * kMiB)) << churned[0].dump();
  EXPECT_EQ(churned[0]["bytes"], 0u) << churned[0].dump();
  // The scan: kept memory is never LEAKED; the leaked blocks are, but for those a stale pointer
  // in a freed chunk (the unsampled heap is a root) still reaches, so the verdict errs to REACHABLE.
  EXPECT_EQ(kept[0]["leaked_bytes"], 0u) << kept[0].dump();
  EXPECT_GE(leaked[0]["leaked_bytes"].get<uint64_t>(), 0.75 * 64 * kMiB) << leaked[0].dump();
  for (const auto& entry : report["stacks"]) EXPECT_EQ(entry["estimated"], true);
}

TEST(SampledMemleak, TextHeadingSaysEstimated) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Finished finished =
      memleak({"-c", testprog("leak_funcs"), "--sample-bytes", "1", "--no-scan"});
  ASSERT_EQ(finished.exit_code, 0) << finished.err;
  std::regex title(
      R"(^\[\d\d:\d\d:\d\d\] Top 10 stacks with outstanding allocations \(estimated: sampled every 1 bytes\):$)");
  std::regex heading(
      R"(^\t11001 bytes in 1 allocations from stack \(estimated; 11001 bytes in 1 allocations allocated in all\)$)");
  bool titled = false, headed = false;
  for (const auto& line : lines(finished.out)) {
    titled = titled || std::regex_match(line, title);
    headed = headed || std::regex_match(line, heading);
  }
  EXPECT_TRUE(titled) << finished.out;
  EXPECT_TRUE(headed) << finished.out;
}

// Without a tracer the library only forwards: the program behaves as without it.
TEST(SampledMemleak, LibraryWithoutTracerOnlyForwards) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  std::string library = std::filesystem::path(memscope_binary()).parent_path() / "libmemscope-sampler.so";
  ASSERT_TRUE(std::filesystem::exists(library)) << library;
  Finished finished = run({"/usr/bin/env", "LD_PRELOAD=" + library, "MEMSCOPE_SAMPLE_BYTES=1", testprog("sampled_hard")});
  EXPECT_EQ(finished.exit_code, 0) << finished.err;
  EXPECT_NE(finished.out.find("sampled_hard ok"), std::string::npos) << finished.out;
}

TEST(SampledMemleak, RefusalsAreOneClearLine) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  int mark = highest_bpf_program_id();
  ASSERT_GE(mark, 0) << "bpftool prog show failed";
  struct Case {
    std::vector<std::string> args;
    std::string message;
    int exit_code;
  };
  const std::vector<Case> cases = {
      {{"-c", testprog("leak_funcs_static"), "--sample-bytes", "4096"},
       "is a static executable and cannot load the sampler library; full-fidelity memleak (without "
       "--sample-bytes) still works",
       1},
      {{"--sample-bytes", "4096"}, "--sample-bytes samples a user process's heap: it needs -c", 1},
      {{"-c", testprog("leak_funcs"), "--sample-bytes", "4096", "--combined-only"},
       "--sample-bytes and --combined-only exclude each other", 1},
      {{"-c", testprog("leak_funcs"), "--sample-bytes", "4096", "-s", "10"}, "--sample-bytes and -s exclude each other", 1},
      {{"-c", testprog("leak_funcs"), "--sample-bytes", "4096", "-O", "c"}, "-O and --symbols-prefix", 1},
      {{"-c", testprog("leak_funcs"), "--sample-bytes", "0"}, "expects a number of bytes of at least 1, got 0", 2},
      {{"-c", testprog("leak_funcs"), "--sample-bytes", "lots"}, "expects a number of bytes of at least 1, got lots", 2},
  };
  for (const auto& refusal : cases) {
    Finished finished = memleak(refusal.args);
    EXPECT_EQ(finished.exit_code, refusal.exit_code) << finished.err;
    EXPECT_NE(finished.err.find(refusal.message), std::string::npos) << finished.err;
    EXPECT_EQ(lines(finished.err).size(), 1u) << finished.err;
  }
  EXPECT_EQ(bpf_programs_loaded_after(mark), std::vector<std::string>{});
}

// The sampler's set of sampled blocks holds twice --max-allocations slots (rounded up to a power
// of two); samples it cannot hold are dropped in the process and memscope must say how many. With
// --max-allocations 2000 the set has 4096 slots, so of leak_many's 10000 blocks (all samples at
// --sample-bytes 1) at least 10000 - 4096 are dropped by the sampler, and every block is either
// reported, dropped by the sampler, or lost to the full BPF map (start-up allocations add a few).
TEST(SampledMemleak, SamplesTheSamplerDropsAreCountedAndShown) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Finished finished;
  json report = final_report(testprog("leak_many"), "1", {"--no-scan", "--max-allocations", "2000"}, &finished);
  uint64_t sampler_dropped = 0, map_lost = 0;
  bool shown = false;
  for (const auto& object : json_objects(finished.out)) {
    if (object["event"] != "message") continue;
    std::smatch match;
    std::string text = object["text"].get<std::string>();
    if (std::regex_search(text, match, std::regex(R"((\d+) samples dropped by the sampler)"))) {
      sampler_dropped = std::stoull(match[1]);
      shown = true;
    }
    if (std::regex_search(text, match, std::regex(R"((\d+) updates lost \(BPF map full\))")))
      map_lost = std::stoull(match[1]);
  }
  ASSERT_TRUE(shown) << finished.out;
  EXPECT_GE(sampler_dropped, 10000u - 4096u);
  uint64_t reported = 0;
  for (const auto& entry : outstanding_from(report, "leak_many_blocks")) reported += entry["allocations"].get<uint64_t>();
  EXPECT_GE(reported + sampler_dropped + map_lost, 10000u) << describe(report);
  EXPECT_LE(reported + sampler_dropped + map_lost, 10000u + 64u) << describe(report);
}

// --- -p: the sampler loaded into a running process ----------------------------------------------

// sampled_attach, driven through its stdin: each command is answered by one line "#K answer".
class AttachTarget {
 public:
  // sampled_attach with `arguments`, started through `launcher` (a command that ends by exec'ing it).
  explicit AttachTarget(std::vector<std::string> arguments = {}, std::vector<std::string> launcher = {},
                        std::string program = testprog("sampled_attach"))
      : child_(command(std::move(arguments), std::move(launcher), std::move(program)), true) {
    ready_ = child_.wait_for("ready\n", std::chrono::seconds(10), true);
  }
  bool ready() const { return ready_; }
  pid_t pid() const { return child_.pid(); }
  Child& child() { return child_; }

  // The answer to `command` (without its "#K "), or "" when none came in time.
  std::string ask(const std::string& command) {
    std::string tag = "#" + std::to_string(++sequence_) + " ";
    child_.write_stdin(command + "\n");
    if (!child_.wait_for(tag, std::chrono::seconds(30), true)) return "";
    // The program writes each answer line at once (line buffered).
    std::string rest = child_.out().substr(child_.out().find(tag) + tag.size());
    return rest.substr(0, rest.find('\n'));
  }

 private:
  static std::vector<std::string> command(std::vector<std::string> arguments, std::vector<std::string> launcher,
                                          std::string program) {
    launcher.push_back(std::move(program));
    launcher.insert(launcher.end(), arguments.begin(), arguments.end());
    return launcher;
  }
  Child child_;
  bool ready_ = false;
  unsigned sequence_ = 0;
};

// Three rounds of attach, leak, report and detach on one running process: each round's report is
// exact for what the process did in it (the blocks of earlier rounds were not sampled), blocks
// from a library dlopen()ed after the injection are sampled too, the scan calls the unreachable
// blocks LEAKED, and after each detach the executable's GOT entry for malloc points into libc again
// (dladdr in the process is the oracle) while the churning thread never saw a corrupted block.
TEST(SampledAttach, ThreeAttachDetachRoundsAreExactAndPutLibcBack) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  int mark = highest_bpf_program_id();
  AttachTarget target;
  ASSERT_TRUE(target.ready()) << target.child().err();
  std::string untraced = target.ask("where");
  ASSERT_TRUE(untraced.starts_with("malloc-from /") && untraced.ends_with("/libc.so.6")) << untraced;
  for (int round = 1; round <= 3; round++) {
    SCOPED_TRACE("round " + std::to_string(round));
    Tracer tracer("memleak", {"-p", std::to_string(target.pid()), "--sample-bytes", "1", "--json", "-T", "200", "-o", "0"});
    EXPECT_TRUE(target.ask("where").ends_with("/libmemscope-sampler.so")) << tracer.err();
    EXPECT_EQ(target.ask("leak 7"), "leaked 7");
    if (round == 1) {
      EXPECT_EQ(target.ask("plugin 3"), "plugin-leaked 3");
    }
    Finished traced = tracer.stop();
    ASSERT_EQ(traced.exit_code, 0) << traced.err;
    auto reports = outstanding_reports(traced.out);
    ASSERT_FALSE(reports.empty()) << traced.out << traced.err;
    const json& report = reports.back();
    expect_exact(report, "leak_after_attach", 7 * 4099, 7);
    auto leaks = outstanding_from(report, "leak_after_attach");
    // The scan is conservative: a stale copy of one of the last pointers (a register or stack slot
    // not overwritten yet, a freed chunk) may keep a block or two REACHABLE, never more.
    if (!leaks.empty()) {
      EXPECT_GE(leaks[0].value("leaked_count", uint64_t{0}), 5u) << leaks[0].dump();
    }
    if (round == 1) expect_exact(report, "plugin_leak", 3 * 5003, 3);
    EXPECT_EQ(target.ask("where"), untraced);
    EXPECT_TRUE(target.ask("status").ends_with(" errors 0"));
  }
  EXPECT_EQ(target.ask("exit"), "bye");
  EXPECT_EQ(target.child().finish().exit_code, 0);
  EXPECT_EQ(bpf_programs_loaded_after(mark), std::vector<std::string>{});
}

// A process in a container: its own mount namespace, where the sampler library's path does not
// exist (a tmpfs hides memscope's directory). The library goes in as a sealed memory file; the
// report is as exact as outside, the sampler's frames are dropped from the stacks, and libc is put
// back at the end.
TEST(SampledAttach, ProcessInAnotherMountNamespaceGetsTheLibraryAsAMemoryFile) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  int mark = highest_bpf_program_id();
  char pattern[] = "/tmp/memscope-container-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  std::filesystem::path directory(pattern);
  std::filesystem::path program = directory / "sampled_attach";
  std::filesystem::copy_file(testprog("sampled_attach"), program);
  std::string hidden = std::filesystem::path(memscope_binary()).parent_path().string();
  std::string library = hidden + "/libmemscope-sampler.so";
  ASSERT_EQ(access(library.c_str(), R_OK), 0) << library;
  {
    AttachTarget target({}, {"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
                             "mount -t tmpfs memscope-test-hidden \"$0\" && exec \"$@\"", hidden},
                        program.string());
    ASSERT_TRUE(target.ready()) << target.child().err();
    ASSERT_FALSE(std::filesystem::exists(fmt::format("/proc/{}/root{}", target.pid(), library)))
        << "the library is visible in the target's mount namespace";
    std::string untraced = target.ask("where");
    ASSERT_TRUE(untraced.ends_with("/libc.so.6")) << untraced;
    Tracer tracer("memleak", {"-p", std::to_string(target.pid()), "--sample-bytes", "1", "--json", "-T", "200", "-o", "0"});
    EXPECT_TRUE(target.ask("where").starts_with("malloc-from /proc/self/fd/")) << tracer.err();
    EXPECT_EQ(target.ask("leak 7"), "leaked 7");
    Finished traced = tracer.stop();
    ASSERT_EQ(traced.exit_code, 0) << traced.err;
    auto reports = outstanding_reports(traced.out);
    ASSERT_FALSE(reports.empty()) << traced.out << traced.err;
    expect_exact(reports.back(), "leak_after_attach", 7 * 4099, 7);
    EXPECT_EQ(target.ask("where"), untraced);
    EXPECT_TRUE(target.ask("status").ends_with(" errors 0"));
    EXPECT_EQ(target.ask("exit"), "bye");
    EXPECT_EQ(target.child().finish().exit_code, 0);
  }
  std::filesystem::remove_all(directory);
  EXPECT_EQ(bpf_programs_loaded_after(mark), std::vector<std::string>{});
}

// What cannot be injected safely is refused with one line naming full fidelity, before any BPF
// program loads, and the process goes on as before.
TEST(SampledAttach, RefusalsAreOneLineAndLeaveTheProcessRunning) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  int mark = highest_bpf_program_id();
  ASSERT_GE(mark, 0) << "bpftool prog show failed";
  auto expect_refusal = [&](pid_t pid, const std::string& message) {
    Finished finished = memleak({"-p", std::to_string(pid), "--sample-bytes", "4096"});
    EXPECT_EQ(finished.exit_code, 1) << finished.err;
    EXPECT_NE(finished.err.find(message), std::string::npos) << finished.err;
    EXPECT_NE(finished.err.find("full-fidelity memleak -p (without --sample-bytes) still works"), std::string::npos)
        << finished.err;
    EXPECT_EQ(lines(finished.err).size(), 1u) << finished.err;
  };
  {
    Child holder({testprog("heap_hold_static")}, true);
    ASSERT_TRUE(holder.wait_for("ready", std::chrono::seconds(10), true));
    expect_refusal(holder.pid(), "is not a dynamically linked glibc program");
    holder.write_stdin("\n");
    EXPECT_TRUE(holder.wait_for("holding", std::chrono::seconds(10), true));
  }
  {
    Child own({testprog("sampled_own_malloc")}, true);
    ASSERT_TRUE(own.wait_for("ready", std::chrono::seconds(10), true));
    expect_refusal(own.pid(), "has its own malloc in its executable");
    own.write_stdin("\n");
    EXPECT_EQ(own.finish().exit_code, 0);
  }
  {
    AttachTarget filtered({"--seccomp"});
    ASSERT_TRUE(filtered.ready()) << filtered.child().err();
    expect_refusal(filtered.pid(), "runs under a seccomp filter");
    EXPECT_TRUE(filtered.ask("where").ends_with("/libc.so.6"));
  }
  {
    AttachTarget traced;
    ASSERT_TRUE(traced.ready());
    ASSERT_EQ(ptrace(PTRACE_SEIZE, traced.pid(), nullptr, nullptr), 0) << strerror(errno);
    expect_refusal(traced.pid(), "is traced by PID " + std::to_string(getpid()));
    // Let it go: a seized thread is detached from a stop.
    ASSERT_EQ(ptrace(PTRACE_INTERRUPT, traced.pid(), nullptr, nullptr), 0);
    int status = 0;
    waitpid(traced.pid(), &status, __WALL);
    EXPECT_EQ(ptrace(PTRACE_DETACH, traced.pid(), nullptr, nullptr), 0);
    EXPECT_TRUE(traced.ask("where").ends_with("/libc.so.6"));
  }
  {
    AttachTarget shared;
    ASSERT_TRUE(shared.ready());
    Tracer first("memleak", {"-p", std::to_string(shared.pid()), "--sample-bytes", "4096", "--no-scan"});
    expect_refusal(shared.pid(), "is sampled by another tracer already");
    EXPECT_EQ(first.stop().exit_code, 0);
    EXPECT_TRUE(shared.ask("where").ends_with("/libc.so.6"));
    EXPECT_TRUE(shared.ask("status").ends_with(" errors 0"));
  }
  EXPECT_EQ(bpf_programs_loaded_after(mark), std::vector<std::string>{});
}

}  // namespace
}  // namespace memscope::test
