// memleak under load and on hostile targets: many distinct short-lived call paths before a leak
// (stored stacks must be forgotten once nothing uses them), a leak scan racing frees, frees of
// reused addresses, exceptions through operator new, a library replaced on disk.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "bpf_holdings.hpp"
#include "harness.hpp"

namespace memscope::test {
namespace {

using nlohmann::json;

Finished memleak(std::vector<std::string> args, std::chrono::seconds timeout = std::chrono::seconds(120)) {
  std::vector<std::string> argv = {memscope_binary(), "memleak"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, timeout);
}

// leak_churn_paths: 32 batches of 4096 distinct call paths (131072 stacks, twice the 2^16 that
// filled every map before), each malloc'ing and freeing, then one 4242-byte leak from
// leak_after_churn(). Reports every 0.1 s. The leak must come with its whole stack.
void expect_leak_after_churn_has_its_stack(const std::string& stack_mode) {
  Finished finished = memleak({"-c", testprog("leak_churn_paths") + " 32 250", "--json", "--no-scan", "-o", "0",
                               "--stack-mode", stack_mode, "0.1"});
  ASSERT_EQ(finished.exit_code, 0) << finished.err;
  auto reports = outstanding_reports(finished.out);
  ASSERT_FALSE(reports.empty()) << finished.out << finished.err;
  const json& last = reports.back();
  int found = 0;
  for (const auto& entry : last["stacks"]) {
    if (entry["bytes"].get<uint64_t>() != 4242) continue;
    found++;
    EXPECT_FALSE(entry["stack_lost"].get<bool>()) << describe(last) << finished.err;
    EXPECT_EQ(top_function(entry), "leak_after_churn") << describe(last);
    ASSERT_GE(entry["frames"].size(), 2u) << describe(last);
    EXPECT_EQ(entry["frames"][1]["function"], "main") << describe(last);
    EXPECT_EQ(entry["allocations"], 1u);
  }
  EXPECT_EQ(found, 1) << describe(last);
  // Every churn path freed its block: nothing else of 48 bytes is outstanding.
  for (const auto& entry : last["stacks"]) EXPECT_NE(entry["bytes"].get<uint64_t>() % 48, 0u) << describe(last);
}

TEST(MemleakLoad, LeakAfterManyFreedStacksKeepsItsDwarfStack) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  expect_leak_after_churn_has_its_stack("dwarf");
}

TEST(MemleakLoad, LeakAfterManyFreedStacksKeepsItsFramePointerStack) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  expect_leak_after_churn_has_its_stack("fp");
}

// leak_mremap_race keeps 3000 mappings from keep_mapping() while another thread's mremap()s vacate
// addresses the next mmap gets: the mremap's return must not delete the newer record at its old
// address. Exactly the 3000 kept mappings are outstanding at exit.
TEST(MemleakLoad, MremapDoesNotForgetANewerBlockAtItsOldAddress) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Finished finished = memleak({"-c", testprog("leak_mremap_race") + " 3000", "--json", "--no-scan", "-T", "50"});
  ASSERT_EQ(finished.exit_code, 0) << finished.err;
  ASSERT_NE(finished.out.find("kept 3000 mappings"), std::string::npos) << finished.out;
  auto reports = outstanding_reports(finished.out);
  ASSERT_FALSE(reports.empty()) << finished.out << finished.err;
  uint64_t kept = 0, kept_bytes = 0;
  for (const auto& entry : reports.back()["stacks"])
    if (top_function(entry) == "keep_mapping") {
      kept += entry["allocations"].get<uint64_t>();
      kept_bytes += entry["bytes"].get<uint64_t>();
    }
  EXPECT_EQ(kept, 3000u) << describe(reports.back());
  EXPECT_EQ(kept_bytes, 3000u * 16384) << describe(reports.back());
}

// Outstanding blocks and bytes of a report by the innermost function of their stacks.
struct Outstanding {
  uint64_t allocations = 0;
  uint64_t bytes = 0;
};
std::map<std::string, Outstanding> outstanding_by_function(const json& report) {
  std::map<std::string, Outstanding> totals;
  for (const auto& entry : report["stacks"]) {
    Outstanding& total = totals[top_function(entry)];
    total.allocations += entry["allocations"].get<uint64_t>();
    total.bytes += entry["bytes"].get<uint64_t>();
  }
  return totals;
}

void expect_outstanding(std::map<std::string, Outstanding>& totals, const std::string& function, uint64_t allocations,
                        uint64_t bytes, const json& report) {
  EXPECT_EQ(totals[function].allocations, allocations) << function << ":\n" << describe(report);
  EXPECT_EQ(totals[function].bytes, bytes) << function << ":\n" << describe(report);
}

// memleak -c COMMAND of a program that says "rounds N reused N": the reuse it provokes happened in
// every round. The last report's totals by innermost function.
std::map<std::string, Outstanding> outstanding_after_reuse(const std::string& command, std::vector<std::string> extra,
                                                           int rounds, json& report) {
  std::vector<std::string> args = {"-c", command, "--json", "--no-scan", "-T", "50"};
  args.insert(args.end(), extra.begin(), extra.end());
  Finished finished = memleak(args);
  EXPECT_EQ(finished.exit_code, 0) << finished.err;
  std::string said = "rounds " + std::to_string(rounds) + " reused " + std::to_string(rounds);
  EXPECT_NE(finished.out.find(said), std::string::npos) << finished.out << finished.err;
  auto reports = outstanding_reports(finished.out);
  if (reports.empty()) {
    ADD_FAILURE() << "no report:\n" << finished.out << finished.err;
    return {};
  }
  report = reports.back();
  return outstanding_by_function(report);
}

// realloc moves a block and frees the old one, and another thread's malloc gets that address before
// realloc returns: liballoc_reuse's realloc makes that happen in every round (it waits inside,
// after the free, until the other thread allocated). The realloc's return must not delete the
// other thread's newer record at its old address. Outstanding at exit: the 100 blocks of 1000 bytes
// second_owner() got and the 100 of 3000 bytes grow_block() grew; none of first_owner()'s.
TEST(MemleakLoad, ReallocDoesNotForgetANewerBlockAtItsOldAddress) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  constexpr int kRounds = 100;
  std::string library = testprog("liballoc_reuse.so");
  json report;
  auto totals = outstanding_after_reuse(testprog("leak_realloc_reuse") + " " + library + " " + std::to_string(kRounds),
                                        {"-O", library, "--symbols-prefix", "reuse_"}, kRounds, report);
  expect_outstanding(totals, "second_owner", kRounds, kRounds * 1000, report);
  expect_outstanding(totals, "grow_block", kRounds, kRounds * 3000, report);
  expect_outstanding(totals, "first_owner", 0, 0, report);
}

// The same for mremap, every round: the program's seccomp supervisor moves the mapping itself, maps
// the vacated address again from second_owner(), and only then lets the mremap return. Outstanding
// at exit: 100 mappings of 16384 bytes from second_owner() and 100 of 32768 from move_mapping().
TEST(MemleakLoad, MremapReturningAfterItsOldAddressIsMappedAgainKeepsTheNewMapping) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  constexpr int kRounds = 100;
  json report;
  auto totals =
      outstanding_after_reuse(testprog("leak_mremap_reuse") + " " + std::to_string(kRounds), {}, kRounds, report);
  expect_outstanding(totals, "second_owner", kRounds, kRounds * 16384, report);
  expect_outstanding(totals, "move_mapping", kRounds, kRounds * 32768, report);
  expect_outstanding(totals, "first_owner", 0, 0, report);
}

// operator new throws std::bad_alloc through its caller's frames; a return probe on it replaces the
// return address with the uretprobe trampoline, where the C++ unwinder finds no unwind information
// and calls std::terminate. The program must run to its end under memleak, and its leaks still be
// counted: 50 new long from new_in_loop() and one new int[100] from leak_after_throw(), each
// named as the caller with DWARF stacks. (With --stack-mode fp the caller of operator new is not
// on the stack: libstdc++ keeps no frame pointer; the blocks are checked by count and size.)
TEST(MemleakLoad, BadAllocThrownThroughOperatorNewIsCaught) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  for (std::string mode : {"dwarf", "fp"}) {
    SCOPED_TRACE(mode);
    Finished finished = memleak({"-c", testprog("leak_cxx_throw") + " 50", "--json", "--no-scan", "-T", "50",
                                 "--stack-mode", mode});
    ASSERT_EQ(finished.exit_code, 0) << finished.err;
    EXPECT_NE(finished.out.find("caught 50 nothrow-null 50"), std::string::npos) << finished.out << finished.err;
    auto reports = outstanding_reports(finished.out);
    ASSERT_FALSE(reports.empty()) << finished.out << finished.err;
    const json& last = reports.back();
    if (mode == "dwarf") {
      uint64_t after_throw = 0, in_loop = 0, in_loop_bytes = 0;
      for (const auto& entry : last["stacks"]) {
        if (top_function(entry) == "leak_after_throw()") after_throw += entry["bytes"].get<uint64_t>();
        if (top_function(entry) == "new_in_loop()") {
          in_loop += entry["allocations"].get<uint64_t>();
          in_loop_bytes += entry["bytes"].get<uint64_t>();
        }
      }
      EXPECT_EQ(after_throw, 400u) << describe(last);
      EXPECT_EQ(in_loop, 50u) << describe(last);
      EXPECT_EQ(in_loop_bytes, 50u * 8) << describe(last);
    } else {
      int fifty_longs = 0, one_array = 0;
      for (const auto& entry : last["stacks"]) {
        if (entry["allocations"] == 50u && entry["bytes"] == 400u) fifty_longs++;
        if (entry["allocations"] == 1u && entry["bytes"] == 400u) one_array++;
      }
      EXPECT_EQ(fifty_longs, 1) << describe(last);
      EXPECT_EQ(one_array, 1) << describe(last);
    }
  }
}

// A free the probes never saw (a raw munmap system call) shows when the address is allocated again:
// leak_raw_munmap does that 10 times and says how often the kernel gave the same address back;
// memleak counts exactly those as missed frees, on its Lost line.
TEST(MemleakLoad, AllocationOverALiveRecordCountsAMissedFree) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Finished finished = memleak({"-c", testprog("leak_raw_munmap") + " 10", "--no-scan"});
  ASSERT_EQ(finished.exit_code, 0) << finished.err;
  std::smatch reused;
  ASSERT_TRUE(std::regex_search(finished.out, reused, std::regex(R"(reused (\d+))"))) << finished.out;
  int expected = std::stoi(reused[1]);
  ASSERT_GT(expected, 0) << "the kernel never reused the address: nothing to check";
  std::smatch missed;
  ASSERT_TRUE(std::regex_search(finished.out, missed, std::regex(R"(Lost: .*?(\d+) frees missed)")))
      << finished.out << finished.err;
  EXPECT_EQ(std::stoi(missed[1]), expected) << finished.out;
}

// Kernel mode loses frees to BPF recursion protection: a kfree in an interrupt or softirq (RCU
// callbacks, the network) on a CPU where a memleak program is running is not traced, and the kernel
// counts the skipped run in bpf_prog_info.recursion_misses. A kmalloc-heavy load (reading
// /proc/self/maps without pause) makes that happen within seconds here. memleak's Lost line must
// show at least what the kernel counted for its programs (bpftool, by the ids of the programs
// memscope holds) while they were attached, and its figure only grows from line to line.
TEST(MemleakLoad, KernelModeRecursionMissesAreReadAndShown) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Tracer tracer("memleak", {"-o", "0", "--json", "-T", "3", "1"});
  Child load({"/bin/sh", "-c", "while :; do cat /proc/self/maps >/dev/null; done"});
  auto kernel_count = [&] {
    uint64_t misses = 0;
    for (uint64_t id : held_bpf_ids(tracer.pid(), "prog_id")) {
      Finished shown = run({"/usr/sbin/bpftool", "prog", "show", "id", std::to_string(id), "--json"});
      auto program = json::parse(shown.out, nullptr, false);
      if (program.is_object()) misses += program.value("recursion_misses", uint64_t{0});
    }
    return misses;
  };
  uint64_t counted = 0;
  for (int i = 0; i < 30 && counted == 0; i++) {
    tracer.wait_for("\x01never printed", std::chrono::milliseconds(500), true);
    counted = kernel_count();
  }
  load.signal(SIGKILL);
  load.finish();
  Finished finished = tracer.stop();
  ASSERT_EQ(finished.exit_code, 0) << finished.err;
  if (counted == 0) GTEST_SKIP() << "skipped: the kernel skipped no memleak program run in 15 s of load here";
  std::vector<uint64_t> shown;
  std::regex skipped(R"((\d+) probe runs skipped by the kernel \(BPF recursion protection\))");
  for (const auto& object : json_objects(finished.out)) {
    std::smatch match;
    std::string text = object.value("text", "");
    if (object["event"] == "message" && std::regex_search(text, match, skipped)) shown.push_back(std::stoull(match[1]));
  }
  ASSERT_FALSE(shown.empty()) << "the kernel skipped " << counted << " runs; memleak said:\n" << finished.out;
  EXPECT_GE(shown.back(), counted) << "the last Lost line against bpftool's figure while attached";
  EXPECT_TRUE(std::is_sorted(shown.begin(), shown.end()));
}

// Three threads wait for vfork()ed children for 30 s in a sleep PTRACE_INTERRUPT does not end. A
// scan must give up within its 2 s budget for all threads together (it waited 10 s per thread, 30 s
// here), say so in one line, and leave every other thread running.
TEST(MemleakLoad, ThreadsThatCannotStopFailTheScanQuickly) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Child target({testprog("vfork_hold"), "3", "30"}, true);
  ASSERT_TRUE(target.wait_for("READY", std::chrono::seconds(10), true));
  auto start = std::chrono::steady_clock::now();
  Finished traced = memleak({"-p", std::to_string(target.pid()), "--scan", "--json", "-o", "0", "0.5", "1"},
                            std::chrono::seconds(60));
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  EXPECT_LT(elapsed, std::chrono::seconds(12)) << traced.err;
  EXPECT_NE(traced.err.find("did not stop within 2000 ms"), std::string::npos) << traced.err;
  usleep(300000);
  expect_running_untraced(target.pid());
}

// Reservations and file views are not allocations: of leak_mmap_kinds' four mappings only the 3
// anonymous read-write pages of map_anonymous() are outstanding (a 64 MiB PROT_NONE reservation
// was reported as a 64 MiB leak, and a scan would have read it).
TEST(MemleakLoad, OnlyUsableAnonymousMmapsAreAllocations) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Finished finished = memleak({"-c", testprog("leak_mmap_kinds"), "--json", "-T", "50"});
  ASSERT_EQ(finished.exit_code, 0) << finished.err;
  ASSERT_NE(finished.out.find("mapped"), std::string::npos) << finished.out;
  auto reports = outstanding_reports(finished.out);
  ASSERT_FALSE(reports.empty()) << finished.err;
  std::map<std::string, uint64_t> bytes;
  for (const auto& entry : reports.back()["stacks"]) bytes[top_function(entry)] += entry["bytes"].get<uint64_t>();
  EXPECT_EQ(bytes["map_anonymous"], 3u * 4096) << describe(reports.back());
  for (const char* function : {"map_reservation", "map_noreserve", "map_file"})
    EXPECT_EQ(bytes.count(function), 0u) << function << "\n" << describe(reports.back());
}

// A scan over its budget is abandoned and the process resumed: with a 1 ms pause budget or a 4 KiB
// read budget, scan_free_churn's scans stop with one line each, no verdicts, and it keeps running.
TEST(MemleakLoad, ScanOverItsBudgetIsAbandonedAndTheProcessResumed) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Child churn({testprog("scan_free_churn"), "4"}, true);
  ASSERT_TRUE(churn.wait_for("READY", std::chrono::seconds(10), true));
  for (auto [option, value, why] : {std::tuple{"--scan-max-pause", "1", "it reached its time budget"},
                                    std::tuple{"--scan-max-bytes", "4096", "it read 4096 bytes, its budget"}}) {
    SCOPED_TRACE(option);
    Finished traced = memleak({"-p", std::to_string(churn.pid()), "--scan", option, value, "--json", "-o", "0",
                               "0.3", "3"},
                              std::chrono::seconds(60));
    ASSERT_EQ(traced.exit_code, 0) << traced.err;
    EXPECT_NE(traced.err.find(why), std::string::npos) << traced.err;
    for (const auto& object : json_objects(traced.out)) EXPECT_NE(object["event"], "leak_scan") << object.dump();
    EXPECT_EQ(outstanding_reports(traced.out).size(), 3u);
    usleep(100000);
    expect_running_untraced(churn.pid());
  }
}

// The libc the test itself maps, for a private copy.
std::string own_libc() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    size_t slash = line.find('/');
    if (slash != std::string::npos && line.find("/libc.so.6") != std::string::npos) return line.substr(slash);
  }
  return "";
}

// A daemon after a libc upgrade: it runs a libc that was replaced on disk (renamed over, as dpkg
// does), so /proc/PID/maps says "(deleted)" and the path names a different inode. leak_seed leaks
// 8 KiB a second from fibonacci(); memleak -p must see those leaks, through the file the process
// maps.
TEST(MemleakLoad, LibcReplacedOnDiskAfterStartIsStillProbed) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  std::string libc = own_libc();
  ASSERT_FALSE(libc.empty());
  char pattern[] = "/tmp/memscope-libc-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  std::filesystem::path dir = pattern;
  std::filesystem::copy_file(libc, dir / "libc.so.6");
  Child seed({"/usr/bin/env", "LD_LIBRARY_PATH=" + dir.string(), testprog("leak_seed")});
  usleep(400000);
  std::string maps_path = "/proc/" + std::to_string(seed.pid()) + "/maps";
  auto maps_text = [&] {
    std::ifstream maps(maps_path);
    std::stringstream text;
    text << maps.rdbuf();
    return text.str();
  };
  ASSERT_NE(maps_text().find((dir / "libc.so.6").string()), std::string::npos) << maps_text();
  std::filesystem::copy_file(libc, dir / "libc.so.6.new");
  std::filesystem::rename(dir / "libc.so.6.new", dir / "libc.so.6");
  ASSERT_NE(maps_text().find((dir / "libc.so.6").string() + " (deleted)"), std::string::npos) << maps_text();

  Tracer tracer("memleak", {"-p", std::to_string(seed.pid()), "--json", "--no-scan", "-o", "0", "1"});
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(8);
  uint64_t blocks = 0;
  while (std::chrono::steady_clock::now() < deadline && blocks < 2) {
    tracer.wait_for("\x01", std::chrono::milliseconds(200), true);
    for (const auto& report : outstanding_reports(tracer.out()))
      for (const auto& entry : report["stacks"])
        if (top_function(entry) == "fibonacci") blocks = std::max(blocks, entry["allocations"].get<uint64_t>());
  }
  Finished traced = tracer.stop();
  std::filesystem::remove_all(dir);
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  EXPECT_GE(blocks, 2u) << traced.out << traced.err;
  for (const auto& report : outstanding_reports(traced.out))
    for (const auto& entry : report["stacks"])
      if (top_function(entry) == "fibonacci") {
        EXPECT_EQ(entry["bytes"].get<uint64_t>(), 8192 * entry["allocations"].get<uint64_t>());
      }
}

// exec under -p: the blocks of the image before the exec belong to an address space that is gone.
// exec_self holds 16 blocks, exec()s itself, and holds 8 blocks of 2000 bytes in the new image: no
// scan may call anything LEAKED, and the last report holds the new image's blocks only.
TEST(MemleakLoad, ExecUnderPidForgetsTheOldImage) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Child target({testprog("exec_self")});
  ASSERT_TRUE(target.wait_for("READY", std::chrono::seconds(10), true));
  Finished traced = memleak({"-p", std::to_string(target.pid()), "--scan", "--json", "-o", "0", "0.5", "12"},
                            std::chrono::seconds(60));
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  for (const auto& object : json_objects(traced.out))
    if (object["event"] == "leak_scan") {
      EXPECT_EQ(object["leaked_bytes"], 0u) << object.dump() << traced.err;
    }
  auto reports = outstanding_reports(traced.out);
  ASSERT_FALSE(reports.empty()) << traced.err;
  uint64_t after = 0;
  for (const auto& entry : reports.back()["stacks"]) {
    EXPECT_NE(top_function(entry), "hold_before_exec") << describe(reports.back());
    if (top_function(entry) == "hold_after_exec") after += entry["bytes"].get<uint64_t>();
  }
  EXPECT_EQ(after, 8u * 2000) << describe(reports.back()) << traced.err;
  EXPECT_TRUE(target.out().find("HELD") != std::string::npos || target.wait_for("HELD", std::chrono::seconds(1), true));
}

// Iterations scan_free_churn made so far.
long churn_iterations(Child& churn) {
  size_t before = churn.out().size();
  churn.write_stdin("count\n");
  churn.wait_for("\n", std::chrono::seconds(5), true);
  for (int i = 0; i < 50 && churn.out().find('\n', before) == std::string::npos; i++)
    churn.wait_for("\x01", std::chrono::milliseconds(100), true);
  std::istringstream last(churn.out().substr(before));
  std::string word;
  long count = -1;
  last >> word >> count;
  return count;
}

// A program that never leaks, four threads freeing and allocating without pause, scanned every 0.2 s:
// frees keep coming while the outstanding map is read, so the map must be read while the process
// is stopped. No scan may call anything LEAKED, and the process keeps running untraced.
TEST(MemleakLoad, ScansOfAChurningProgramThatLeaksNothingFindNoLeak) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Child churn({testprog("scan_free_churn"), "4"}, /*capture_stdin=*/true);
  ASSERT_TRUE(churn.wait_for("READY", std::chrono::seconds(10), true)) << churn.err();
  Finished traced = memleak({"-p", std::to_string(churn.pid()), "--scan", "--json", "-o", "0", "0.2", "20"},
                            std::chrono::seconds(60));
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  int scans = 0;
  for (const auto& object : json_objects(traced.out)) {
    if (object["event"] != "leak_scan") continue;
    scans++;
    EXPECT_EQ(object["leaked_bytes"], 0u) << object.dump();
    EXPECT_EQ(object["leaked_count"], 0u) << object.dump();
    EXPECT_GT(object["reachable_count"].get<uint64_t>(), 0u) << object.dump();
  }
  EXPECT_EQ(scans, 20) << traced.out << traced.err;
  for (const auto& report : outstanding_reports(traced.out))
    for (const auto& entry : report["stacks"])
      if (entry.contains("leaked_bytes")) {
        EXPECT_EQ(entry["leaked_bytes"], 0u) << describe(report);
      }
  expect_running_untraced(churn.pid());
  long before = churn_iterations(churn);
  usleep(200000);
  EXPECT_GT(churn_iterations(churn), before) << "the target no longer runs";
}

}  // namespace
}  // namespace memscope::test
