// faults sees the page faults a test program takes on purpose: K fresh anonymous pages written
// from touch_pages_from_here() (K user-mode faults there), or read() into K fresh pages (K
// kernel-mode faults in the kernel's copy to user space).
#include <gtest/gtest.h>
#include <unistd.h>

#include "fault_touch.hpp"
#include "harness.hpp"

namespace memscope::test {
namespace {

constexpr uint64_t kPages = 1000;
// Faults the test program may take besides its K touches while traced: the text of code run
// for the first time after the tracer attached (printf of "touched", the second fgets, exit),
// each page once, with fault-around mapping 16 at a time. It is a handful in practice; the bound
// keeps the assertion meaningful (a double count would give 2K).
constexpr uint64_t kTolerance = 32;

const nlohmann::json* process_record(const std::vector<nlohmann::json>& events, pid_t pid) {
  for (const auto& event : events)
    if (event["event"] == "page_faults" && event["pid"] == pid) return &event;
  return nullptr;
}

// The stack entries of `pid` in the last fault_stacks report.
std::vector<nlohmann::json> stacks_of(const std::vector<nlohmann::json>& events, pid_t pid) {
  std::vector<nlohmann::json> found;
  for (const auto& event : events) {
    if (event["event"] != "fault_stacks") continue;
    found.clear();
    for (const auto& entry : event["stacks"])
      if (entry["pid"] == pid) found.push_back(entry);
  }
  return found;
}

bool has_frame(const nlohmann::json& entry, const std::string& function, bool kernel) {
  for (const auto& frame : entry["frames"])
    if (frame["function"] == function && frame["kernel"] == kernel) return true;
  return false;
}

TEST(Faults, CountsUserFaultsOfTouchedPagesWithTheirStack) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  FaultTouch program({"anon", std::to_string(kPages)});
  Finished traced = program.traced_by("faults", {"--json"});
  ASSERT_EQ(traced.exit_code, 0) << traced.err;

  auto events = json_lines(traced.out);
  const nlohmann::json* record = process_record(events, program.pid());
  ASSERT_NE(record, nullptr) << traced.out << traced.err;
  EXPECT_EQ((*record)["comm"], "fault_touch");
  EXPECT_GE((*record)["user"].get<uint64_t>(), kPages);
  EXPECT_LE((*record)["user"].get<uint64_t>(), kPages + kTolerance);
  EXPECT_EQ((*record)["total"].get<uint64_t>(),
            (*record)["user"].get<uint64_t>() + (*record)["kernel"].get<uint64_t>());
  // Writing into fresh anonymous pages faults in user mode only; memscope's own stack walks must
  // not show up as kernel-mode faults of the traced process.
  EXPECT_LE((*record)["kernel"].get<uint64_t>(), kTolerance);

  bool seen = false;
  for (const auto& entry : stacks_of(events, program.pid())) {
    if (!has_frame(entry, "touch_pages_from_here", false)) continue;
    seen = true;
    EXPECT_EQ(entry["mode"], "user");
    EXPECT_EQ(entry["comm"], "fault_touch");
    EXPECT_GE(entry["faults"].get<uint64_t>(), kPages);
    EXPECT_LE(entry["faults"].get<uint64_t>(), kPages + kTolerance);
    EXPECT_EQ(entry["frames"][0]["function"], "touch_pages_from_here") << entry.dump();
    EXPECT_TRUE(has_frame(entry, "main", false)) << entry.dump();
  }
  EXPECT_TRUE(seen) << "no stack with touch_pages_from_here in:\n" << traced.out;
}

TEST(Faults, CountsKernelModeFaultsOfReadIntoFreshPages) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  FaultTouch program({"read", std::to_string(kPages)});
  Finished traced = program.traced_by("faults", {"--json"});
  ASSERT_EQ(traced.exit_code, 0) << traced.err;

  auto events = json_lines(traced.out);
  const nlohmann::json* record = process_record(events, program.pid());
  ASSERT_NE(record, nullptr) << traced.out << traced.err;
  EXPECT_GE((*record)["kernel"].get<uint64_t>(), kPages);
  EXPECT_LE((*record)["kernel"].get<uint64_t>(), kPages + kTolerance);
  EXPECT_LE((*record)["user"].get<uint64_t>(), kTolerance);

  bool seen = false;
  for (const auto& entry : stacks_of(events, program.pid())) {
    if (entry["mode"] != "kernel" || entry["faults"].get<uint64_t>() < kPages) continue;
    seen = true;
    ASSERT_FALSE(entry["frames"].empty());
    // The stack starts where the kernel faulted (the copy to user space), not in the tracing or
    // exception-handling code, and goes on into the user stack of the read() call.
    const auto& innermost = entry["frames"][0];
    EXPECT_TRUE(innermost["kernel"].get<bool>()) << entry.dump();
    for (const char* fault_path : {"asm_exc_page_fault", "exc_page_fault", "bpf_trace_run3"})
      EXPECT_FALSE(has_frame(entry, fault_path, true)) << entry.dump();
    EXPECT_TRUE(has_frame(entry, "main", false)) << entry.dump();
  }
  EXPECT_TRUE(seen) << "no kernel-mode stack with " << kPages << " faults in:\n" << traced.out;
}

TEST(Faults, TextTableAndStacks) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  FaultTouch program({"anon", std::to_string(kPages)});
  Finished traced = program.traced_by("faults", {});
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  auto output = lines(traced.out);
  ASSERT_FALSE(output.empty());
  EXPECT_EQ(output[0], "PID     COMM                   USER     KERNEL      TOTAL");
  ASSERT_GE(output.size(), 2u);
  EXPECT_EQ(output[1].rfind(std::to_string(program.pid()) + " ", 0), 0u) << traced.out;
  EXPECT_NE(output[1].find("fault_touch"), std::string::npos) << traced.out;
  EXPECT_NE(traced.out.find("page faults in user mode, PID " + std::to_string(program.pid())),
            std::string::npos)
      << traced.out;
  EXPECT_NE(traced.out.find("touch_pages_from_here+0x"), std::string::npos) << traced.out;
}

TEST(Faults, FoldedStacksForFlameGraphs) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  FaultTouch program({"anon", std::to_string(kPages)});
  Finished traced = program.traced_by("faults", {"--folded"});
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  bool seen = false;
  for (const auto& line : lines(traced.out)) {
    // "fault_touch;__libc_start_call_main;main;touch_pages_from_here 1000": outermost first.
    auto space = line.rfind(' ');
    ASSERT_NE(space, std::string::npos) << line;
    std::string folded = line.substr(0, space);
    uint64_t weight = std::stoull(line.substr(space + 1));
    if (folded.rfind("fault_touch;", 0) != 0) continue;
    if (folded.size() < 22 || folded.substr(folded.size() - 22) != ";touch_pages_from_here") continue;
    seen = true;
    EXPECT_NE(folded.find(";main;"), std::string::npos) << line;
    EXPECT_GE(weight, kPages);
    EXPECT_LE(weight, kPages + kTolerance);
  }
  EXPECT_TRUE(seen) << traced.out;
}

// Each tracepoint flavour and the perf event count the same faults.
TEST(Faults, EveryHookKindCountsTheSameFaults) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  for (std::string kind : {"tp_btf", "raw_tp", "tracepoint", "perf_event"}) {
    SCOPED_TRACE(kind);
    FaultTouch program({"anon", std::to_string(kPages)});
    Finished traced = program.traced_by("faults", {"--json", "--no-stacks", "--probe", kind});
    ASSERT_EQ(traced.exit_code, 0) << traced.err;
    auto events = json_lines(traced.out);
    const nlohmann::json* record = process_record(events, program.pid());
    ASSERT_NE(record, nullptr) << traced.out << traced.err;
    uint64_t user = (*record)["user"].get<uint64_t>();
    EXPECT_LE(user, kPages + kTolerance);
    if (kind == "perf_event" && user < kPages) {
      // The kernel throttles sampling software events (kernel.perf_event_max_sample_rate);
      // memscope must then say how many faults it did not see.
      bool reported = false;
      for (const auto& event : events)
        if (event["event"] == "message" &&
            event["text"].get<std::string>().find("not sampled (perf throttling") != std::string::npos)
          reported = true;
      EXPECT_TRUE(reported) << "perf_event saw " << user << " of " << kPages << " faults without saying so:\n"
                            << traced.out;
    } else {
      EXPECT_GE(user, kPages);
    }
  }
}

// The perf events are attached by the tool itself (one per CPU): they too must go when it exits.
TEST(Faults, PerfEventHookLeavesNoProgramBehind) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  int mark = highest_bpf_program_id();
  ASSERT_GE(mark, 0) << "bpftool prog show failed";
  Finished result = run({memscope_binary(), "faults", "--probe", "perf_event", "--no-stacks", "-d", "1"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(bpf_programs_loaded_after(mark), std::vector<std::string>{});
}

TEST(Faults, ForcedKprobeWithoutKprobesFailsWithOneLine) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  expect_forced_kprobe_fails_with_one_line("faults", "page fault");
}

TEST(Faults, BadOptionsFailWithOneLine) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Finished both = run({memscope_binary(), "faults", "-U", "-K"});
  EXPECT_EQ(both.exit_code, 1);
  EXPECT_EQ(both.err, "memscope faults: -U and -K exclude each other\n");
  Finished folded = run({memscope_binary(), "faults", "--folded", "--no-stacks"});
  EXPECT_EQ(folded.exit_code, 1);
  EXPECT_EQ(lines(folded.err).size(), 1u) << folded.err;
}

// Programs started one after another, each taking page faults as it is loaded: faults every
// interval of a machine-wide trace can count.
Child fault_churn() { return Child({"/bin/sh", "-c", "while :; do /bin/true; done"}); }

TEST(Faults, IntervalReportsStopAfterCount) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Child churn = fault_churn();
  // Two reports half a second apart, then exit on its own (no Ctrl-C), without a final one.
  auto start = std::chrono::steady_clock::now();
  Finished result = run({memscope_binary(), "faults", "--no-stacks", "0.5", "2"}, std::chrono::seconds(30));
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.err.find("killed after timeout"), std::string::npos);
  EXPECT_LT(elapsed, std::chrono::seconds(10));
  // Each report: a blank line, the header, a row per process.
  auto output = lines(result.out);
  std::vector<size_t> rows_per_report;
  for (const auto& line : output) {
    if (line.starts_with("PID ")) rows_per_report.push_back(0);
    else if (!line.empty() && !rows_per_report.empty()) rows_per_report.back()++;
  }
  ASSERT_EQ(rows_per_report.size(), 2u) << result.out;
  for (size_t rows : rows_per_report) EXPECT_GT(rows, 0u) << result.out;
}

TEST(Faults, MemscopeIsNotAmongTheProcessesItTraces) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Child churn = fault_churn();
  // Interval reports while attached, and symbol preparation for each new process: memscope takes
  // faults of its own all along.
  Tracer tracer("faults", {"--json", "0.3"});
  usleep(1200000);
  Finished traced = tracer.stop();
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  size_t processes = 0;
  for (const auto& event : json_lines(traced.out)) {
    if (event["event"] != "page_faults") continue;
    processes++;
    EXPECT_NE(event["pid"], tracer.pid()) << event.dump();
  }
  EXPECT_GT(processes, 0u) << traced.out;
}

TEST(Faults, NoStacksIsSaidOnTheTitleLine) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  // A sleeping process takes no faults.
  Child sleeper({"/bin/sleep", "10"});
  usleep(200000);
  Finished traced = run({memscope_binary(), "faults", "-p", std::to_string(sleeper.pid()), "-d", "0.5"});
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  auto output = lines(traced.out);
  ASSERT_FALSE(output.empty());
  EXPECT_EQ(output.back(), "Stacks by page faults: none") << traced.out;
  EXPECT_EQ(traced.out.find("Top 0"), std::string::npos) << traced.out;
}

}  // namespace
}  // namespace memscope::test
