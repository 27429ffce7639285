// hfaults sees the hugetlb faults a test program takes on purpose: N huge pages of a MAP_HUGETLB
// mapping written once each are N hugetlb faults; ordinary pages are none.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "harness.hpp"

namespace memscope::test {
namespace {

constexpr uint64_t kHugePages = 4;

// tests/testprogs/fault_touch.c: prints its pid, touches on "go", waits again before exiting.
class FaultTouch {
 public:
  explicit FaultTouch(std::vector<std::string> args) : child_(argv(std::move(args)), true) {
    if (!child_.wait_for("pid ", std::chrono::seconds(10), true) ||
        !child_.wait_for("\n", std::chrono::seconds(5), true))
      throw std::runtime_error("fault_touch did not start: " + child_.out() + child_.err());
  }
  pid_t pid() const { return child_.pid(); }
  void touch() {
    child_.write_stdin("go\n");
    if (!child_.wait_for("touched", std::chrono::seconds(30), true))
      throw std::runtime_error("fault_touch did not finish touching: " + child_.out() + child_.err());
  }
  Finished release() {
    child_.write_stdin("done\n");
    return child_.finish();
  }

 private:
  static std::vector<std::string> argv(std::vector<std::string> args) {
    args.insert(args.begin(), testprog("fault_touch"));
    return args;
  }
  Child child_;
};

uint64_t meminfo_value(const std::string& key) {
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  while (std::getline(meminfo, line)) {
    if (line.rfind(key + ":", 0) != 0) continue;
    std::istringstream fields(line.substr(key.size() + 1));
    uint64_t value = 0;
    fields >> value;
    return value;
  }
  return 0;
}

// Adds `pages` 2 MiB huge pages to the pool (vm.nr_hugepages) and gives them back afterwards.
class HugePageReservation {
 public:
  explicit HugePageReservation(uint64_t pages) {
    if (meminfo_value("Hugepagesize") != 2048) {
      error_ = "the default huge page size is not 2 MiB";
      return;
    }
    std::ifstream current(kPath);
    if (!(current >> original_)) {
      error_ = "no hugetlb support (cannot read /proc/sys/vm/nr_hugepages)";
      return;
    }
    changed_ = true;
    if (!write(original_ + pages)) {
      error_ = "cannot write /proc/sys/vm/nr_hugepages";
      return;
    }
    uint64_t free_pages = meminfo_value("HugePages_Free");
    if (free_pages < pages)
      error_ = "the kernel could reserve only " + std::to_string(free_pages) + " of " +
               std::to_string(pages) + " huge pages (memory too fragmented)";
  }
  ~HugePageReservation() {
    if (changed_) write(original_);
  }
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  static constexpr const char* kPath = "/proc/sys/vm/nr_hugepages";
  static bool write(uint64_t pages) {
    std::ofstream out(kPath);
    out << pages << "\n";
    out.flush();
    return static_cast<bool>(out);
  }
  uint64_t original_ = 0;
  bool changed_ = false;
  std::string error_;
};

const nlohmann::json* record_of(const std::vector<nlohmann::json>& events, pid_t pid) {
  for (const auto& event : events)
    if (event["event"] == "hugetlb_faults" && event["pid"] == pid) return &event;
  return nullptr;
}

TEST(HugetlbFaults, CountsOneFaultPerTouchedHugePage) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  HugePageReservation reservation(kHugePages);
  if (!reservation.ok()) GTEST_SKIP() << "skipped: " << reservation.error();
  for (std::string kind : {"", "tp_btf", "raw_tp", "tracepoint"}) {
    SCOPED_TRACE(kind.empty() ? "default hook" : kind);
    FaultTouch program({"hugetlb", std::to_string(kHugePages)});
    std::vector<std::string> args = {"--json", "-p", std::to_string(program.pid())};
    if (!kind.empty()) args.insert(args.end(), {"--probe", kind});
    Tracer tracer("hfaults", args);
    program.touch();
    Finished traced = tracer.stop();
    program.release();
    ASSERT_EQ(traced.exit_code, 0) << traced.err;
    auto events = json_lines(traced.out);
    const nlohmann::json* record = record_of(events, program.pid());
    ASSERT_NE(record, nullptr) << traced.out << traced.err;
    EXPECT_EQ((*record)["comm"], "fault_touch");
    // Each huge page is mapped by its first write; nothing else of the process is hugetlb memory.
    EXPECT_EQ((*record)["faults"].get<uint64_t>(), kHugePages);
  }
}

TEST(HugetlbFaults, OrdinaryPagesAreNotHugetlbFaults) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  FaultTouch program({"anon", "1000"});
  Tracer tracer("hfaults", {"--json", "-p", std::to_string(program.pid())});
  program.touch();
  Finished traced = tracer.stop();
  program.release();
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  auto events = json_lines(traced.out);
  EXPECT_EQ(record_of(events, program.pid()), nullptr) << traced.out;
}

TEST(HugetlbFaults, TextTable) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  HugePageReservation reservation(kHugePages);
  if (!reservation.ok()) GTEST_SKIP() << "skipped: " << reservation.error();
  FaultTouch program({"hugetlb", std::to_string(kHugePages)});
  Tracer tracer("hfaults", {"-p", std::to_string(program.pid())});
  program.touch();
  Finished traced = tracer.stop();
  program.release();
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  auto output = lines(traced.out);
  ASSERT_EQ(output.size(), 2u) << traced.out;
  EXPECT_EQ(output[0], "PID     COMM             HUGETLB_FAULTS");
  std::ostringstream expected;
  expected << program.pid();
  EXPECT_EQ(output[1].rfind(expected.str() + " ", 0), 0u) << traced.out;
  EXPECT_NE(output[1].find("fault_touch"), std::string::npos) << traced.out;
  EXPECT_EQ(output[1].substr(output[1].size() - 2), " " + std::to_string(kHugePages)) << traced.out;
}

TEST(HugetlbFaults, ForcedKprobeWithoutKprobesFailsWithOneLine) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  if (access("/sys/bus/event_source/devices/kprobe/type", F_OK) == 0)
    GTEST_SKIP() << "skipped: this kernel has kprobes (the VM tier tests that path)";
  Finished result = run({memscope_binary(), "hfaults", "--probe", "kprobe", "-d", "1"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(lines(result.err).size(), 1u) << result.err;
  EXPECT_NE(result.err.find("memscope hfaults: no usable hook for hugetlb page fault: kprobe:"),
            std::string::npos)
      << result.err;
}

}  // namespace
}  // namespace memscope::test
