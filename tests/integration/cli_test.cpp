// Bad input gets one clear line and a non-zero exit, and no BPF program outlives memscope however
// it ends (Ctrl-C, SIGTERM, -d, the traced process exiting).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>

#include "harness.hpp"

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
  for (const char* tool : {"doctor", "oomkill"}) EXPECT_NE(result.out.find(tool), std::string::npos) << tool;
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
  // Programs of an earlier test may still be in their RCU grace period: start from a settled count.
  int before = loaded_bpf_program_count();
  for (int i = 0; i < 20; i++) {
    usleep(100000);
    int now = loaded_bpf_program_count();
    if (now == before) break;
    before = now;
  }
  ASSERT_GE(before, 0) << "bpftool prog show failed";
  Tracer tracer("oomkill", {});
  EXPECT_GT(loaded_bpf_program_count(), before);
  tracer.signal(GetParam());
  Finished result = tracer.finish();
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(settled_bpf_program_count(before), before);
}

INSTANTIATE_TEST_SUITE_P(Signals, Leftovers, ::testing::Values(SIGINT, SIGTERM));

TEST(Cli, DurationEndsTheRunAndDetaches) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  int before = loaded_bpf_program_count();
  Finished result = run({memscope_binary(), "oomkill", "-d", "1"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("Hit Ctrl-C to end"), std::string::npos);
  EXPECT_EQ(settled_bpf_program_count(before), before);
}

TEST(Cli, TracedProcessExitEndsTheRun) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  int before = loaded_bpf_program_count();
  Child target({"/bin/sleep", "2"});
  Finished result = run({memscope_binary(), "oomkill", "-p", std::to_string(target.pid())}, std::chrono::seconds(20));
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(settled_bpf_program_count(before), before);
}

TEST(Cli, DoctorNamesTheHookOfEveryTool) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Finished result = run({memscope_binary(), "doctor", "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  bool oomkill_seen = false;
  for (const auto& record : json_lines(result.out)) {
    if (record["event"] != "tool_probe") continue;
    EXPECT_FALSE(record["hook"].get<std::string>().empty()) << record.dump();
    if (record["tool"] == "oomkill") {
      oomkill_seen = true;
      EXPECT_EQ(record["status"], "ok");
    }
  }
  EXPECT_TRUE(oomkill_seen) << result.out;
}

}  // namespace
}  // namespace memscope::test
