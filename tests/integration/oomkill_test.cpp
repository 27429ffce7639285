// oomkill sees an OOM kill in a small memory cgroup: the victim's PID and command, and the cgroup.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

#include "cgroup_fixture.hpp"
#include "harness.hpp"

namespace memscope::test {
namespace {

TEST(OomKill, SeesVictimAndMemcgOfACgroupOom) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  MemoryCgroup cgroup("memscope-oomkill-" + std::to_string(getpid()), 48ULL << 20);
  if (!cgroup.ok()) GTEST_SKIP() << "skipped: " << cgroup.error();

  Tracer tracer("oomkill", {"--json"});
  Child victim({testprog("oom_victim"), cgroup.procs_file(), "512"});
  pid_t victim_pid = victim.pid();
  Finished victim_result = victim.finish(std::chrono::seconds(60));
  EXPECT_EQ(victim_result.exit_code, 128 + 9)
      << "the victim should be SIGKILLed by the OOM killer: " << victim_result.out << victim_result.err;
  Finished traced = tracer.stop();
  ASSERT_EQ(traced.exit_code, 0) << traced.err;

  bool seen = false;
  for (const auto& event : json_lines(traced.out)) {
    if (event["event"] != "oom_kill" || event["victim_pid"] != victim_pid) continue;
    seen = true;
    EXPECT_EQ(event["victim_comm"], "oom_victim");
    EXPECT_EQ(event["memcg"], cgroup.relative_path());
    EXPECT_GT(event["pages"].get<uint64_t>(), 0u);
    EXPECT_FALSE(event["loadavg"].get<std::string>().empty());
    EXPECT_FALSE(event["hook"].get<std::string>().empty());
  }
  EXPECT_TRUE(seen) << "no oom_kill event for PID " << victim_pid << " in:\n" << traced.out << traced.err;
}

// Every hook this kernel offers reports the memcg, including the classic tracepoint, whose record
// carries only the victim's PID (and, since 6.8, command and RSS): the task is found by PID.
TEST(OomKill, EveryTracepointModeReportsTheMemcg) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  for (const char* mode : {"tracepoint", "raw_tp", "tp_btf"}) {
    SCOPED_TRACE(mode);
    MemoryCgroup cgroup("memscope-oomkill-" + std::string(mode) + "-" + std::to_string(getpid()),
                        48ULL << 20);
    if (!cgroup.ok()) GTEST_SKIP() << "skipped: " << cgroup.error();
    Tracer tracer("oomkill", {"--json", "-v", "--probe", mode});
    Child victim({testprog("oom_victim"), cgroup.procs_file(), "512"});
    pid_t victim_pid = victim.pid();
    Finished victim_result = victim.finish(std::chrono::seconds(60));
    EXPECT_EQ(victim_result.exit_code, 128 + 9) << victim_result.out << victim_result.err;
    Finished traced = tracer.stop();
    ASSERT_EQ(traced.exit_code, 0) << traced.err;
    EXPECT_NE(traced.err.find(std::string(": using ") + mode), std::string::npos) << traced.err;
    int seen = 0;
    for (const auto& event : json_lines(traced.out)) {
      if (event["event"] != "oom_kill" || event["victim_pid"] != victim_pid) continue;
      ++seen;
      EXPECT_EQ(event["victim_comm"], "oom_victim");
      EXPECT_EQ(event["memcg"], cgroup.relative_path());
      EXPECT_GT(event["pages"].get<uint64_t>(), 0u);
      EXPECT_EQ(event["hook"].get<std::string>().rfind(std::string(mode) + " ", 0), 0u) << event["hook"];
    }
    EXPECT_EQ(seen, 1) << "oom_kill events for PID " << victim_pid << " in:\n" << traced.out << traced.err;
  }
}

// A forked process that joins the cgroup, writes `mib` MiB and waits to be killed: the OOM killer's
// choice when a smaller process of the same cgroup runs into the limit. Returns its PID once the
// memory is written (-1 on failure).
pid_t start_memory_holder(const std::string& procs_file, size_t mib) {
  int ready[2];
  if (pipe(ready) != 0) return -1;
  char pid_text[32];
  pid_t pid = fork();
  if (pid == 0) {
    // Only async-signal-safe calls: the test process may have threads.
    close(ready[0]);
    int fd = open(procs_file.c_str(), O_WRONLY);
    int length = snprintf(pid_text, sizeof(pid_text), "%d\n", static_cast<int>(getpid()));
    if (fd < 0 || write(fd, pid_text, length) != length) _exit(3);
    close(fd);
    size_t bytes = mib << 20;
    auto* memory =
        static_cast<char*>(mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (memory == MAP_FAILED) _exit(4);
    for (size_t offset = 0; offset < bytes; offset += 4096) memory[offset] = 1;
    if (write(ready[1], "r", 1) != 1) _exit(5);
    for (;;) pause();
  }
  close(ready[1]);
  char byte = 0;
  bool ok = pid > 0 && read(ready[0], &byte, 1) == 1;
  close(ready[0]);
  if (!ok && pid > 0) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  return ok ? pid : -1;
}

// The victim is not the task that ran into the limit: the classic tracepoint's record has only
// the victim's PID, so its memcg comes from the task found by that PID (not the current task).
TEST(OomKill, EveryTracepointModeReportsTheMemcgOfAVictimThatIsNotTheTrigger) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  for (const char* mode : {"tracepoint", "raw_tp", "tp_btf"}) {
    SCOPED_TRACE(mode);
    MemoryCgroup cgroup("memscope-oomkill-other-" + std::string(mode) + "-" + std::to_string(getpid()),
                        48ULL << 20);
    if (!cgroup.ok()) GTEST_SKIP() << "skipped: " << cgroup.error();
    Tracer tracer("oomkill", {"--json", "-v", "--probe", mode});
    pid_t holder = start_memory_holder(cgroup.procs_file(), 36);
    ASSERT_GT(holder, 0) << "could not start a process holding 36 MiB in " << cgroup.procs_file();
    Child trigger({testprog("oom_victim"), cgroup.procs_file(), "24"});
    pid_t trigger_pid = trigger.pid();
    Finished trigger_result = trigger.finish(std::chrono::seconds(60));
    int holder_status = 0;
    for (int i = 0; i < 50 && waitpid(holder, &holder_status, WNOHANG) == 0; i++) usleep(100000);
    if (kill(holder, 0) == 0) {
      kill(holder, SIGKILL);
      waitpid(holder, &holder_status, 0);
    }
    EXPECT_TRUE(WIFSIGNALED(holder_status) && WTERMSIG(holder_status) == SIGKILL)
        << "the 36 MiB holder should be the OOM killer's victim (status " << holder_status << ")";
    // The holder's pages are uncharged when the OOM reaper or its exit gets to them; a trigger
    // that charges again before then can be the memcg's second victim. Then it is killed too, and
    // that second kill must be reported as well.
    bool trigger_killed = trigger_result.exit_code == 128 + SIGKILL;
    EXPECT_TRUE(trigger_result.exit_code == 0 || trigger_killed) << trigger_result.out << trigger_result.err;
    Finished traced = tracer.stop();
    ASSERT_EQ(traced.exit_code, 0) << traced.err;
    std::vector<nlohmann::json> kills;
    for (const auto& event : json_lines(traced.out))
      if (event["event"] == "oom_kill") kills.push_back(event);
    ASSERT_EQ(kills.size(), trigger_killed ? 2u : 1u) << traced.out << traced.err;
    for (size_t i = 0; i < kills.size(); i++) {
      const auto& event = kills[i];
      EXPECT_EQ(event["victim_pid"], i == 0 ? holder : trigger_pid) << event.dump();
      EXPECT_EQ(event["triggered_pid"], trigger_pid);
      EXPECT_EQ(event["triggered_comm"], "oom_victim");
      EXPECT_EQ(event["memcg"], cgroup.relative_path());
      EXPECT_GT(event["pages"].get<uint64_t>(), 0u);
    }
  }
}

TEST(OomKill, TextOutputKeepsBccSentence) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  MemoryCgroup cgroup("memscope-oomkill-text-" + std::to_string(getpid()), 48ULL << 20);
  if (!cgroup.ok()) GTEST_SKIP() << "skipped: " << cgroup.error();
  Tracer tracer("oomkill", {});
  Child victim({testprog("oom_victim"), cgroup.procs_file(), "512"});
  pid_t victim_pid = victim.pid();
  victim.finish(std::chrono::seconds(60));
  Finished traced = tracer.stop();
  std::string expected = "OOM kill of PID " + std::to_string(victim_pid) + " (\"oom_victim\")";
  EXPECT_NE(traced.out.find(expected), std::string::npos) << traced.out;
  EXPECT_NE(traced.out.find("loadavg: "), std::string::npos) << traced.out;
  EXPECT_NE(traced.out.find("memcg: " + cgroup.relative_path()), std::string::npos) << traced.out;
}

}  // namespace
}  // namespace memscope::test
