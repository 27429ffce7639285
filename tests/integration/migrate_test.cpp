// migrate sees the pages that compaction moves: writing /proc/sys/vm/compact_memory compacts every
// zone in the writer's context, whose migrations carry reason "compaction" (the only migration this
// single-node machine can be made to do: move_pages and mbind need a second node).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "harness.hpp"
#include "unified_cgroup.hpp"

namespace memscope::test {
namespace {

TEST(Migrate, CountsCompactionMigrationsOfTheCompactingProcess) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  if (access("/proc/sys/vm/compact_memory", W_OK) != 0)
    GTEST_SKIP() << "skipped: no /proc/sys/vm/compact_memory";
  Tracer tracer("migrate", {"--json"});
  uint64_t migrated_before = vmstat("pgmigrate_success");
  Child compactor({"/bin/sh", "-c", "echo 1 > /proc/sys/vm/compact_memory"});
  pid_t compactor_pid = compactor.pid();
  Finished compacted = compactor.finish(std::chrono::seconds(60));
  ASSERT_EQ(compacted.exit_code, 0) << compacted.err;
  uint64_t migrated = vmstat("pgmigrate_success") - migrated_before;
  Finished traced = tracer.stop();
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  if (migrated == 0)
    GTEST_SKIP() << "skipped: compaction migrated no page on this kernel (pgmigrate_success unchanged)";

  uint64_t pages = 0, calls = 0;
  bool reason_total_seen = false;
  for (const auto& row : json_lines(traced.out)) {
    if (row["event"] == "migrate" && row["pid"] == compactor_pid) {
      EXPECT_EQ(row["comm"], "sh");
      EXPECT_EQ(row["reason"], "compaction");
      EXPECT_TRUE(row["mode"] == "sync" || row["mode"] == "sync_light" || row["mode"] == "async")
          << row.dump();
      EXPECT_LE(row["thp_succeeded"].get<uint64_t>(), row["succeeded"].get<uint64_t>());
      pages += row["succeeded"].get<uint64_t>();
      calls += row["calls"].get<uint64_t>();
    }
    if (row["event"] == "migrate_reason" && row["reason"] == "compaction") {
      reason_total_seen = true;
      EXPECT_GE(row["processes"].get<uint64_t>(), 1u);
    }
  }
  EXPECT_GT(calls, 0u) << traced.out;
  EXPECT_GT(pages, 0u) << traced.out;
  // kcompactd may migrate at the same time; the writer's own pages can't exceed the system's count.
  EXPECT_LE(pages, migrated) << traced.out;
  EXPECT_TRUE(reason_total_seen) << traced.out;
}

TEST(Migrate, ReportsPerIntervalInText) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  if (access("/proc/sys/vm/compact_memory", W_OK) != 0)
    GTEST_SKIP() << "skipped: no /proc/sys/vm/compact_memory";
  Tracer tracer("migrate", {"1", "3"});
  Child compactor({"/bin/sh", "-c", "echo 1 > /proc/sys/vm/compact_memory"});
  std::string pid = std::to_string(compactor.pid());
  compactor.finish(std::chrono::seconds(60));
  Finished traced = tracer.finish(std::chrono::seconds(10));
  EXPECT_EQ(traced.exit_code, 0) << traced.err;
  auto output = lines(traced.out);
  int headers = 0;
  bool row_seen = false;
  for (const auto& line : output) {
    if (line.find("REASON") != std::string::npos && line.find("PAGES") != std::string::npos &&
        line.find("COMM") != std::string::npos)
      headers++;
    if (line.find(" " + pid + " ") != std::string::npos && line.find("compaction") != std::string::npos)
      row_seen = true;
  }
  EXPECT_EQ(headers, 3) << "one table per interval, 3 intervals:\n" << traced.out;
  EXPECT_TRUE(row_seen) << traced.out;
}

// Allocating a 1 GiB huge page takes a contiguous range with alloc_contig_range(), which migrates
// what is in the way with reason contig_range.
TEST(Migrate, AttributesContiguousRangeAllocationsToTheirReason) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  const std::string pool = "/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages";
  long original = -1;
  std::ifstream(pool) >> original;
  if (original < 0 || access(pool.c_str(), W_OK) != 0) GTEST_SKIP() << "skipped: no 1 GiB huge page pool";
  Tracer tracer("migrate", {"--json"});
  Child allocator({"/bin/sh", "-c", "echo " + std::to_string(original + 1) + " > " + pool});
  pid_t allocator_pid = allocator.pid();
  allocator.finish(std::chrono::seconds(60));
  long allocated = -1;
  std::ifstream(pool) >> allocated;
  std::ofstream(pool) << original << "\n";
  Finished traced = tracer.stop();
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  if (allocated <= original) GTEST_SKIP() << "skipped: the kernel could not allocate a 1 GiB page";
  bool seen = false;
  for (const auto& row : json_lines(traced.out)) {
    if (row["event"] != "migrate" || row["pid"] != allocator_pid) continue;
    EXPECT_EQ(row["reason"], "contig_range") << row.dump();
    EXPECT_GE(row["calls"].get<uint64_t>(), 1u);
    seen = true;
  }
  if (!seen)
    GTEST_SKIP() << "skipped: the 1 GiB page was allocated from a free range, with nothing to migrate";
}

// Per interval in JSON: one report per interval, each covering that interval only; --comm and
// --cgroup keep only the compacting shell (run under another name, "compactor", in a cgroup).
TEST(Migrate, FiltersByCommAndCgroupPerIntervalInJson) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  if (access("/proc/sys/vm/compact_memory", W_OK) != 0)
    GTEST_SKIP() << "skipped: no /proc/sys/vm/compact_memory";
  UnifiedCgroup cgroup("memscope-migrate");
  if (!cgroup.ok()) GTEST_SKIP() << "skipped: " << cgroup.error();
  std::string alias_dir = ::testing::TempDir() + "memscope-migrate-" + std::to_string(getpid());
  std::filesystem::create_directories(alias_dir);
  std::string compactor = alias_dir + "/compactor";
  std::filesystem::remove(compactor);
  std::filesystem::create_symlink("/bin/sh", compactor);

  Tracer by_comm("migrate", {"--json", "--comm", "compactor", "1"});
  Tracer in_cgroup("migrate", {"--json", "--cgroup", cgroup.directory(), "1"});
  uint64_t migrated_before = vmstat("pgmigrate_success");
  Child compacting({"/bin/sh", "-c",
                    "echo $$ > " + cgroup.procs_file() + " && exec " + compactor +
                        " -c 'echo 1 > /proc/sys/vm/compact_memory'"});
  pid_t pid = compacting.pid();
  ASSERT_EQ(compacting.finish(std::chrono::seconds(60)).exit_code, 0);
  uint64_t migrated = vmstat("pgmigrate_success") - migrated_before;
  usleep(2200000);  // at least one interval ends after the compaction
  Finished comm_rows = by_comm.stop();
  Finished cgroup_rows = in_cgroup.stop();
  std::filesystem::remove_all(alias_dir);
  if (migrated == 0) GTEST_SKIP() << "skipped: compaction migrated no page (pgmigrate_success unchanged)";

  for (const Finished* traced : {&comm_rows, &cgroup_rows}) {
    uint64_t pages = 0;
    std::set<std::string> report_times;
    for (const auto& row : json_lines(traced->out)) {
      if (row["event"] == "migrate") {
        EXPECT_EQ(row["pid"], pid) << "filtered out: " << row.dump();
        EXPECT_EQ(row["comm"], "compactor");
        EXPECT_EQ(row["reason"], "compaction");
        pages += row["succeeded"].get<uint64_t>();
        report_times.insert(row["time"].get<std::string>());
      }
      if (row["event"] == "migrate_reason") {
        EXPECT_EQ(row["processes"], 1) << row.dump();
      }
    }
    EXPECT_GT(pages, 0u) << traced->out;
    EXPECT_LE(pages, migrated) << "intervals are disjoint: no page counted twice\n" << traced->out;
    EXPECT_GE(report_times.size(), 1u);
  }
}

}  // namespace
}  // namespace memscope::test
