// Per-interval reports add up to every event: tools that read their counts out of a BPF map each
// interval must not lose what events add while a report is read, symbolized and printed. The test
// program takes 20,000 page faults spread over 3 s; with a report every 50 ms, the reports of the
// program's pid (the intervals plus the final one) must sum to those 20,000 faults.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <linux/types.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "fault_touch.hpp"
#include "harness.hpp"
#include "runtime/map_reading.hpp"

namespace memscope::test {
namespace {

constexpr uint64_t kPages = 20000;
// Faults besides the touches while traced (code run for the first time, the pauses' nanosleep).
constexpr uint64_t kTolerance = 64;

Finished spread_touches_traced_by(const std::string& tool, std::vector<std::string> args, pid_t& pid) {
  setenv("FAULT_TOUCH_SPREAD_MS", "3000", 1);
  FaultTouch program({"anon", std::to_string(kPages)});
  unsetenv("FAULT_TOUCH_SPREAD_MS");
  pid = program.pid();
  return program.traced_by(tool, std::move(args));
}

TEST(IntervalCounts, FaultsReportsAddUpToEveryFault) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  pid_t pid = 0;
  Finished traced = spread_touches_traced_by("faults", {"--json", "0.05"}, pid);
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  uint64_t user = 0, reports = 0, stack_faults = 0;
  for (const auto& event : json_lines(traced.out)) {
    if (event["event"] == "page_faults" && event["pid"] == pid) {
      user += event["user"].get<uint64_t>();
      reports++;
    }
    if (event["event"] == "fault_stacks")
      for (const auto& entry : event["stacks"])
        if (entry["pid"] == pid && entry["mode"] == "user") stack_faults += entry["faults"].get<uint64_t>();
  }
  EXPECT_GT(reports, 10u) << "the touches should span many intervals";
  EXPECT_GE(user, kPages) << reports << " reports";
  EXPECT_LE(user, kPages + kTolerance);
  EXPECT_GE(stack_faults, kPages) << reports << " reports";
  EXPECT_LE(stack_faults, kPages + kTolerance);
}

TEST(IntervalCounts, FfaultsReportsAddUpToEveryFault) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  pid_t pid = 0;
  Finished traced = spread_touches_traced_by("ffaults", {"--json", "0.05"}, pid);
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  uint64_t anon = 0;
  for (const auto& event : json_lines(traced.out))
    if (event["event"] == "file_faults" && event["file"] == "[anon]") anon += event["faults"].get<uint64_t>();
  EXPECT_GE(anon, kPages);
  EXPECT_LE(anon, kPages + kTolerance);
}

// ffaults names files by identity (device, inode, generation), not by the struct inode address a
// later file can get again: fault_files faults 1, 2, … 30 pages on 30 files, each unlinked before
// the next is created. Each file shows once, with exactly its own faults.
TEST(IntervalCounts, FfaultsKeepsFilesThatComeAndGoApart) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  char pattern[] = "/tmp/memscope-files-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  std::string dir = pattern;
  Child program({testprog("fault_files"), dir, "30"}, true);
  ASSERT_TRUE(program.wait_for("ready", std::chrono::seconds(10), true));
  Tracer tracer("ffaults", {"--json", "-p", std::to_string(program.pid())});
  program.write_stdin("go\n");
  ASSERT_TRUE(program.wait_for("done", std::chrono::seconds(30), true)) << program.err();
  Finished traced = tracer.stop();
  program.write_stdin("done\n");
  program.finish();
  rmdir(dir.c_str());
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  std::map<std::string, uint64_t> by_file;
  for (const auto& event : json_lines(traced.out))
    if (event["event"] == "file_faults" && event["file"].get<std::string>().starts_with(dir + "/"))
      by_file[event["file"].get<std::string>()] += event["faults"].get<uint64_t>();
  for (int i = 1; i <= 30; i++) {
    std::string file = dir + "/file_" + std::to_string(i);
    EXPECT_EQ(by_file[file], static_cast<uint64_t>(i)) << file << "\n" << traced.out;
  }
}

// mmap_burst maps a file 5000 times as fast as it can: about 0.8 MiB of events (each carries its
// path) arrive faster than they are printed. Every one must be printed, one line each; anything
// the buffer cannot hold must be counted and said.
TEST(IntervalCounts, MmapsnoopPrintsEveryMmapOfABurst) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Child program({testprog("mmap_burst"), "5000"}, true);
  ASSERT_TRUE(program.wait_for("ready", std::chrono::seconds(10), true)) << program.err();
  Tracer tracer("mmapsnoop", {"--json", "-p", std::to_string(program.pid())});
  program.write_stdin("go\n");
  ASSERT_TRUE(program.wait_for("mapped 5000", std::chrono::seconds(30), true)) << program.out();
  usleep(500000);
  Finished traced = tracer.stop();
  program.write_stdin("done\n");
  program.finish();
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  uint64_t seen = 0;
  for (const auto& event : json_lines(traced.out))
    if (event["event"] == "mmap" && event["pid"] == program.pid() && event["len"] == 4096 &&
        event["file"].get<std::string>().ends_with("/mmap_burst"))
      seen++;
  EXPECT_EQ(seen, 5000u) << traced.err;
  EXPECT_EQ(traced.err.find("Lost"), std::string::npos) << traced.err;
  EXPECT_EQ(traced.out.find("Lost"), std::string::npos);
}

// With a buffer too small for a burst, what does not fit is counted: the mmaps printed plus the
// events reported lost are exactly the 20,000 mmaps mmap_burst made.
TEST(IntervalCounts, MmapsnoopCountsWhatASmallBufferDrops) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  Child program({testprog("mmap_burst"), "20000"}, true);
  ASSERT_TRUE(program.wait_for("ready", std::chrono::seconds(10), true)) << program.err();
  Tracer tracer("mmapsnoop", {"--json", "--buffer-mib", "1", "-p", std::to_string(program.pid())});
  program.write_stdin("go\n");
  ASSERT_TRUE(program.wait_for("mapped 20000", std::chrono::seconds(60), true)) << program.out();
  usleep(500000);
  Finished traced = tracer.stop();
  program.write_stdin("done\n");
  program.finish();
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  uint64_t printed = 0, lost = 0;
  for (const auto& event : json_lines(traced.out)) {
    if (event["event"] == "mmap" && event["pid"] == program.pid() && event["len"] == 4096 &&
        event["file"].get<std::string>().ends_with("/mmap_burst"))
      printed++;
    if (event["event"] == "message") {
      std::string text = event["text"].get<std::string>();
      size_t at = text.find("Lost: ");
      if (at != std::string::npos) lost = std::stoull(text.substr(at + 6));
    }
  }
  EXPECT_GT(lost, 0u) << "a 1 MiB buffer should not hold the burst";
  EXPECT_EQ(printed + lost, 20000u) << printed << " printed, " << lost << " lost";
}


// The mechanism those tools share, on a hash map user space writes as a BPF program would add to
// it: each take reports what each counter added since the previous take (a struct's other members
// as they are now), deletes only entries that were seen before and did not move, lists those, and
// keeps an entry seen for the first time with nothing counted yet.
struct TwoCounters {
  __u64 calls;
  char name[8];
  __u64 bytes;
};

TEST(IntervalCounts, CounterDeltasReportIncreasesAndDeleteOnlyIdleEntries) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "deltas_test", sizeof(uint32_t), sizeof(TwoCounters), 16, nullptr);
  ASSERT_GE(fd, 0) << strerror(errno);
  auto put = [&](uint32_t key, uint64_t calls, uint64_t bytes, const char* name) {
    TwoCounters value{calls, {}, bytes};
    strncpy(value.name, name, sizeof(value.name) - 1);
    ASSERT_EQ(bpf_map_update_elem(fd, &key, &value, BPF_ANY), 0);
  };
  auto present = [&](uint32_t key) {
    TwoCounters value{};
    return bpf_map_lookup_elem(fd, &key, &value) == 0;
  };
  auto by_key = [](const std::vector<std::pair<uint32_t, TwoCounters>>& moved) {
    std::map<uint32_t, TwoCounters> result;
    for (const auto& [key, value] : moved) result[key] = value;
    return result;
  };
  CounterDeltas<uint32_t, TwoCounters> deltas{{&TwoCounters::calls, &TwoCounters::bytes}};

  put(1, 3, 300, "one");
  put(2, 0, 0, "fresh");  // created, not added to yet
  auto first = by_key(deltas.take(fd));
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[1].calls, 3u);
  EXPECT_EQ(first[1].bytes, 300u);
  EXPECT_STREQ(first[1].name, "one");
  EXPECT_TRUE(present(1));
  EXPECT_TRUE(present(2)) << "an entry seen for the first time with nothing counted must wait a take";
  EXPECT_TRUE(deltas.removed().empty());

  put(1, 5, 300, "renamed");  // two more calls, no more bytes
  put(2, 4, 40, "fresh");
  auto second = by_key(deltas.take(fd));
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(second[1].calls, 2u);
  EXPECT_EQ(second[1].bytes, 0u);
  EXPECT_STREQ(second[1].name, "renamed");
  EXPECT_EQ(second[2].calls, 4u);
  EXPECT_EQ(second[2].bytes, 40u);

  put(2, 5, 40, "fresh");  // 1 idle since the previous take, 2 moved
  auto third = by_key(deltas.take(fd));
  ASSERT_EQ(third.size(), 1u);
  EXPECT_EQ(third[2].calls, 1u);
  EXPECT_FALSE(present(1)) << "an idle entry is deleted";
  EXPECT_TRUE(present(2));
  ASSERT_EQ(deltas.removed().size(), 1u);
  EXPECT_EQ(deltas.removed()[0], 1u);

  put(1, 7, 70, "back");  // a deleted entry the program creates again counts from zero
  auto fourth = by_key(deltas.take(fd));
  EXPECT_EQ(fourth[1].calls, 7u);
  EXPECT_EQ(fourth[1].bytes, 70u);
  close(fd);
}

}  // namespace
}  // namespace memscope::test
