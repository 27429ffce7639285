// usdt lists the probes of a binary and of a process, and traces them with their arguments,
// including a probe behind a semaphore (usdt_target fires it only while a tracer enables it).
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <set>

#include "harness.hpp"
#include "unified_cgroup.hpp"

namespace memscope::test {
namespace {

std::string target_path() { return testprog("usdt_target"); }

TEST(Usdt, ListsTheProbesOfABinaryLikeBpftrace) {
  Finished listed = run({memscope_binary(), "usdt", "-l", target_path()});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  std::vector<std::string> expected = {"usdt:" + target_path() + ":memscope_test:args",
                                       "usdt:" + target_path() + ":memscope_test:guarded"};
  EXPECT_EQ(lines(listed.out), expected) << listed.out;
}

TEST(Usdt, ListsAddressesSemaphoresAndArgumentsInJson) {
  Finished listed = run({memscope_binary(), "usdt", "-l", target_path(), "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  auto events = json_lines(listed.out);
  ASSERT_EQ(events.size(), 2u) << listed.out;
  for (const auto& probe : events) {
    EXPECT_EQ(probe["event"], "usdt_probe");
    EXPECT_EQ(probe["path"], target_path());
    EXPECT_EQ(probe["provider"], "memscope_test");
    EXPECT_EQ(probe["sites"], 1);
    EXPECT_GT(probe["address"].get<uint64_t>(), 0u);
    EXPECT_GT(probe["semaphore"].get<uint64_t>(), 0u) << "every probe of usdt_target has a semaphore";
    EXPECT_GT(probe["semaphore_file_offset"].get<uint64_t>(), 0u);
  }
  EXPECT_EQ(events[0]["name"], "args");
  // -4@…: int, 8@…: unsigned long, -1@…: signed char, 2@…: unsigned short.
  std::string arguments = events[0]["arguments"];
  EXPECT_EQ(arguments.substr(0, 3), "-4@") << arguments;
  EXPECT_NE(arguments.find(" 8@"), std::string::npos) << arguments;
  EXPECT_NE(arguments.find(" -1@"), std::string::npos) << arguments;
  EXPECT_NE(arguments.find(" 2@"), std::string::npos) << arguments;
}

TEST(Usdt, ListsTheProbesOfEveryObjectAProcessMaps) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Child target({target_path()});
  ASSERT_TRUE(target.wait_for("ready", std::chrono::seconds(10), true));
  Finished listed = run({memscope_binary(), "usdt", "-l", "-p", std::to_string(target.pid())});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("usdt:" + target_path() + ":memscope_test:args"), std::string::npos)
      << listed.out;
  // A pattern narrows the list.
  Finished narrowed =
      run({memscope_binary(), "usdt", "-l", "-p", std::to_string(target.pid()), "memscope_test:guard*"});
  EXPECT_EQ(lines(narrowed.out), std::vector<std::string>{"usdt:" + target_path() + ":memscope_test:guarded"})
      << narrowed.out << narrowed.err;
  target.signal(SIGKILL);
}

// -p lists the probes of every object the process maps: here the shared library it dlopen()ed.
TEST(Usdt, ListsTheProbesOfTheLibrariesAProcessMaps) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  std::string library = testprog("libusdt_fake_libc.so");
  Child user({testprog("usdt_fake_libc_user"), library}, /*capture_stdin=*/true);
  ASSERT_TRUE(user.wait_for("ready", std::chrono::seconds(10), true)) << user.err();
  Finished listed = run({memscope_binary(), "usdt", "-l", "-p", std::to_string(user.pid()), "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  std::set<std::string> names;
  for (const auto& probe : json_lines(listed.out)) {
    if (probe["path"] != std::filesystem::canonical(library).string()) continue;
    EXPECT_EQ(probe["provider"], "libc");
    names.insert(probe["name"].get<std::string>());
    // A shared library's probes are at link-time addresses (its base is 0), never where it is mapped.
    EXPECT_LT(probe["address"].get<uint64_t>(), 0x1000000u) << probe.dump();
    EXPECT_EQ(probe["semaphore"].get<uint64_t>() != 0, probe["name"] == "memory_tcache_double_free")
        << probe.dump();
  }
  EXPECT_EQ(names,
            (std::set<std::string>{"memory_sbrk_more", "memory_sbrk_less", "memory_heap_new",
                                   "memory_heap_more", "memory_arena_new", "memory_mallopt",
                                   "memory_malloc_retry", "memory_arena_retry", "memory_tcache_double_free"}))
      << listed.out;
  // The listing by file gives the same probes.
  Finished by_file = run({memscope_binary(), "usdt", "-l", library, "libc:memory_*"});
  EXPECT_EQ(lines(by_file.out).size(), names.size()) << by_file.out;
}

TEST(Usdt, TracesArgumentsWithTheirDeclaredSizeAndSign) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Child target({target_path()});
  ASSERT_TRUE(target.wait_for("ready", std::chrono::seconds(10), true));
  Tracer tracer("usdt", {"memscope_test:args", "-p", std::to_string(target.pid()), "--json"});
  ASSERT_TRUE(tracer.wait_for("\"name\":\"args\"", std::chrono::seconds(10), true))
      << tracer.out() << tracer.err();
  Finished traced = tracer.stop();
  target.signal(SIGKILL);
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  int seen = 0;
  for (const auto& event : json_lines(traced.out)) {
    if (event["event"] != "usdt") continue;
    seen++;
    EXPECT_EQ(event["pid"], target.pid());
    EXPECT_EQ(event["comm"], "usdt_target");
    EXPECT_EQ(event["provider"], "memscope_test");
    EXPECT_EQ(event["name"], "args");
    EXPECT_EQ(event["path"], target_path());
    EXPECT_EQ(event["arg_count"], 4);
    EXPECT_EQ(event["arg0"], -42);
    EXPECT_EQ(event["arg1"], 0x123456789LL);
    EXPECT_EQ(event["arg2"], -1);
    EXPECT_EQ(event["arg3"], 65535);
  }
  EXPECT_GT(seen, 0) << traced.out;
}

TEST(Usdt, EnablesSemaphoresOfTracedProbes) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Child target({target_path()});
  ASSERT_TRUE(target.wait_for("ready", std::chrono::seconds(10), true));
  Tracer tracer("usdt", {"memscope_test:guarded", "-p", std::to_string(target.pid())});
  // usdt_target fires `guarded` 5 times once it sees its semaphore raised, then exits; the tracer
  // stops with it.
  Finished program = target.finish(std::chrono::seconds(30));
  int fired = 0, first = -1;
  ASSERT_EQ(
      sscanf(program.out.c_str(), "ready\nguarded probe fired %d times from iteration %d", &fired, &first), 2)
      << program.out;
  EXPECT_EQ(fired, 5) << program.out;
  Finished traced = tracer.finish(std::chrono::seconds(10));
  EXPECT_EQ(traced.exit_code, 0) << traced.err;
  auto output = lines(traced.out);
  ASSERT_FALSE(output.empty());
  EXPECT_NE(output[0].find("TIME"), std::string::npos);
  EXPECT_NE(output[0].find("PROBE"), std::string::npos);
  EXPECT_NE(output[0].find("ARGS"), std::string::npos);
  // The kernel raises the semaphore just before it writes the breakpoint, so the first firing can
  // precede the uprobe; every later one is traced, with the iteration as its argument.
  std::vector<int> iterations;
  for (const auto& line : output)
    if (line.find("memscope_test:guarded") != std::string::npos &&
        line.find(std::to_string(target.pid())) != std::string::npos)
      iterations.push_back(std::stoi(line.substr(line.rfind(' ') + 1)));
  ASSERT_GE(iterations.size(), 4u) << traced.out;
  ASSERT_LE(iterations.size(), 5u) << traced.out;
  for (size_t i = 0; i < iterations.size(); i++)
    EXPECT_EQ(iterations[i], first + 5 - static_cast<int>(iterations.size()) + static_cast<int>(i))
        << traced.out;
}

// Without -p the probe is traced in every process running the binary, also ones started later;
// --cgroup and --comm narrow that in the kernel. The alias is a symlink to usdt_target: the same
// file (so the same uprobe), another command name.
TEST(Usdt, TracesEveryProcessOfABinaryFilteredByCgroupAndComm) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  UnifiedCgroup cgroup("memscope-usdt");
  if (!cgroup.ok()) GTEST_SKIP() << "skipped: " << cgroup.error();
  std::string alias_dir = ::testing::TempDir() + "memscope-usdt-alias-" + std::to_string(getpid());
  std::filesystem::create_directories(alias_dir);
  std::string alias = alias_dir + "/usdt_alias";
  std::filesystem::remove(alias);
  std::filesystem::create_symlink(target_path(), alias);

  Tracer all("usdt", {"memscope_test:args", target_path(), "--json"});
  Tracer in_cgroup("usdt", {"memscope_test:args", target_path(), "--json", "--cgroup", cgroup.directory()});
  Tracer by_comm("usdt", {"memscope_test:args", target_path(), "--json", "--comm", "usdt_alias"});
  Child inside(cgroup.shell_inside(target_path()));
  Child outside({alias});
  ASSERT_TRUE(inside.wait_for("ready", std::chrono::seconds(10), true));
  ASSERT_TRUE(outside.wait_for("ready", std::chrono::seconds(10), true));
  for (Tracer* tracer : {&all, &in_cgroup, &by_comm})
    EXPECT_TRUE(tracer->wait_for("\"name\":\"args\"", std::chrono::seconds(10), true)) << tracer->err();
  usleep(200000);
  Finished all_events = all.stop();
  Finished cgroup_events = in_cgroup.stop();
  Finished comm_events = by_comm.stop();
  pid_t inside_pid = inside.pid(), outside_pid = outside.pid();
  inside.signal(SIGKILL);
  outside.signal(SIGKILL);
  std::filesystem::remove_all(alias_dir);

  auto pids_of = [](const Finished& traced) {
    std::set<int> pids;
    for (const auto& event : json_lines(traced.out))
      if (event["event"] == "usdt") pids.insert(event["pid"].get<int>());
    return pids;
  };
  EXPECT_EQ(pids_of(all_events), (std::set<int>{inside_pid, outside_pid})) << all_events.out;
  EXPECT_EQ(pids_of(cgroup_events), std::set<int>{inside_pid}) << cgroup_events.out;
  EXPECT_EQ(pids_of(comm_events), std::set<int>{outside_pid}) << comm_events.out;
  for (const auto& event : json_lines(comm_events.out))
    if (event["event"] == "usdt") {
      EXPECT_EQ(event["comm"], "usdt_alias");
    }
}

TEST(Usdt, RefusesAnUnknownProbeInOneLine) {
  Finished result = run({memscope_binary(), "usdt", "memscope_test:nonexistent", target_path()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(lines(result.err).size(), 1u) << result.err;
  EXPECT_NE(result.err.find("no USDT probe matches memscope_test:nonexistent"), std::string::npos)
      << result.err;
}

// doctor: usdt attaches uprobes; text, JSON and --all-modes say so.
TEST(Usdt, DoctorShowsTheUprobeLines) {
  Finished doctor = run({memscope_binary(), "doctor", "--all-modes"});
  ASSERT_EQ(doctor.exit_code, 0) << doctor.err;
  int tool_lines = 0, mode_lines = 0;
  bool uprobe_feature = false;
  for (const auto& line : lines(doctor.out)) {
    if (line.rfind("uprobe ", 0) == 0) uprobe_feature = has_word(line, "available");
    if (line.rfind("usdt ", 0) != 0) continue;
    if (line.find(" works ") != std::string::npos && line.find(" uprobe ") != std::string::npos)
      mode_lines++;
    else if (line.find(" ok ") != std::string::npos && line.find("uprobe") != std::string::npos)
      tool_lines++;
  }
  EXPECT_TRUE(uprobe_feature) << doctor.out;
  EXPECT_EQ(tool_lines, 1) << doctor.out;
  EXPECT_EQ(mode_lines, 1) << doctor.out;
  Finished json = run({memscope_binary(), "doctor", "--json"});
  bool found = false;
  for (const auto& row : json_lines(json.out))
    if (row["event"] == "tool_probe" && row["tool"] == "usdt") {
      found = true;
      EXPECT_EQ(row["status"], "ok") << row.dump();
    }
  EXPECT_TRUE(found) << json.out;
}

TEST(Usdt, NeedsABinaryOrAProcess) {
  Finished result = run({memscope_binary(), "usdt", "-l"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("give a BINARY or -p PID"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace memscope::test
