// mallocsnoop refuses Debian's glibc (built without SystemTap probes) in one line, and decodes the
// memory_* probes of libusdt_fake_libc.so, a stand-in with glibc's provider, names and argument
// layouts, including the double-free check with its user stack.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "harness.hpp"
#include "unified_cgroup.hpp"

namespace memscope::test {
namespace {

std::string fake_libc() {
  std::string path = testprog("libusdt_fake_libc.so");
  if (access(path.c_str(), R_OK) != 0)
    ADD_FAILURE() << path << " was not built: tests/CMakeLists.txt must include tests/testprogs/usdt.cmake";
  return path;
}

// The libc a process of this machine maps, as /proc/PID/maps names it.
std::string mapped_libc(pid_t pid) {
  Finished maps = run({"/bin/cat", "/proc/" + std::to_string(pid) + "/maps"});
  for (const auto& line : lines(maps.out)) {
    size_t slash = line.find('/');
    if (slash == std::string::npos) continue;
    std::string path = line.substr(slash);
    std::string name = path.substr(path.rfind('/') + 1);
    if (name.rfind("libc.so", 0) == 0 || name.rfind("libc-", 0) == 0) return path;
  }
  return "";
}

TEST(MallocSnoop, RefusesALibcWithoutProbesInOneLine) {
  Child sleeper({"/bin/sleep", "30"});
  std::string libc;
  for (int i = 0; i < 50 && libc.empty(); i++) {
    libc = mapped_libc(sleeper.pid());
    if (libc.empty()) usleep(20000);
  }
  ASSERT_FALSE(libc.empty());
  // The premise: this libc has no memory probes (Debian 12's has no .note.stapsdt at all).
  Finished listed = run({memscope_binary(), "usdt", "-l", libc, "libc:memory_*"});
  if (!lines(listed.out).empty()) GTEST_SKIP() << "skipped: " << libc << " has glibc's memory probes";

  Finished refused = run({memscope_binary(), "mallocsnoop", "-p", std::to_string(sleeper.pid())});
  EXPECT_EQ(refused.exit_code, 1);
  ASSERT_EQ(lines(refused.err).size(), 1u) << refused.err;
  EXPECT_TRUE(refused.out.empty()) << refused.out;
  const std::string& message = refused.err;
  EXPECT_NE(message.find("memscope mallocsnoop: " + libc + " has no USDT notes"), std::string::npos)
      << message;
  EXPECT_NE(message.find("memscope brkstack"), std::string::npos) << message;
  EXPECT_NE(message.find("memscope mmapsnoop"), std::string::npos) << message;
  EXPECT_NE(message.find("memscope memleak"), std::string::npos) << message;

  // Without -p it checks the system's libc the same way.
  Finished system_wide = run({memscope_binary(), "mallocsnoop"});
  EXPECT_EQ(system_wide.exit_code, 1);
  EXPECT_EQ(lines(system_wide.err).size(), 1u) << system_wide.err;
  EXPECT_NE(system_wide.err.find("has no USDT notes"), std::string::npos) << system_wide.err;
}

TEST(MallocSnoop, DecodesGlibcMemoryProbesByName) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Child user({testprog("usdt_fake_libc_user"), fake_libc()}, /*capture_stdin=*/true);
  ASSERT_TRUE(user.wait_for("ready", std::chrono::seconds(10), true)) << user.err();
  Tracer tracer("mallocsnoop", {"-p", std::to_string(user.pid()), "-O", fake_libc(), "--json"});
  user.write_stdin("go\n");
  ASSERT_TRUE(user.wait_for("fired double_free=", std::chrono::seconds(10), true)) << user.out();
  // The double-free probe is behind a semaphore: it fires only because mallocsnoop enabled it.
  EXPECT_NE(user.out().find("fired double_free=1"), std::string::npos) << user.out();
  ASSERT_TRUE(tracer.wait_for("\"event\":\"double_free\"", std::chrono::seconds(10), true)) << tracer.out();
  Finished traced = tracer.stop();
  ASSERT_EQ(traced.exit_code, 0) << traced.err;

  std::map<std::string, nlohmann::json> by_probe;
  nlohmann::json double_free_report;
  for (const auto& event : json_lines(traced.out)) {
    if (event["event"] == "malloc_probe") {
      EXPECT_EQ(event["pid"], user.pid());
      EXPECT_EQ(event["comm"], "usdt_fake_libc_");
      by_probe[event["probe"]] = event;
    } else if (event["event"] == "double_free") {
      double_free_report = event;
    }
  }
  ASSERT_EQ(by_probe.size(), 9u) << traced.out;
  EXPECT_EQ(by_probe["memory_sbrk_more"]["brk"], 0x5555aaaa0000ULL);
  EXPECT_EQ(by_probe["memory_sbrk_more"]["size"], 135168);
  EXPECT_EQ(by_probe["memory_sbrk_less"]["new_brk"], 0x5555aaaa1000ULL);
  EXPECT_EQ(by_probe["memory_sbrk_less"]["size"], 131072);
  EXPECT_EQ(by_probe["memory_heap_new"]["heap"], 0x7f0000000000ULL);
  EXPECT_EQ(by_probe["memory_heap_new"]["size"], 1 << 20);
  EXPECT_EQ(by_probe["memory_heap_more"]["new_size"], 2 << 20);
  EXPECT_EQ(by_probe["memory_arena_new"]["arena"], 0x7f0000000020ULL);
  EXPECT_EQ(by_probe["memory_arena_new"]["size"], 4096);
  EXPECT_EQ(by_probe["memory_mallopt"]["param"], -1);
  EXPECT_EQ(by_probe["memory_mallopt"]["param_name"], "M_TRIM_THRESHOLD");
  EXPECT_EQ(by_probe["memory_mallopt"]["value"], 65536);
  EXPECT_EQ(by_probe["memory_malloc_retry"]["bytes"], 1000);
  EXPECT_EQ(by_probe["memory_arena_retry"]["bytes"], 1000);
  EXPECT_EQ(by_probe["memory_arena_retry"]["arena"], 0x7f0000000020ULL);
  EXPECT_EQ(by_probe["memory_tcache_double_free"]["pointer"], 0x5555aaab1230ULL);
  EXPECT_EQ(by_probe["memory_tcache_double_free"]["tcache_bin"], 3);
  EXPECT_EQ(by_probe["memory_tcache_double_free"]["error"], "double free");

  // The double free comes with the user stack of the free: the fake libc's probe function, the
  // test program's free_twice() and main().
  ASSERT_TRUE(double_free_report.is_object()) << traced.out;
  ASSERT_EQ(double_free_report["stacks"].size(), 1u);
  const auto& entry = double_free_report["stacks"][0];
  EXPECT_EQ(entry["pid"], user.pid());
  EXPECT_EQ(entry["pointer"], 0x5555aaab1230ULL);
  EXPECT_EQ(entry["error"], "double free");
  std::vector<std::string> functions;
  for (const auto& frame : entry["frames"]) functions.push_back(frame["function"]);
  auto position = [&](const std::string& name) {
    return std::find(functions.begin(), functions.end(), name) - functions.begin();
  };
  ASSERT_LT(position("fake_memory_tcache_double_free"), static_cast<long>(functions.size())) << entry.dump();
  ASSERT_LT(position("free_twice"), static_cast<long>(functions.size())) << entry.dump();
  ASSERT_LT(position("main"), static_cast<long>(functions.size())) << entry.dump();
  EXPECT_LT(position("fake_memory_tcache_double_free"), position("free_twice"));
  EXPECT_LT(position("free_twice"), position("main"));
}

// -p without -O searches every object the process maps: the probes of a C library linked into the
// executable itself, or of one loaded with dlopen(), are found without naming the file.
TEST(MallocSnoop, FindsTheProbesInWhicheverObjectOfTheProcessHasThem) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  struct Case {
    std::vector<std::string> command;
    std::string object;  // the file that carries the probes
  };
  std::string builtin = testprog("usdt_fake_libc_builtin");
  for (const Case& target : {Case{{builtin, "-"}, builtin},
                             Case{{testprog("usdt_fake_libc_user"), fake_libc()}, fake_libc()}}) {
    SCOPED_TRACE(target.object);
    Child user(target.command, /*capture_stdin=*/true);
    ASSERT_TRUE(user.wait_for("ready", std::chrono::seconds(10), true)) << user.err();
    Tracer tracer("mallocsnoop", {"-p", std::to_string(user.pid()), "--json"});
    EXPECT_NE(tracer.err().find(std::filesystem::canonical(target.object).string()), std::string::npos)
        << "the attach line names the object with the probes: " << tracer.err();
    user.write_stdin("go\n");
    ASSERT_TRUE(user.wait_for("fired double_free=", std::chrono::seconds(10), true)) << user.out();
    ASSERT_TRUE(tracer.wait_for("\"event\":\"double_free\"", std::chrono::seconds(10), true)) << tracer.out();
    Finished traced = tracer.stop();
    ASSERT_EQ(traced.exit_code, 0) << traced.err;
    std::set<std::string> probes;
    for (const auto& event : json_lines(traced.out))
      if (event["event"] == "malloc_probe" && event["pid"] == user.pid()) probes.insert(event["probe"]);
    // usdt_fake_libc_user fires each of the nine memory_* probes once per line.
    EXPECT_EQ(probes.size(), 9u) << traced.out;
  }
}

TEST(MallocSnoop, TextEventsAndDoubleFreeStack) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Child user({testprog("usdt_fake_libc_user"), fake_libc()}, /*capture_stdin=*/true);
  ASSERT_TRUE(user.wait_for("ready", std::chrono::seconds(10), true)) << user.err();
  Tracer tracer("mallocsnoop", {"-p", std::to_string(user.pid()), "--lib", fake_libc()});
  user.write_stdin("go\n");
  ASSERT_TRUE(user.wait_for("fired double_free=", std::chrono::seconds(10), true)) << user.out();
  ASSERT_TRUE(tracer.wait_for("free_twice", std::chrono::seconds(10), true)) << tracer.out();
  Finished traced = tracer.stop();
  auto output = lines(traced.out);
  ASSERT_FALSE(output.empty());
  for (const char* column : {"TIME", "PID", "COMM", "PROBE", "DETAILS"})
    EXPECT_NE(output[0].find(column), std::string::npos) << output[0];
  EXPECT_NE(traced.out.find("memory_sbrk_more"), std::string::npos);
  EXPECT_NE(traced.out.find("brk=0x5555aaaa0000 size=135168"), std::string::npos) << traced.out;
  EXPECT_NE(traced.out.find("param=M_TRIM_THRESHOLD value=65536"), std::string::npos) << traced.out;
  EXPECT_NE(traced.out.find("pointer=0x5555aaab1230 tcache_bin=3 [double free]"), std::string::npos)
      << traced.out;
  EXPECT_NE(
      traced.out.find("double free of 0x5555aaab1230 (tcache bin 3) in PID " + std::to_string(user.pid())),
      std::string::npos)
      << traced.out;
}

TEST(MallocSnoop, CountsPerIntervalWithAnInterval) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Child user({testprog("usdt_fake_libc_user"), fake_libc()}, /*capture_stdin=*/true);
  ASSERT_TRUE(user.wait_for("ready", std::chrono::seconds(10), true)) << user.err();
  Tracer tracer("mallocsnoop", {"-p", std::to_string(user.pid()), "-O", fake_libc(), "--json", "1"});
  user.write_stdin("go\ngo\ngo\n");
  ASSERT_TRUE(user.wait_for("fired double_free=1\nfired double_free=1\nfired double_free=1",
                            std::chrono::seconds(10), true))
      << user.out();
  ASSERT_TRUE(tracer.wait_for("malloc_probe_count", std::chrono::seconds(5), true)) << tracer.out();
  Finished traced = tracer.stop();
  std::map<std::string, uint64_t> totals;
  for (const auto& event : json_lines(traced.out)) {
    EXPECT_NE(event["event"], "malloc_probe") << "no single events in counting mode";
    if (event["event"] != "malloc_probe_count") continue;
    EXPECT_EQ(event["pid"], user.pid());
    totals[event["probe"]] += event["count"].get<uint64_t>();
  }
  EXPECT_EQ(totals["memory_sbrk_more"], 3u) << traced.out;
  EXPECT_EQ(totals["memory_mallopt"], 3u) << traced.out;
  EXPECT_EQ(totals["memory_tcache_double_free"], 3u) << traced.out;
}

// Without -p, mallocsnoop traces every process that maps the library; --cgroup and --comm narrow
// it in the kernel. The alias is a symlink to usdt_fake_libc_user (another command name).
TEST(MallocSnoop, TracesEveryProcessOfTheLibraryFilteredByCgroupAndComm) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  UnifiedCgroup cgroup("memscope-mallocsnoop");
  if (!cgroup.ok()) GTEST_SKIP() << "skipped: " << cgroup.error();
  std::string alias_dir = ::testing::TempDir() + "memscope-mallocsnoop-alias-" + std::to_string(getpid());
  std::filesystem::create_directories(alias_dir);
  std::string alias = alias_dir + "/malloc_alias";
  std::filesystem::remove(alias);
  std::filesystem::create_symlink(testprog("usdt_fake_libc_user"), alias);

  Child inside(cgroup.shell_inside(testprog("usdt_fake_libc_user") + " " + fake_libc()),
               /*capture_stdin=*/true);
  Child outside({alias, fake_libc()}, /*capture_stdin=*/true);
  ASSERT_TRUE(inside.wait_for("ready", std::chrono::seconds(10), true)) << inside.err();
  ASSERT_TRUE(outside.wait_for("ready", std::chrono::seconds(10), true)) << outside.err();
  Tracer all("mallocsnoop", {"-O", fake_libc(), "--json"});
  Tracer in_cgroup("mallocsnoop", {"-O", fake_libc(), "--json", "--cgroup", cgroup.directory()});
  Tracer by_comm("mallocsnoop", {"-O", fake_libc(), "--json", "--comm", "malloc_alias"});
  inside.write_stdin("go\n");
  outside.write_stdin("go\n");
  ASSERT_TRUE(inside.wait_for("fired double_free=", std::chrono::seconds(10), true)) << inside.out();
  ASSERT_TRUE(outside.wait_for("fired double_free=", std::chrono::seconds(10), true)) << outside.out();
  for (Tracer* tracer : {&all, &in_cgroup, &by_comm})
    EXPECT_TRUE(tracer->wait_for("\"event\":\"double_free\"", std::chrono::seconds(10), true))
        << tracer->out();
  Finished all_events = all.stop();
  Finished cgroup_events = in_cgroup.stop();
  Finished comm_events = by_comm.stop();
  std::filesystem::remove_all(alias_dir);

  auto probes_by_pid = [](const Finished& traced) {
    std::map<int, int> counts;
    for (const auto& event : json_lines(traced.out))
      if (event["event"] == "malloc_probe") counts[event["pid"].get<int>()]++;
    return counts;
  };
  // 9 probes fire per "go" line in each process.
  EXPECT_EQ(probes_by_pid(all_events), (std::map<int, int>{{inside.pid(), 9}, {outside.pid(), 9}}))
      << all_events.out;
  EXPECT_EQ(probes_by_pid(cgroup_events), (std::map<int, int>{{inside.pid(), 9}})) << cgroup_events.out;
  EXPECT_EQ(probes_by_pid(comm_events), (std::map<int, int>{{outside.pid(), 9}})) << comm_events.out;
}

// doctor: mallocsnoop's probes are uprobes, which this kernel has.
TEST(MallocSnoop, DoctorShowsTheUprobeLine) {
  Finished doctor = run({memscope_binary(), "doctor", "--json"});
  ASSERT_EQ(doctor.exit_code, 0) << doctor.err;
  bool uprobe_feature = false, tool_line = false;
  for (const auto& row : json_lines(doctor.out)) {
    if (row["event"] == "kernel_feature" && row["feature"] == "uprobe")
      uprobe_feature = row["status"] == "available";
    if (row["event"] == "tool_probe" && row["tool"] == "mallocsnoop") {
      tool_line = true;
      EXPECT_EQ(row["status"], "ok") << row.dump();
      EXPECT_EQ(row["hook"].get<std::string>().rfind("uprobe", 0), 0u) << row.dump();
    }
  }
  EXPECT_TRUE(uprobe_feature) << doctor.out;
  EXPECT_TRUE(tool_line) << doctor.out;
}

}  // namespace
}  // namespace memscope::test
