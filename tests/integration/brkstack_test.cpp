// brkstack counts the heap growth of tests/testprogs/brk_grow.c: COUNT brk() calls of BYTES each
// from grow_heap_from_here(), reported exactly once, from a symbolized stack with that function,
// even though the program has exited when the report is printed.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "harness.hpp"

namespace memscope::test {
namespace {

constexpr int kGrowths = 7;
constexpr uint64_t kBytes = 10000;  // not a page multiple: brk() keeps the exact break

bool has_function(const nlohmann::json& stack, const std::string& function) {
  for (const auto& frame : stack["frames"])
    if (frame["function"] == function) return true;
  return false;
}

struct BrkRun {
  pid_t pid = 0;
  Finished traced;
};

BrkRun run_brk_grow(std::vector<std::string> tracer_args) {
  // brk_grow is built with frame pointers and grows at once after it starts, before the stack
  // service has read its mappings: in dwarf mode some growths would be walked with frame pointers
  // and others with its tables, one call path split over two stacks. This test is about the
  // counts; the DWARF walk has its own tests (unwind_test.cpp).
  tracer_args.insert(tracer_args.end(), {"--comm", "brk_grow", "--stack-mode", "fp"});
  Tracer tracer("brkstack", tracer_args);
  Child program({testprog("brk_grow"), std::to_string(kGrowths), std::to_string(kBytes)});
  BrkRun run;
  run.pid = program.pid();
  Finished done = program.finish();
  if (done.exit_code != 0) throw std::runtime_error("brk_grow failed: " + done.err);
  run.traced = tracer.stop();
  return run;
}

// The stacks of brk_grow's growth, from all reports.
std::vector<nlohmann::json> growth_stacks(const BrkRun& run, int* reports = nullptr) {
  std::vector<nlohmann::json> found;
  for (const auto& event : json_lines(run.traced.out)) {
    if (event["event"] != "brk_stacks") continue;
    if (reports) ++*reports;
    for (const auto& stack : event["stacks"])
      if (stack["pid"] == run.pid && has_function(stack, "grow_heap_from_here")) found.push_back(stack);
  }
  return found;
}

void expect_exact_growth(const BrkRun& run) {
  ASSERT_EQ(run.traced.exit_code, 0) << run.traced.err;
  auto stacks = growth_stacks(run);
  ASSERT_EQ(stacks.size(), 1u) << "expected one stack with grow_heap_from_here for PID " << run.pid
                               << " in:\n"
                               << run.traced.out << run.traced.err;
  const auto& stack = stacks[0];
  EXPECT_EQ(stack["comm"], "brk_grow");
  EXPECT_EQ(stack["calls"], kGrowths);
  EXPECT_EQ(stack["growths"], kGrowths);
  EXPECT_EQ(stack["bytes"], kGrowths * kBytes);
  EXPECT_EQ(stack["failed"], 0);
  // Innermost first: the libc wrapper, then the function that grows the heap, then main.
  ASSERT_GE(stack["frames"].size(), 3u);
  EXPECT_EQ(stack["frames"][0]["function"], "brk");
  EXPECT_EQ(stack["frames"][1]["function"], "grow_heap_from_here");
  EXPECT_EQ(stack["frames"][1]["module"], "brk_grow");
  EXPECT_EQ(stack["frames"][2]["function"], "main");
}

TEST(BrkStack, CountsEachGrowthAndItsBytesBySymbolizedStack) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  expect_exact_growth(run_brk_grow({"--json"}));
}

TEST(BrkStack, WorksOnForcedTpBtf) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  BrkRun run = run_brk_grow({"--json", "-v", "--probe", "tp_btf"});
  EXPECT_NE(run.traced.err.find("using tp_btf sys_enter,sys_exit"), std::string::npos) << run.traced.err;
  expect_exact_growth(run);
}

TEST(BrkStack, IntervalReportsCountEachCallOnce) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  BrkRun run = run_brk_grow({"--json", "0.2"});
  int reports = 0;
  auto stacks = growth_stacks(run, &reports);
  EXPECT_GE(reports, 2) << run.traced.out;
  uint64_t calls = 0, bytes = 0;
  for (const auto& stack : stacks) {
    calls += stack["calls"].get<uint64_t>();
    bytes += stack["bytes"].get<uint64_t>();
  }
  EXPECT_EQ(calls, static_cast<uint64_t>(kGrowths)) << run.traced.out;
  EXPECT_EQ(bytes, kGrowths * kBytes) << run.traced.out;
}

TEST(BrkStack, FoldedWeightsFollowTheSortKey) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  for (const auto& [sort, weight] :
       {std::pair<std::string, uint64_t>{"calls", kGrowths}, {"bytes", kGrowths * kBytes}}) {
    SCOPED_TRACE(sort);
    BrkRun run = run_brk_grow({"--folded", "--sort", sort});
    ASSERT_EQ(run.traced.exit_code, 0) << run.traced.err;
    bool found = false;
    for (const auto& line : lines(run.traced.out)) {
      if (line.rfind("brk_grow;", 0) != 0 || line.find(";main;grow_heap_from_here;brk ") == std::string::npos)
        continue;
      found = true;
      EXPECT_EQ(line.substr(line.rfind(' ') + 1), std::to_string(weight)) << line;
    }
    EXPECT_TRUE(found) << run.traced.out << run.traced.err;
  }
}

TEST(BrkStack, TextShowsHeadingAndFrames) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  BrkRun run = run_brk_grow({});
  ASSERT_EQ(run.traced.exit_code, 0) << run.traced.err;
  std::string heading = fmt::format("brk_grow [{}]: {} calls, {} growths, {} bytes", run.pid, kGrowths,
                                    kGrowths, kGrowths * kBytes);
  auto out = lines(run.traced.out);
  size_t at = 0;
  while (at < out.size() && out[at] != "\t" + heading) at++;
  ASSERT_LT(at + 2, out.size()) << "no heading '" << heading << "' in:\n" << run.traced.out;
  EXPECT_EQ(out[at + 1].rfind("\t\tbrk+", 0), 0u) << out[at + 1];
  EXPECT_EQ(out[at + 2].rfind("\t\tgrow_heap_from_here+0x", 0), 0u) << out[at + 2];
  EXPECT_NE(out[at + 2].find("[brk_grow]"), std::string::npos) << out[at + 2];
}

}  // namespace
}  // namespace memscope::test
