// Bad input gets one clear line and a non-zero exit, and no BPF program outlives memscope however
// it ends (Ctrl-C, SIGTERM, -d, the traced process exiting).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <sstream>
#include <thread>

#include "harness.hpp"
#include "runtime/tool.hpp"

namespace memscope::test {
namespace {

// One line on stderr, starting with "memscope".
void expect_one_line_error(const Finished& result, const std::string& contains) {
  EXPECT_NE(result.exit_code, 0);
  EXPECT_EQ(lines(result.err).size(), 1u) << result.err;
  EXPECT_EQ(result.err.rfind("memscope", 0), 0u) << result.err;
  EXPECT_NE(result.err.find(contains), std::string::npos) << result.err;
  EXPECT_EQ(result.out, "");
}

TEST(Cli, HelpListsEveryTool) {
  Finished result = run({memscope_binary(), "--help"});
  EXPECT_EQ(result.exit_code, 0);
  std::set<std::string> listed;
  for (const auto& line : lines(result.out)) {
    std::istringstream words(line);
    std::string first;
    if (line.starts_with("  ") && words >> first) listed.insert(first);
  }
  for (const ToolDescriptor* tool : tool_registry()) EXPECT_TRUE(listed.count(tool->name)) << tool->name;
}

// The tools that report every `interval` seconds, from the registry.
std::vector<std::string> interval_tools() {
  std::vector<std::string> names;
  for (const ToolDescriptor* tool : tool_registry())
    if (tool->create()->common_options().interval) names.push_back(tool->name);
  return names;
}

TEST(Cli, IntervalZeroIsAUsageError) {
  ASSERT_FALSE(interval_tools().empty());
  for (const std::string& tool : interval_tools()) {
    SCOPED_TRACE(tool);
    Finished result = run({memscope_binary(), tool, "0"}, std::chrono::seconds(10));
    expect_one_line_error(result, "interval: must be a number greater than 0, not 0");
    EXPECT_EQ(result.exit_code, 2);
  }
}

TEST(Cli, NegativeIntervalNamesTheAcceptedRangeInAShortLine) {
  Finished result = run({memscope_binary(), "faults", "-1"}, std::chrono::seconds(10));
  expect_one_line_error(result, "memscope faults: interval: must be a number greater than 0, not -1");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_LT(result.err.size(), 100u) << result.err;
}

TEST(Cli, NegativeCountNamesTheAcceptedRange) {
  Finished result = run({memscope_binary(), "faults", "1", "-2"}, std::chrono::seconds(10));
  expect_one_line_error(result, "count: must be a number of 0 or more, not -2");
  EXPECT_EQ(result.exit_code, 2);
}

TEST(Cli, PidOfAThreadNamesItsProcess) {
  std::atomic<pid_t> thread_id = 0;
  std::atomic<bool> done = false;
  std::thread thread([&] {
    thread_id = gettid();
    while (!done) usleep(10000);
  });
  while (thread_id == 0) usleep(1000);
  std::string tid = std::to_string(thread_id.load()), pid = std::to_string(getpid());
  Finished result = run({memscope_binary(), "faults", "-p", tid}, std::chrono::seconds(10));
  done = true;
  thread.join();
  expect_one_line_error(result, "-p " + tid + ": " + tid + " is a thread of process " + pid);
  EXPECT_NE(result.err.find("-t " + tid), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("-p " + pid), std::string::npos) << result.err;
}

// kthreadd, the parent of every kernel thread, is PID 2.
constexpr const char* kKernelThread = "2";

TEST(Cli, KernelThreadHasNoUserMemoryToTrace) {
  expect_one_line_error(run({memscope_binary(), "faults", "-p", kKernelThread}, std::chrono::seconds(10)),
                        "-p 2: 2 is a kernel thread (kthreadd), which has no user memory to trace");
}

TEST(Cli, KernelThreadIsTracedWhereKernelThreadsTakePart) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Finished result = run({memscope_binary(), "compact", "-p", kKernelThread, "-d", "0.2"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("Hit Ctrl-C to end"), std::string::npos) << result.err;
}

TEST(Cli, ToolHelpDocumentsOptions) {
  Finished result = run({memscope_binary(), "oomkill", "--help"});
  EXPECT_EQ(result.exit_code, 0);
  for (const char* option : {"--pid", "--json", "--probe", "--duration", "--verbose"})
    EXPECT_NE(result.out.find(option), std::string::npos) << option;
}

TEST(Cli, SymlinkNamedAfterToolBehavesAsTheTool) {
  std::string link = std::filesystem::path(memscope_binary()).parent_path() / "oomkill";
  ASSERT_TRUE(std::filesystem::is_symlink(link)) << link;
  Finished result = run({link, "--help"});
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_NE(result.out.find("OOM kills"), std::string::npos) << result.out;
}

TEST(Cli, UnknownToolIsOneLine) {
  expect_one_line_error(run({memscope_binary(), "nosuchtool"}), "unknown tool 'nosuchtool'");
}

TEST(Cli, UnknownOptionIsOneLine) {
  Finished result = run({memscope_binary(), "oomkill", "--frobnicate"});
  expect_one_line_error(result, "--frobnicate");
  EXPECT_EQ(result.exit_code, 2);
}

TEST(Cli, MissingPidIsOneLine) {
  expect_one_line_error(run({memscope_binary(), "oomkill", "-p", "999999999"}), "no process with PID 999999999");
}

TEST(Cli, ForcedProbeTheKernelLacksIsOneLine) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  if (access("/sys/bus/event_source/devices/kprobe/type", F_OK) == 0)
    GTEST_SKIP() << "skipped: this kernel has kprobes; the refusal is tested where it has none";
  Finished result = run({memscope_binary(), "oomkill", "--probe", "kprobe"});
  expect_one_line_error(result, "kprobes are not built into this kernel");
}

TEST(Cli, NoBtfIsOneLine) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  setenv("MEMSCOPE_SIMULATE", "no-btf", 1);
  Finished result = run({memscope_binary(), "oomkill"});
  unsetenv("MEMSCOPE_SIMULATE");
  expect_one_line_error(result, "no BTF");
}

TEST(Cli, WithoutPrivilegesIsOneLine) {
  if (geteuid() != 0) GTEST_SKIP() << "skipped: needs root to drop to an unprivileged user";
  Finished result = run_as(65534, {memscope_binary(), "oomkill"});
  expect_one_line_error(result, "needs root, or CAP_BPF and CAP_PERFMON");
}

class Leftovers : public ::testing::TestWithParam<int> {};

TEST_P(Leftovers, NoBpfProgramSurvivesASignal) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  int mark = highest_bpf_program_id();
  ASSERT_GE(mark, 0) << "bpftool prog show failed";
  Tracer tracer("oomkill", {});
  EXPECT_FALSE(bpf_programs_loaded_after(mark, std::chrono::milliseconds(0)).empty()) << "oomkill loaded no program";
  tracer.signal(GetParam());
  Finished result = tracer.finish();
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(bpf_programs_loaded_after(mark), std::vector<std::string>{});
}

INSTANTIATE_TEST_SUITE_P(Signals, Leftovers, ::testing::Values(SIGINT, SIGTERM));

TEST(Cli, DurationEndsTheRunAndDetaches) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  int mark = highest_bpf_program_id();
  ASSERT_GE(mark, 0) << "bpftool prog show failed";
  Finished result = run({memscope_binary(), "oomkill", "-d", "1"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("Hit Ctrl-C to end"), std::string::npos);
  EXPECT_EQ(bpf_programs_loaded_after(mark), std::vector<std::string>{});
}

TEST(Cli, TracedProcessExitEndsTheRun) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  int mark = highest_bpf_program_id();
  ASSERT_GE(mark, 0) << "bpftool prog show failed";
  Child target({"/bin/sleep", "2"});
  Finished result = run({memscope_binary(), "oomkill", "-p", std::to_string(target.pid())}, std::chrono::seconds(20));
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(bpf_programs_loaded_after(mark), std::vector<std::string>{});
}

TEST(Cli, DoctorNamesTheHookOfEveryTool) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Finished result = run({memscope_binary(), "doctor", "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  std::set<std::string> seen;
  for (const auto& record : json_lines(result.out)) {
    if (record["event"] != "tool_probe") continue;
    EXPECT_FALSE(record["hook"].get<std::string>().empty()) << record.dump();
    seen.insert(record["tool"].get<std::string>());
    if (record["tool"] == "oomkill") EXPECT_EQ(record["status"], "ok");
  }
  for (const ToolDescriptor* tool : tool_registry())
    if (std::string(tool->name) != "doctor") EXPECT_TRUE(seen.count(tool->name)) << tool->name << "\n" << result.out;
}

}  // namespace
}  // namespace memscope::test
