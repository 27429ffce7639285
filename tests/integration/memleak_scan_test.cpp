// The leak proof on real processes: scan_process()/scan_stopped_process() against a program that
// knows which of its blocks are referenced and from where, and (further down) through
// `memscope memleak` end to end, compared with valgrind's memcheck.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "harness.hpp"
#include "tools/memleak/heap_scanner.hpp"

namespace memscope::test {
namespace {

using memleak::BlockVerdict;
using memleak::ScanOptions;
using memleak::ScanReport;
using memleak::TrackedBlock;

struct ExpectedBlock {
  TrackedBlock block;
  std::string expectation;  // reachable | leaked | untracked-only
  std::string label;
};

// tests/testprogs/scan_target, started and waited for until it printed its blocks.
class ScanTarget {
 public:
  ScanTarget() : child_({testprog("scan_target")}, /*capture_stdin=*/true) {
    if (!child_.wait_for("READY", std::chrono::seconds(10), /*in_stdout=*/true))
      throw std::runtime_error("scan_target did not start: " + child_.out() + child_.err());
    if (!back_in_read()) throw std::runtime_error("scan_target did not come to rest in read()");
    for (const std::string& line : lines(child_.out())) {
      std::istringstream fields(line);
      std::string kind, address;
      fields >> kind >> address;
      if (kind == "BLOCK") {
        ExpectedBlock expected;
        expected.block.address = std::stoull(address, nullptr, 16);
        fields >> expected.block.size >> expected.expectation >> expected.label;
        blocks_.push_back(expected);
      }
    }
  }
  pid_t pid() const { return child_.pid(); }
  const std::vector<ExpectedBlock>& expected() const { return blocks_; }
  std::vector<TrackedBlock> tracked() const {
    std::vector<TrackedBlock> result;
    for (const ExpectedBlock& expected : blocks_) result.push_back(expected.block);
    return result;
  }
  // The target answers on stdin: it runs normally.
  bool responds() {
    std::string token = std::to_string(++pings_);
    child_.write_stdin("ping " + token + "\n");
    return child_.wait_for("pong " + token + "\n", std::chrono::seconds(5), true) && back_in_read();
  }
  // Scanning is conservative: while a thread is still returning from printf, stale pointers in
  // frames below its resting stack pointer are live stack and count. Tests scan the target at rest,
  // every thread blocked in read() (syscall 0 in /proc/PID/task/TID/syscall), where the program
  // scrubbed its dead frames.
  bool back_in_read() const {
    std::string tasks = "/proc/" + std::to_string(pid()) + "/task";
    for (int i = 0; i < 500; ++i) {
      bool all = true;
      for (const auto& task : std::filesystem::directory_iterator(tasks)) {
        std::ifstream syscall(task.path() / "syscall");
        std::string line;
        std::getline(syscall, line);
        all = all && line.starts_with("0 ");
      }
      if (all) return true;
      usleep(1000);
    }
    return false;
  }
  Finished exit() {
    child_.write_stdin("exit\n");
    return child_.finish(std::chrono::seconds(10));
  }

 private:
  Child child_;
  int pings_ = 0;
  std::vector<ExpectedBlock> blocks_;
};

void expect_verdicts(const ScanTarget& target, const ScanReport& report, bool untracked_heap_is_root) {
  ASSERT_EQ(report.verdicts.size(), target.expected().size());
  for (size_t i = 0; i < report.verdicts.size(); ++i) {
    const ExpectedBlock& expected = target.expected()[i];
    BlockVerdict want = expected.expectation == "reachable" ? BlockVerdict::Reachable
                        : expected.expectation == "leaked"  ? BlockVerdict::Leaked
                        : untracked_heap_is_root            ? BlockVerdict::Reachable
                                                            : BlockVerdict::Leaked;
    EXPECT_EQ(report.verdicts[i], want)
        << expected.label << " (" << expected.expectation << ") at 0x" << std::hex << expected.block.address;
  }
}

TEST(HeapScanner, VerdictsMatchWhatTheProgramKnows) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  ScanTarget target;
  ASSERT_GE(target.expected().size(), 20u);
  Result<ScanReport> report = memleak::scan_process(target.pid(), target.tracked());
  ASSERT_TRUE(report) << report.error().message;
  expect_verdicts(target, *report, false);
  EXPECT_EQ(report->threads, 2u);
  EXPECT_GT(report->pause_ms, 0.0);
  EXPECT_LT(report->pause_ms, 2000.0);
  // Roots (stacks, data, bss, TLS) plus the reached blocks. The 1 MiB block is reached but the
  // program never touches it beyond malloc's header: its pages are never-touched (pagemap) and
  // not read, so it costs a page, not a MiB.
  EXPECT_GT(report->bytes_scanned, 64u << 10);
  EXPECT_LT(report->bytes_scanned, 1u << 20);
  expect_running_untraced(target.pid());
  EXPECT_TRUE(target.responds());
  Finished finished = target.exit();
  EXPECT_EQ(finished.exit_code, 0) << finished.err;
}

TEST(HeapScanner, LateAttachScansUntrackedHeapAsRoots) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  ScanTarget target;
  ScanOptions late;
  late.roots_include_untracked_heap = true;
  Result<ScanReport> report = memleak::scan_process(target.pid(), target.tracked(), late);
  ASSERT_TRUE(report) << report.error().message;
  expect_verdicts(target, *report, true);
  EXPECT_TRUE(target.responds());
}

TEST(HeapScanner, TlsAndBssRulesHoldWithoutForeignAnonymousRoots) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  ScanTarget target;
  ScanOptions narrow;
  narrow.roots_include_foreign_anonymous = false;
  Result<ScanReport> report = memleak::scan_process(target.pid(), target.tracked(), narrow);
  ASSERT_TRUE(report) << report.error().message;
  expect_verdicts(target, *report, false);
  EXPECT_TRUE(target.responds());
}

TEST(HeapScanner, RepeatedScansLeaveTheTargetRunning) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  ScanTarget target;
  for (int i = 0; i < 20; ++i) {
    Result<ScanReport> report = memleak::scan_process(target.pid(), target.tracked());
    ASSERT_TRUE(report) << report.error().message;
    expect_verdicts(target, *report, false);
    ASSERT_TRUE(target.responds()) << "after scan " << i;
  }
  expect_running_untraced(target.pid());
  EXPECT_EQ(target.exit().exit_code, 0);
}

TEST(HeapScanner, RefusesAProcessAnotherTracerHolds) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  ScanTarget target;
  ASSERT_EQ(ptrace(PTRACE_SEIZE, target.pid(), nullptr, nullptr), 0) << strerror(errno);
  Result<ScanReport> report = memleak::scan_process(target.pid(), target.tracked());
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().message,
            "PID " + std::to_string(target.pid()) + " is already traced by PID " + std::to_string(getpid()));
  // Our own seize is untouched: still traced by us, still running.
  EXPECT_EQ(proc_status_field(target.pid(), "TracerPid"), std::to_string(getpid()));
  EXPECT_TRUE(target.responds());
  // Let go (PTRACE_DETACH needs a stop).
  ASSERT_EQ(ptrace(PTRACE_INTERRUPT, target.pid(), nullptr, nullptr), 0);
  int status = 0;
  ASSERT_EQ(waitpid(target.pid(), &status, __WALL), target.pid());
  ASSERT_EQ(ptrace(PTRACE_DETACH, target.pid(), nullptr, nullptr), 0);
  expect_running_untraced(target.pid());
  EXPECT_TRUE(target.responds());
}

TEST(HeapScanner, ScansAProcessItsCallerHoldsStopped) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  ScanTarget target;
  // What memleak -c does at PTRACE_EVENT_EXIT: the caller holds every thread in ptrace-stop.
  std::vector<pid_t> tids;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(target.pid()) + "/task")) {
    pid_t tid = std::stoi(entry.path().filename());
    ASSERT_EQ(ptrace(PTRACE_SEIZE, tid, nullptr, nullptr), 0);
    ASSERT_EQ(ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr), 0);
    int status = 0;
    ASSERT_EQ(waitpid(tid, &status, __WALL), tid);
    tids.push_back(tid);
  }
  Result<ScanReport> report = memleak::scan_stopped_process(target.pid(), tids, target.tracked());
  ASSERT_TRUE(report) << report.error().message;
  expect_verdicts(target, *report, false);
  EXPECT_EQ(report->threads, 2u);
  // Still ours, still stopped: scan_stopped_process neither resumes nor detaches.
  EXPECT_EQ(proc_status_field(target.pid(), "TracerPid"), std::to_string(getpid()));
  EXPECT_TRUE(proc_status_field(target.pid(), "State").starts_with("t"))
      << proc_status_field(target.pid(), "State");
  for (pid_t tid : tids) EXPECT_EQ(ptrace(PTRACE_DETACH, tid, nullptr, nullptr), 0);
  EXPECT_TRUE(target.responds());
}

TEST(HeapScanner, GroupStoppedTargetStaysStopped) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  ScanTarget target;
  kill(target.pid(), SIGSTOP);
  for (int i = 0; i < 100 && !proc_status_field(target.pid(), "State").starts_with("T"); ++i) usleep(10000);
  ASSERT_TRUE(proc_status_field(target.pid(), "State").starts_with("T"));
  Result<ScanReport> report = memleak::scan_process(target.pid(), target.tracked());
  ASSERT_TRUE(report) << report.error().message;
  expect_verdicts(target, *report, false);
  usleep(50000);
  EXPECT_TRUE(proc_status_field(target.pid(), "State").starts_with("T"))
      << "a job-control stop is the user's: " << proc_status_field(target.pid(), "State");
  EXPECT_EQ(proc_status_field(target.pid(), "TracerPid"), "0");
  kill(target.pid(), SIGCONT);
  EXPECT_TRUE(target.responds());
}

TEST(HeapScanner, StopsEveryThreadOfAProcessThatKeepsCreatingThem) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Child churn({testprog("scan_churn")}, /*capture_stdin=*/true);
  ASSERT_TRUE(churn.wait_for("READY", std::chrono::seconds(10), true)) << churn.out() << churn.err();
  std::istringstream first(lines(churn.out()).at(0));
  std::string kind, address;
  uint64_t size = 0;
  first >> kind >> address >> size;
  ASSERT_EQ(kind, "BLOCK");
  std::vector<TrackedBlock> blocks = {{std::stoull(address, nullptr, 16), size}};
  int requests = 0;
  auto count = [&]() -> long {
    std::string request = "count " + std::to_string(++requests);
    churn.write_stdin(request + "\n");
    if (!churn.wait_for(request + " ", std::chrono::seconds(5), true)) return -1;
    churn.wait_for("\n", std::chrono::milliseconds(100), true);
    std::string rest = churn.out().substr(churn.out().rfind(request + " ") + request.size() + 1);
    return std::stol(rest);
  };
  for (int i = 0; i < 30; ++i) {
    Result<ScanReport> report = memleak::scan_process(churn.pid(), blocks);
    ASSERT_TRUE(report) << report.error().message;
    EXPECT_EQ(report->verdicts.at(0), BlockVerdict::Reachable);
    EXPECT_GE(report->threads, 5u);  // main + 4 spawners, + a short-lived one at times
  }
  long before = count();
  ASSERT_GE(before, 0) << "no answer: " << churn.out();
  usleep(100000);
  EXPECT_GT(count(), before) << "the spawners run again after the scans";
  expect_running_untraced(churn.pid());
  churn.write_stdin("exit\n");
  EXPECT_EQ(churn.finish(std::chrono::seconds(10)).exit_code, 0);
}

TEST(HeapScanner, ReportsAMissingProcess) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  pid_t gone = fork();
  if (gone == 0) _exit(0);
  waitpid(gone, nullptr, 0);
  Result<ScanReport> report = memleak::scan_process(gone, {});
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().message, "no process with PID " + std::to_string(gone));
}

// ---------------------------------------------------------------------------------------------
// End to end: `memscope memleak` labels stacks LEAKED / REACHABLE with this scanner.

bool is_allocator(const std::string& function) {
  static const std::vector<std::string> names = {"malloc",
                                                 "calloc",
                                                 "realloc",
                                                 "reallocarray",
                                                 "free",
                                                 "memalign",
                                                 "posix_memalign",
                                                 "aligned_alloc",
                                                 "valloc",
                                                 "pvalloc",
                                                 "mmap",
                                                 "mmap64",
                                                 "_Znwm",
                                                 "_Znam",
                                                 "operator new(unsigned long)",
                                                 "operator new[](unsigned long)"};
  return std::find(names.begin(), names.end(), function) != names.end();
}

// The allocation site of a memscope stack: its first frame outside the allocator.
std::string call_site(const nlohmann::json& stack) {
  for (const auto& frame : stack["frames"]) {
    std::string function = frame.value("function", "");
    if (!is_allocator(function)) return function;
  }
  return "";
}

struct StackTotals {
  uint64_t bytes = 0, leaked = 0, reachable = 0;
  bool growing = false;
};

// Per call site, from one outstanding_allocations report.
std::map<std::string, StackTotals> by_call_site(const nlohmann::json& report) {
  std::map<std::string, StackTotals> sites;
  for (const auto& stack : report["stacks"]) {
    StackTotals& totals = sites[call_site(stack)];
    totals.bytes += stack.value("bytes", uint64_t{0});
    totals.leaked += stack.value("leaked_bytes", uint64_t{0});
    totals.reachable += stack.value("reachable_bytes", uint64_t{0});
    totals.growing = totals.growing || stack.value("growing", false);
  }
  return sites;
}

std::vector<nlohmann::json> events_named(const std::string& out, const std::string& name) {
  std::vector<nlohmann::json> events;
  for (const auto& event : json_lines(out))
    if (event.value("event", "") == name) events.push_back(event);
  return events;
}

TEST(MemleakScan, SeedProgramLeaksAreLeakedInFibonacciCalledFromChild) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  // The seed chapter's program: 8 KiB per second from fibonacci() in the child thread, only the
  // latest block kept. Reports every 0.7 s (out of phase with the program's 1 s), five of them.
  Finished traced = run({memscope_binary(), "memleak", "-c", testprog("scan_seed_leak"), "--scan", "--json",
                         "-o", "0", "0.7", "5"},
                        std::chrono::seconds(30));
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  std::vector<nlohmann::json> reports = events_named(traced.out, "outstanding_allocations");
  std::vector<nlohmann::json> scans = events_named(traced.out, "leak_scan");
  ASSERT_EQ(reports.size(), 5u) << traced.out;
  ASSERT_EQ(scans.size(), 5u) << traced.out;
  const nlohmann::json* fibonacci = nullptr;
  for (const auto& stack : reports.back()["stacks"])
    if (call_site(stack) == "fibonacci") fibonacci = &stack;
  ASSERT_NE(fibonacci, nullptr) << reports.back().dump();
  const auto& frames = (*fibonacci)["frames"];
  ASSERT_GE(frames.size(), 2u);
  EXPECT_EQ(frames[1]["function"], "child");
  uint64_t allocations = (*fibonacci)["allocations"];
  ASSERT_GE(allocations, 3u) << "3.5 s of one calloc per second";
  // Every block but the latest is unreferenced; the latest is in child's `v`.
  EXPECT_EQ((*fibonacci)["reachable_count"], 1u) << fibonacci->dump();
  EXPECT_EQ((*fibonacci)["leaked_count"], allocations - 1) << fibonacci->dump();
  EXPECT_EQ((*fibonacci)["leaked_bytes"], (allocations - 1) * 8192) << fibonacci->dump();
  // The scans: two threads stopped each time, for well under a frame of a second.
  for (const auto& scan : scans) {
    EXPECT_EQ(scan["threads"], 2u);
    EXPECT_LT(scan["pause_ms"].get<double>(), 200.0);
    EXPECT_GT(scan["bytes_scanned"].get<uint64_t>(), 0u);
  }

  // The text report says it as BCC users read it, with the labels.
  Finished text =
      run({memscope_binary(), "memleak", "-c", testprog("scan_seed_leak"), "--scan", "-o", "0", "2.5", "1"},
          std::chrono::seconds(30));
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("fibonacci+"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("child+"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("[LEAKED 16384 B/2, REACHABLE 8192 B/1"), std::string::npos) << text.out;
}

TEST(MemleakScan, GrowingReferencedCacheIsReachableAndGrowingNeverLeaked) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Finished traced =
      run({memscope_binary(), "memleak", "-c", testprog("scan_cache") + " 5", "--scan", "--json", "0.5", "7"},
          std::chrono::seconds(30));
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  std::vector<nlohmann::json> reports = events_named(traced.out, "outstanding_allocations");
  ASSERT_EQ(reports.size(), 7u) << traced.out;
  uint64_t previous = 0;
  bool seen = false;
  for (const auto& report : reports) {
    std::map<std::string, StackTotals> sites = by_call_site(report);
    for (const auto& [site, totals] : sites) EXPECT_EQ(totals.leaked, 0u) << site << " in " << report.dump();
    if (!sites.count("cache_add")) continue;
    const StackTotals& cache = sites["cache_add"];
    seen = true;
    EXPECT_EQ(cache.reachable, cache.bytes);
    EXPECT_GT(cache.bytes, previous);
    EXPECT_EQ(cache.bytes % 256, 0u);
    previous = cache.bytes;
  }
  EXPECT_TRUE(seen) << traced.out;
  std::map<std::string, StackTotals> last = by_call_site(reports.back());
  EXPECT_TRUE(last["cache_add"].growing) << reports.back().dump();
}

// valgrind --xml=yes leak records, per allocation site (first frame outside the allocator).
struct ValgrindLeaks {
  std::map<std::string, uint64_t> lost;             // definitely + indirectly lost, direct bytes
  std::map<std::string, uint64_t> still_reachable;  // bytes
  std::map<std::string, uint64_t> possibly_lost;
};

std::string xml_value(const std::string& xml, const std::string& tag, size_t from = 0,
                      size_t to = std::string::npos) {
  size_t begin = xml.find("<" + tag + ">", from);
  if (begin == std::string::npos || begin >= to) return "";
  begin += tag.size() + 2;
  size_t end = xml.find("</" + tag + ">", begin);
  return end == std::string::npos ? "" : xml.substr(begin, end - begin);
}

ValgrindLeaks parse_valgrind_xml(const std::string& xml) {
  ValgrindLeaks leaks;
  for (size_t at = xml.find("<error>"); at != std::string::npos; at = xml.find("<error>", at + 1)) {
    size_t end = xml.find("</error>", at);
    std::string kind = xml_value(xml, "kind", at, end);
    if (!kind.starts_with("Leak_")) continue;
    // A definitely-lost record's leakedbytes includes what it indirectly holds ("N (D direct, I
    // indirect) bytes"); the indirectly-lost blocks have records of their own. Count direct bytes.
    uint64_t bytes = std::stoull(xml_value(xml, "leakedbytes", at, end));
    std::string text = xml_value(xml, "text", at, end);
    size_t open = text.find(" (");
    if (open != std::string::npos && text.find(" direct, ", open) != std::string::npos)
      bytes = std::stoull(text.substr(open + 2));
    std::string site;
    for (size_t frame = xml.find("<frame>", at); frame != std::string::npos && frame < end;
         frame = xml.find("<frame>", frame + 1)) {
      std::string function = xml_value(xml, "fn", frame, xml.find("</frame>", frame));
      if (!is_allocator(function)) {
        site = function;
        break;
      }
    }
    if (kind == "Leak_DefinitelyLost" || kind == "Leak_IndirectlyLost")
      leaks.lost[site] += bytes;
    else if (kind == "Leak_StillReachable")
      leaks.still_reachable[site] += bytes;
    else if (kind == "Leak_PossiblyLost")
      leaks.possibly_lost[site] += bytes;
  }
  return leaks;
}

std::string temporary_path(const std::string& stem) {
  return (std::filesystem::temp_directory_path() / (stem + "-" + std::to_string(getpid()))).string();
}

// Runs `command` under valgrind and under memscope memleak -c; memscope's LEAKED bytes per call
// site must equal valgrind's definitely + indirectly lost, and no still-reachable site is LEAKED.
void compare_with_valgrind(const std::vector<std::string>& command, const std::string& program_sites_prefix,
                           size_t expected_lost_sites) {
  std::string xml_file = temporary_path("memscope-valgrind") + ".xml";
  std::vector<std::string> valgrind = {"/usr/bin/valgrind", "--leak-check=full", "--show-leak-kinds=all",
                                       "--xml=yes", "--xml-file=" + xml_file};
  valgrind.insert(valgrind.end(), command.begin(), command.end());
  Finished checked = run(valgrind, std::chrono::seconds(120));
  ASSERT_EQ(checked.exit_code, 0) << checked.err;
  std::ifstream xml_stream(xml_file);
  std::stringstream xml;
  xml << xml_stream.rdbuf();
  std::filesystem::remove(xml_file);
  ValgrindLeaks valgrind_leaks = parse_valgrind_xml(xml.str());

  std::string joined;
  for (const std::string& word : command) joined += (joined.empty() ? "" : " ") + word;
  Finished traced =
      run({memscope_binary(), "memleak", "-c", joined, "--json", "-T", "1000"}, std::chrono::seconds(60));
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  std::vector<nlohmann::json> reports = events_named(traced.out, "outstanding_allocations");
  ASSERT_EQ(reports.size(), 1u) << "one report, at the program's exit: " << traced.out << traced.err;
  ASSERT_EQ(events_named(traced.out, "leak_scan").size(), 1u) << traced.out;
  std::map<std::string, uint64_t> memscope_leaked;
  for (const auto& [site, totals] : by_call_site(reports.front()))
    if (totals.leaked > 0) memscope_leaked[site] = totals.leaked;

  // A block whose stack memleak could not capture (bpf_get_stackid failed in both stack maps: its
  // bytes are reported under a "[stack lost]" frame) cannot be matched to a site; its bytes must
  // make up exactly the difference at the sites it came from.
  const std::string lost = "[stack lost]";
  uint64_t uncaptured = memscope_leaked.count(lost) ? memscope_leaked[lost] : 0;
  if (uncaptured == 0) {
    EXPECT_EQ(memscope_leaked, valgrind_leaks.lost)
        << "memscope LEAKED vs valgrind definitely+indirectly lost";
  } else {
    memscope_leaked.erase(lost);
    uint64_t missing = 0;
    for (const auto& [site, bytes] : valgrind_leaks.lost) {
      uint64_t seen = memscope_leaked.count(site) ? memscope_leaked[site] : 0;
      EXPECT_LE(seen, bytes) << site;
      missing += bytes - std::min(seen, bytes);
    }
    for (const auto& [site, bytes] : memscope_leaked)
      EXPECT_TRUE(valgrind_leaks.lost.count(site))
          << site << ": LEAKED by memscope only (" << bytes << " bytes)";
    EXPECT_EQ(missing, uncaptured) << "the uncaptured stack's LEAKED bytes are the sites' shortfall";
  }
  EXPECT_EQ(valgrind_leaks.lost.size(), expected_lost_sites);
  for (const auto& [site, bytes] : valgrind_leaks.still_reachable)
    EXPECT_EQ(memscope_leaked.count(site), 0u)
        << site << ": valgrind says still reachable (" << bytes << " bytes)";
  // Interior pointers are references here (valgrind: "possibly lost"): reachable, never LEAKED.
  for (const auto& [site, bytes] : valgrind_leaks.possibly_lost)
    EXPECT_EQ(memscope_leaked.count(site), 0u) << site << ": only an interior pointer refers to it";
  // The still-reachable sites of the program itself are seen by memscope too, as reachable.
  std::map<std::string, StackTotals> sites = by_call_site(reports.front());
  for (const auto& [site, bytes] : valgrind_leaks.still_reachable) {
    if (!site.starts_with(program_sites_prefix)) continue;
    ASSERT_TRUE(sites.count(site)) << site << " missing from " << reports.front().dump();
    EXPECT_EQ(sites[site].reachable, bytes) << site;
  }
}

TEST(MemleakScan, LeakedBytesPerSiteEqualValgrindsLostBytes) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  if (access("/usr/bin/valgrind", X_OK) != 0) GTEST_SKIP() << "skipped: valgrind is not installed";
  // lost_single, lost_many, lost_calloc, lost_realloc, lost_tree_root, lost_tree_child, lost_cycle,
  // lost_in_thread.
  compare_with_valgrind({testprog("scan_valgrind_mix")}, "kept_", 8);
}

TEST(MemleakScan, ReferencedCacheAtExitIsStillReachableForBoth) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  if (access("/usr/bin/valgrind", X_OK) != 0) GTEST_SKIP() << "skipped: valgrind is not installed";
  compare_with_valgrind({testprog("scan_cache"), "1"}, "cache_", 0);
}

// Under -c the final scan runs at the program's exit, after its atexit handlers: leak_short's
// block from an atexit handler exists by then and is referenced from its bss (REACHABLE); the two
// blocks main's callee dropped are LEAKED.
TEST(MemleakScan, ShortLivedCommandGetsItsVerdictAfterAtexit) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Finished traced =
      run({memscope_binary(), "memleak", "-c", testprog("leak_short"), "--json"}, std::chrono::seconds(30));
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  std::vector<nlohmann::json> reports = events_named(traced.out, "outstanding_allocations");
  ASSERT_EQ(reports.size(), 1u) << traced.out;
  ASSERT_EQ(events_named(traced.out, "leak_scan").size(), 1u) << traced.out;
  std::map<std::string, StackTotals> sites = by_call_site(reports.front());
  EXPECT_EQ(sites["leak_briefly"].leaked, 40961u + 40973u) << reports.front().dump();
  EXPECT_EQ(sites["leak_briefly"].reachable, 0u);
  EXPECT_EQ(sites["leak_at_exit"].reachable, 40981u) << reports.front().dump();
  EXPECT_EQ(sites["leak_at_exit"].leaked, 0u);
}

// -p PID on a process that was running before: the blocks allocated since memleak attached get
// verdicts (what was allocated before counts as roots); each scan's pause is printed; the process
// is left running and untraced.
TEST(MemleakScan, RunningProcessByPidGetsVerdicts) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Child seed({testprog("scan_seed_leak")});
  usleep(300000);
  std::string pid = std::to_string(seed.pid());
  Finished traced = run({memscope_binary(), "memleak", "-p", pid, "--scan", "--json", "-o", "0", "1.3", "3"},
                        std::chrono::seconds(30));
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  std::vector<nlohmann::json> reports = events_named(traced.out, "outstanding_allocations");
  std::vector<nlohmann::json> scans = events_named(traced.out, "leak_scan");
  ASSERT_EQ(reports.size(), 3u) << traced.out;
  ASSERT_EQ(scans.size(), 3u) << traced.out;
  std::map<std::string, StackTotals> sites = by_call_site(reports.back());
  ASSERT_TRUE(sites.count("fibonacci")) << reports.back().dump();
  const StackTotals& fibonacci = sites["fibonacci"];
  ASSERT_GE(fibonacci.bytes, 3u * 8192) << "3.9 s of one calloc per second";
  EXPECT_EQ(fibonacci.reachable, 8192u) << reports.back().dump();
  EXPECT_EQ(fibonacci.leaked, fibonacci.bytes - 8192) << reports.back().dump();
  for (const auto& scan : scans) {
    EXPECT_EQ(scan["pid"], seed.pid());
    EXPECT_EQ(scan["threads"], 2u);
    EXPECT_GT(scan["pause_ms"].get<double>(), 0.0);
  }
  expect_running_untraced(seed.pid());

  // The text form says how long the process was paused.
  Finished text = run({memscope_binary(), "memleak", "-p", pid, "--scan", "-o", "0", "1.1", "1"},
                      std::chrono::seconds(30));
  ASSERT_EQ(text.exit_code, 0) << text.err;
  std::regex pause("Leak scan of PID " + pid + R"(: paused it [0-9.]+ ms, scanned \d+ bytes and 2 threads)");
  EXPECT_TRUE(std::regex_search(text.out, pause)) << text.out;
  expect_running_untraced(seed.pid());
}

// A process another tracer (a debugger) holds cannot be stopped for a scan: --scan refuses at
// start in one line; without it the final scan is skipped with one warning line and the report
// still comes.
TEST(MemleakScan, AlreadyTracedTargetIsRefusedInOneLine) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  ScanTarget target;
  std::string pid = std::to_string(target.pid());
  ASSERT_EQ(ptrace(PTRACE_SEIZE, target.pid(), nullptr, nullptr), 0) << strerror(errno);
  std::string traced_by = "PID " + pid + " is already traced by PID " + std::to_string(getpid());

  Finished refused = run({memscope_binary(), "memleak", "-p", pid, "--scan", "1", "1"});
  EXPECT_EQ(refused.exit_code, 1) << refused.out;
  EXPECT_EQ(lines(refused.err).size(), 1u) << refused.err;
  EXPECT_NE(refused.err.find(traced_by), std::string::npos) << refused.err;

  Finished warned = run({memscope_binary(), "memleak", "-p", pid, "--json", "0.5", "1"});
  EXPECT_EQ(warned.exit_code, 0) << warned.err;
  EXPECT_EQ(events_named(warned.out, "outstanding_allocations").size(), 1u) << warned.out;
  EXPECT_TRUE(events_named(warned.out, "leak_scan").empty()) << warned.out;
  size_t warnings = 0;
  for (const auto& line : lines(warned.err))
    if (line.find(traced_by) != std::string::npos) warnings++;
  EXPECT_EQ(warnings, 1u) << warned.err;

  EXPECT_EQ(proc_status_field(target.pid(), "TracerPid"), std::to_string(getpid()));
  ASSERT_EQ(ptrace(PTRACE_INTERRUPT, target.pid(), nullptr, nullptr), 0);
  int status = 0;
  ASSERT_EQ(waitpid(target.pid(), &status, __WALL), target.pid());
  ASSERT_EQ(ptrace(PTRACE_DETACH, target.pid(), nullptr, nullptr), 0);
  EXPECT_TRUE(target.responds());
}

}  // namespace
}  // namespace memscope::test
