// compact sees the compactions that writing /proc/sys/vm/compact_memory runs in the writer's
// context (every zone, order -1), and the direct compactions of a huge page allocation
// (/proc/sys/vm/nr_hugepages, raised after fragmenting memory and restored afterwards).
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "harness.hpp"
#include "unified_cgroup.hpp"

namespace memscope::test {
namespace {

const std::set<std::string> kResults = {"not_suitable_zone", "skipped",   "deferred",
                                        "no_suitable_page",  "continue",  "complete",
                                        "partial_skipped",   "contended", "success"};

TEST(Compact, SeesEveryZoneCompactedByCompactMemory) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  if (access("/proc/sys/vm/compact_memory", W_OK) != 0)
    GTEST_SKIP() << "skipped: no /proc/sys/vm/compact_memory";
  Tracer tracer("compact", {"--json"});
  Child compactor({"/bin/sh", "-c", "echo 1 > /proc/sys/vm/compact_memory"});
  pid_t compactor_pid = compactor.pid();
  ASSERT_EQ(compactor.finish(std::chrono::seconds(60)).exit_code, 0);
  Finished traced = tracer.stop();
  ASSERT_EQ(traced.exit_code, 0) << traced.err;

  std::set<std::string> zones;
  uint64_t compactions = 0, histogram_count = 0;
  for (const auto& event : json_lines(traced.out)) {
    if (event["event"] == "compaction" && event["pid"] == compactor_pid) {
      compactions++;
      zones.insert(event["zone"].get<std::string>());
      EXPECT_EQ(event["comm"], "sh");
      EXPECT_EQ(event["node"], 0);
      EXPECT_EQ(event["order"], -1) << "compact_memory compacts whole zones";
      EXPECT_EQ(event["type"], "manual");
      EXPECT_EQ(event["mode"], "sync");
      EXPECT_GT(event["latency_ns"].get<uint64_t>(), 0u);
      EXPECT_TRUE(kResults.count(event["status"].get<std::string>())) << event.dump();
    }
    if (event["event"] == "histogram" && event["name"] == "compaction_latency")
      for (const auto& bucket : event["buckets"]) histogram_count += bucket["count"].get<uint64_t>();
  }
  EXPECT_GE(compactions, 1u) << traced.out;
  EXPECT_TRUE(zones.count("Normal") || zones.count("DMA32")) << traced.out;
  EXPECT_GE(histogram_count, compactions) << "the exit histogram counts every zone compaction";
}

TEST(Compact, TextColumnsAndHistogramLikeCompactsnoop) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  if (access("/proc/sys/vm/compact_memory", W_OK) != 0)
    GTEST_SKIP() << "skipped: no /proc/sys/vm/compact_memory";
  Tracer tracer("compact", {});
  Child compactor({"/bin/sh", "-c", "echo 1 > /proc/sys/vm/compact_memory"});
  std::string pid = std::to_string(compactor.pid());
  compactor.finish(std::chrono::seconds(60));
  Finished traced = tracer.stop();
  auto output = lines(traced.out);
  ASSERT_FALSE(output.empty());
  for (const char* column : {"COMM", "PID", "NODE", "ZONE", "ORDER", "TYPE", "MODE", "LAT(ms)", "STATUS"})
    EXPECT_NE(output[0].find(column), std::string::npos) << output[0];
  bool row = false;
  for (const auto& line : output)
    if (line.rfind("sh ", 0) == 0 && line.find(" " + pid + " ") != std::string::npos &&
        line.find(" manual ") != std::string::npos)
      row = true;
  EXPECT_TRUE(row) << traced.out;
  EXPECT_NE(traced.out.find("Zone compaction latency:"), std::string::npos) << traced.out;
  EXPECT_NE(traced.out.find("usecs : count"), std::string::npos) << traced.out;
}

// Keeps /proc/sys/vm/nr_hugepages as it was, whatever the test does.
class HugePagesRestorer {
 public:
  HugePagesRestorer() { std::ifstream("/proc/sys/vm/nr_hugepages") >> original_; }
  ~HugePagesRestorer() { std::ofstream("/proc/sys/vm/nr_hugepages") << original_ << "\n"; }
  long original() const { return original_; }

 private:
  long original_ = 0;
};

// 256 MiB of base pages of which every other one is freed again: free memory in 4 KiB holes.
class FragmentedMemory {
 public:
  FragmentedMemory() {
    size_ = 256ul << 20;
    void* area = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED) return;
    area_ = static_cast<char*>(area);
    madvise(area_, size_, MADV_NOHUGEPAGE);
    long page = sysconf(_SC_PAGESIZE);
    for (size_t offset = 0; offset < size_; offset += page) area_[offset] = 1;
    for (size_t offset = page; offset < size_; offset += 2 * page)
      madvise(area_ + offset, page, MADV_DONTNEED);
  }
  ~FragmentedMemory() {
    if (area_) munmap(area_, size_);
  }

 private:
  char* area_ = nullptr;
  size_t size_ = 0;
};

TEST(Compact, SeesDirectCompactionStallsOfAHugePageAllocation) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  if (access("/proc/sys/vm/nr_hugepages", W_OK) != 0) GTEST_SKIP() << "skipped: no /proc/sys/vm/nr_hugepages";
  FragmentedMemory fragmented;
  HugePagesRestorer restorer;
  const long added = 256;  // 512 MiB of 2 MiB pages
  Tracer tracer("compact", {"--json", "-p", std::to_string(getpid())});
  uint64_t stalls_before = vmstat("compact_stall");
  std::ofstream("/proc/sys/vm/nr_hugepages") << restorer.original() + added << "\n";
  uint64_t stalls = vmstat("compact_stall") - stalls_before;
  std::ofstream("/proc/sys/vm/nr_hugepages") << restorer.original() << "\n";
  Finished traced = tracer.stop();
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  if (stalls == 0)
    GTEST_SKIP()
        << "skipped: the kernel allocated " << added
        << " huge pages without direct compaction (compact_stall unchanged: free 2 MiB blocks were left; "
           "this kernel also initialises struct pages on demand, growing zones instead)";

  uint64_t seen = 0;
  bool per_process = false, histogram = false;
  for (const auto& event : json_lines(traced.out)) {
    if (event["event"] == "compaction_stall") {
      seen++;
      EXPECT_EQ(event["pid"], getpid());
      EXPECT_EQ(event["order"], 9);
      EXPECT_TRUE(kResults.count(event["result"].get<std::string>())) << event.dump();
      EXPECT_FALSE(event["priority"].get<std::string>().empty());
    }
    if (event["event"] == "compaction_stall_process" && event["pid"] == getpid()) {
      per_process = true;
      EXPECT_GE(event["stalls"].get<uint64_t>(), 1u);
    }
    if (event["event"] == "histogram" && event["name"] == "direct_compaction_stall") histogram = true;
  }
  EXPECT_GE(seen, 1u) << "/proc/vmstat counted " << stalls << " direct compaction stalls:\n" << traced.out;
  EXPECT_TRUE(per_process) << traced.out;
  EXPECT_TRUE(histogram) << traced.out;
}

// --comm and --cgroup keep only the compactions of the shell that writes compact_memory (run as
// "compactor" inside a cgroup); a tracer filtering on another cgroup sees none of them.
TEST(Compact, FiltersByCommAndCgroup) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  if (access("/proc/sys/vm/compact_memory", W_OK) != 0)
    GTEST_SKIP() << "skipped: no /proc/sys/vm/compact_memory";
  UnifiedCgroup cgroup("memscope-compact");
  UnifiedCgroup empty("memscope-compact-empty");
  if (!cgroup.ok() || !empty.ok()) GTEST_SKIP() << "skipped: " << cgroup.error() << empty.error();
  std::string alias_dir = ::testing::TempDir() + "memscope-compact-" + std::to_string(getpid());
  std::filesystem::create_directories(alias_dir);
  std::string compactor = alias_dir + "/compactor";
  std::filesystem::remove(compactor);
  std::filesystem::create_symlink("/bin/sh", compactor);

  Tracer by_comm("compact", {"--json", "--comm", "compactor"});
  Tracer in_cgroup("compact", {"--json", "--cgroup", cgroup.directory()});
  Tracer elsewhere("compact", {"--json", "--cgroup", empty.directory()});
  Child compacting(cgroup.shell_inside(compactor + " -c 'echo 1 > /proc/sys/vm/compact_memory'"));
  pid_t pid = compacting.pid();
  ASSERT_EQ(compacting.finish(std::chrono::seconds(60)).exit_code, 0);
  Finished comm_events = by_comm.stop();
  Finished cgroup_events = in_cgroup.stop();
  Finished other_events = elsewhere.stop();
  std::filesystem::remove_all(alias_dir);

  for (const Finished* traced : {&comm_events, &cgroup_events}) {
    uint64_t compactions = 0;
    for (const auto& event : json_lines(traced->out)) {
      if (event["event"] != "compaction") continue;
      compactions++;
      EXPECT_EQ(event["pid"], pid) << "filtered out: " << event.dump();
      EXPECT_EQ(event["comm"], "compactor");
      EXPECT_EQ(event["type"], "manual");
    }
    EXPECT_GE(compactions, 1u) << traced->out;
  }
  for (const auto& event : json_lines(other_events.out))
    EXPECT_NE(event["pid"], pid) << "the compactor is not in " << empty.directory() << ": " << event.dump();
}

}  // namespace
}  // namespace memscope::test
