// vmscan sees the memory cgroup reclaim of a program that fills page cache inside a 64 MiB memory
// cgroup: per-interval totals, and latency histograms that count exactly the same reclaims.
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <regex>

#include "harness.hpp"
#include "reclaim_workload.hpp"

namespace memscope::test {
namespace {

using namespace std::chrono_literals;

uint64_t histogram_total(const nlohmann::json& histogram) {
  uint64_t total = 0;
  for (const auto& bucket : histogram["buckets"]) total += bucket["count"].get<uint64_t>();
  return total;
}

TEST(Vmscan, SeesMemcgReclaimOfASmallCgroup) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  // 200 MiB of page cache through a 64 MiB cgroup: the program reclaims its own cgroup's pages.
  ReclaimWorkload reclaim("memscope-vmscan", "200");
  if (!reclaim.skip_reason.empty()) GTEST_SKIP() << "skipped: " << reclaim.skip_reason;
  Child& workload = *reclaim.child;
  Tracer tracer("vmscan", {"--json", "-p", std::to_string(workload.pid())});
  workload.write_stdin("go\n");
  Finished work = workload.finish(120s);
  ASSERT_EQ(work.exit_code, 0) << work.out << work.err;
  // -p: the tracer stops by itself when the workload exits, reporting the last partial interval.
  Finished traced = tracer.finish(30s);
  ASSERT_EQ(traced.exit_code, 0) << traced.err;

  uint64_t memcg_reclaims = 0, memcg_ns = 0, slab_shrinks = 0, direct_reclaims = 0, intervals = 0;
  std::map<std::string, uint64_t> histogram_totals;
  for (const auto& event : json_lines(traced.out)) {
    if (event["event"] == "vmscan") {
      intervals++;
      memcg_reclaims += event["memcg_reclaims"].get<uint64_t>();
      memcg_ns += event["memcg_reclaim_ns"].get<uint64_t>();
      slab_shrinks += event["slab_shrinks"].get<uint64_t>();
      direct_reclaims += event["direct_reclaims"].get<uint64_t>();
      EXPECT_EQ(event["memcg_reclaims"].get<uint64_t>() > 0, event["memcg_reclaim_ns"].get<uint64_t>() > 0)
          << event;
      EXPECT_GT(event["interval_s"].get<double>(), 0.0);
      EXPECT_TRUE(event.contains("kswapd_wakeups"));
      EXPECT_TRUE(event.contains("writepage"));  // mm_vmscan_write_folio exists here
    } else if (event["event"] == "histogram") {
      histogram_totals[event["name"]] = histogram_total(event);
    }
  }
  EXPECT_GE(intervals, 1u) << traced.out;
  EXPECT_GT(memcg_reclaims, 0u) << "no memcg reclaim seen for PID " << workload.pid() << ":\n" << traced.out;
  EXPECT_GT(memcg_ns, 0u);
  // Intervals and histograms are two views of the same reclaims, the last partial interval included.
  ASSERT_EQ(histogram_totals.size(), 3u) << traced.out;
  EXPECT_EQ(histogram_totals["memcg_reclaim_latency"], memcg_reclaims);
  // Slab shrinking may or may not happen in a memcg reclaim: only its two views must agree.
  EXPECT_EQ(histogram_totals["slab_shrink_latency"], slab_shrinks);
  EXPECT_EQ(histogram_totals["direct_reclaim_latency"], direct_reclaims);
}

TEST(Vmscan, ReportsArriveLineByLineThroughAPipe) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Tracer tracer("vmscan", {"--json", "0.3"});
  // The first interval's record is read from the pipe while vmscan still runs, not at its exit.
  ASSERT_TRUE(tracer.wait_for("\"event\":\"vmscan\"", 5s, /*in_stdout=*/true))
      << tracer.out() << tracer.err();
  EXPECT_TRUE(still_running(tracer.pid()));
  Finished traced = tracer.stop();
  EXPECT_EQ(traced.exit_code, 0) << traced.err;
}

TEST(Vmscan, TextKeepsTheBooksColumns) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Finished traced = run({memscope_binary(), "vmscan", "-d", "1.2", "0.5"});
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  auto output = lines(traced.out);
  ASSERT_GE(output.size(), 3u) << traced.out;
  EXPECT_EQ(output[0], "TIME       S-SLABms  D-RECLAIMms  M-RECLAIMms KSWAPD WRITEPAGE");
  // Two full intervals and the partial one up to the end of -d, each a row under the header.
  std::regex row(R"(^\d\d:\d\d:\d\d .*)");
  size_t rows = 0;
  for (const auto& line : output) {
    if (!std::regex_match(line, row)) continue;
    rows++;
    EXPECT_EQ(line.size(), output[0].size()) << line;
  }
  EXPECT_EQ(rows, 3u) << traced.out;
  EXPECT_NE(traced.out.find("Slab shrink latency:"), std::string::npos) << traced.out;
  EXPECT_NE(traced.out.find("Direct reclaim latency:"), std::string::npos) << traced.out;
  EXPECT_NE(traced.out.find("Memory cgroup reclaim latency:"), std::string::npos) << traced.out;
  EXPECT_NE(traced.err.find("Tracing page reclaim for 1.2 s... Hit Ctrl-C to end."), std::string::npos)
      << traced.err;
}

}  // namespace
}  // namespace memscope::test
