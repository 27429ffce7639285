// usdt lists the probes of a binary and of a process, and traces them with their arguments,
// including a probe behind a semaphore (usdt_target fires it only while a tracer enables it).
#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>

#include "harness.hpp"

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

TEST(Usdt, RefusesAnUnknownProbeInOneLine) {
  Finished result = run({memscope_binary(), "usdt", "memscope_test:nonexistent", target_path()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(lines(result.err).size(), 1u) << result.err;
  EXPECT_NE(result.err.find("no USDT probe matches memscope_test:nonexistent"), std::string::npos)
      << result.err;
}

TEST(Usdt, NeedsABinaryOrAProcess) {
  Finished result = run({memscope_binary(), "usdt", "-l"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("give a BINARY or -p PID"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace memscope::test
