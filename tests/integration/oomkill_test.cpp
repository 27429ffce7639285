// oomkill sees an OOM kill in a small memory cgroup: the victim's PID and command, and the cgroup.
#include <gtest/gtest.h>
#include <unistd.h>

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
  EXPECT_EQ(victim_result.exit_code, 128 + 9) << "the victim should be SIGKILLed by the OOM killer: "
                                               << victim_result.out << victim_result.err;
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
