// drsnoop sees each memory cgroup reclaim of a program that fills page cache inside a 64 MiB memory
// cgroup: its PID, command, cgroup, latency and pages, and the system's free memory with -e.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "harness.hpp"
#include "reclaim_workload.hpp"

namespace memscope::test {
namespace {

using namespace std::chrono_literals;

// drsnoop -e reads the free page count in BPF when kallsyms lists vm_zone_stat (needs
// CONFIG_KALLSYMS_ALL), else from /proc/meminfo.
std::string expected_free_source() {
  std::ifstream in("/proc/kallsyms");
  std::string address, type, symbol, rest;
  while (in >> address >> type >> symbol) {
    std::getline(in, rest);
    if (symbol == "vm_zone_stat" && address.find_first_not_of('0') != std::string::npos)
      return "vm_zone_stat";
  }
  return "meminfo";
}

TEST(Drsnoop, SeesEachMemcgReclaimOfTheTestProgram) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  ReclaimWorkload workload("memscope-drsnoop", "200");
  if (!workload.skip_reason.empty()) GTEST_SKIP() << "skipped: " << workload.skip_reason;
  pid_t pid = workload.child->pid();

  Tracer tracer("drsnoop", {"--json", "-m", "-e", "-p", std::to_string(pid)});
  workload.child->write_stdin("go\n");
  Finished work = workload.child->finish(120s);
  ASSERT_EQ(work.exit_code, 0) << work.out << work.err;
  Finished traced = tracer.finish(30s);  // -p: stops when the workload exits
  ASSERT_EQ(traced.exit_code, 0) << traced.err;

  size_t memcg_events = 0, events_with_pages = 0;
  std::string free_source = expected_free_source();
  for (const auto& event : json_lines(traced.out)) {
    if (event["event"] != "reclaim") continue;
    EXPECT_EQ(event["pid"], pid) << event;
    EXPECT_EQ(event["tid"], pid) << event;
    EXPECT_EQ(event["comm"], "reclaim_pagecac") << event;  // the kernel keeps 15 characters
    EXPECT_EQ(event["uid"], 0) << event;
    EXPECT_GT(event["latency_ns"].get<uint64_t>(), 0u) << event;
    EXPECT_GT(event["free_kb"].get<uint64_t>(), 0u) << event;
    EXPECT_EQ(event["free_source"], free_source) << event;
    if (event["kind"] == "memcg") {
      memcg_events++;
      EXPECT_EQ(event["memcg"], workload.cgroup->relative_path()) << event;
    }
    if (event["pages"].get<uint64_t>() > 0) events_with_pages++;
  }
  EXPECT_GT(memcg_events, 0u) << "no memcg reclaim by PID " << pid << " in:\n" << traced.out << traced.err;
  EXPECT_GT(events_with_pages, 0u) << "clean page cache should be reclaimed:\n" << traced.out;
}

TEST(Drsnoop, WithoutMemcgOptionOnlyDirectReclaimIsReported) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  ReclaimWorkload workload("memscope-drsnoop-direct", "120");
  if (!workload.skip_reason.empty()) GTEST_SKIP() << "skipped: " << workload.skip_reason;
  pid_t pid = workload.child->pid();

  // The positive control: the same reclaims traced at once with -m must include memcg ones, so an
  // absence of memcg records below means the option filtered them, not that none happened.
  Tracer tracer("drsnoop", {"--json", "-p", std::to_string(pid)});
  Tracer control("drsnoop", {"--json", "-m", "-p", std::to_string(pid)});
  workload.child->write_stdin("go\n");
  Finished work = workload.child->finish(120s);
  ASSERT_EQ(work.exit_code, 0) << work.out << work.err;
  Finished traced = tracer.finish(30s);
  Finished controlled = control.finish(30s);
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  ASSERT_EQ(controlled.exit_code, 0) << controlled.err;
  EXPECT_NE(traced.err.find("Tracing direct reclaim..."), std::string::npos) << traced.err;
  size_t memcg_in_control = 0;
  for (const auto& event : json_lines(controlled.out))
    memcg_in_control += event["event"] == "reclaim" && event["kind"] == "memcg";
  EXPECT_GT(memcg_in_control, 0u) << "the control (-m) saw no memcg reclaim:\n" << controlled.out << controlled.err;
  for (const auto& event : json_lines(traced.out)) {
    if (event["event"] == "reclaim") {
      EXPECT_EQ(event["kind"], "direct") << event;
    }
  }
}

TEST(Drsnoop, TextRecordsArriveLineByLineThroughAPipe) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  MemoryCgroup cgroup("memscope-drsnoop-text-" + std::to_string(getpid()), 64ULL << 20);
  if (!cgroup.ok()) GTEST_SKIP() << "skipped: " << cgroup.error();
  ScratchDirectory scratch("memscope-drsnoop");
  if (!scratch.ok()) GTEST_SKIP() << "skipped: no disk-backed directory for the page-cache file";

  Tracer tracer("drsnoop", {"-m", "--comm", "reclaim_pagecac"});
  Child workload(
      {testprog("reclaim_pagecache"), cgroup.procs_file(), scratch.path() + "/pagecache.dat", "150"});
  std::string pid = std::to_string(workload.pid());
  // The first record is read from the pipe while drsnoop still runs (no -p: it runs until Ctrl-C).
  ASSERT_TRUE(tracer.wait_for("reclaim_pagecac  " + pid, 60s, /*in_stdout=*/true))
      << tracer.out() << tracer.err();
  EXPECT_TRUE(still_running(tracer.pid()));
  Finished work = workload.finish(120s);
  EXPECT_EQ(work.exit_code, 0) << work.err;
  Finished traced = tracer.stop();
  ASSERT_EQ(traced.exit_code, 0) << traced.err;

  auto output = lines(traced.out);
  ASSERT_GE(output.size(), 2u);
  EXPECT_EQ(output[0], "COMM             PID      LAT(ms)  PAGES KIND   MEMCG");
  // reclaim_pagecac  12345      0.07    256 memcg  /memscope-drsnoop-text-…
  std::istringstream first(output[1]);
  std::string comm, record_pid, latency, pages, kind, memcg;
  first >> comm >> record_pid >> latency >> pages >> kind >> memcg;
  EXPECT_EQ(comm, "reclaim_pagecac");
  EXPECT_EQ(record_pid, pid);
  EXPECT_NE(latency.find('.'), std::string::npos) << output[1];
  EXPECT_EQ(kind, "memcg") << output[1];
  EXPECT_EQ(memcg, cgroup.relative_path()) << output[1];
}

}  // namespace
}  // namespace memscope::test
