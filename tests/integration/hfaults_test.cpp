// hfaults sees the hugetlb faults a test program takes on purpose: N huge pages of a MAP_HUGETLB
// mapping written once each are N hugetlb faults; ordinary pages are none.
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <regex>
#include <sstream>

#include "fault_touch.hpp"
#include "harness.hpp"

namespace memscope::test {
namespace {

constexpr uint64_t kHugePages = 4;

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
    std::vector<std::string> args = {"--json"};
    if (!kind.empty()) args.insert(args.end(), {"--probe", kind});
    Finished traced = program.traced_by("hfaults", args);
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
  HugePageReservation reservation(kHugePages);
  if (!reservation.ok()) GTEST_SKIP() << "skipped: " << reservation.error();
  // Both kinds in one trace: the hugetlb program proves the tool counts, the other must add nothing.
  FaultTouch huge({"hugetlb", std::to_string(kHugePages)});
  FaultTouch ordinary({"anon", "1000"});
  Tracer tracer("hfaults", {"--json", "--comm", "fault_touch"});
  huge.touch();
  ordinary.touch();
  Finished traced = tracer.stop();
  huge.release();
  ordinary.release();
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  auto events = json_lines(traced.out);
  const nlohmann::json* huge_record = record_of(events, huge.pid());
  ASSERT_NE(huge_record, nullptr) << traced.out << traced.err;
  EXPECT_EQ((*huge_record)["faults"].get<uint64_t>(), kHugePages);
  EXPECT_EQ(record_of(events, ordinary.pid()), nullptr) << traced.out;
}

TEST(HugetlbFaults, TextTable) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  HugePageReservation reservation(kHugePages);
  if (!reservation.ok()) GTEST_SKIP() << "skipped: " << reservation.error();
  FaultTouch program({"hugetlb", std::to_string(kHugePages)});
  Finished traced = program.traced_by("hfaults", {});
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

// "VMA lookups: 2 answered from the cache, 1 by bpf_find_vma, 1 by a lockless walk while
// bpf_find_vma was busy, 0 unresolved" (-v): {cache, find_vma, walk, unresolved}.
std::vector<uint64_t> vma_lookups(const std::string& err) {
  std::smatch match;
  static const std::regex pattern(
      R"(VMA lookups: (\d+) answered from the cache, (\d+) by bpf_find_vma, (\d+) by a lockless walk while )"
      R"(bpf_find_vma was busy, (\d+) unresolved)");
  if (!std::regex_search(err, match, pattern)) return {};
  return {std::stoull(match[1]), std::stoull(match[2]), std::stoull(match[3]), std::stoull(match[4])};
}

// ffaults and hfaults at once, on the exception tracepoints: in each fault both look the address's
// mapping up, and the second bpf_find_vma() of the fault always finds the first one's deferred
// mmap unlock pending (-EBUSY). The second tool then walks the mapping tree itself; in either
// attach order, both see every hugetlb fault and neither loses one.
TEST(HugetlbFaults, SeesEveryFaultBesideFfaults) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  HugePageReservation reservation(kHugePages);
  if (!reservation.ok()) GTEST_SKIP() << "skipped: " << reservation.error();
  for (bool hfaults_first : {false, true}) {
    SCOPED_TRACE(hfaults_first ? "hfaults attached first" : "ffaults attached first");
    FaultTouch program({"hugetlb", std::to_string(kHugePages)});
    std::vector<std::string> args = {"--json", "-v", "--probe",
                                     "tp_btf", "-p", std::to_string(program.pid())};
    auto first = std::make_unique<Tracer>(hfaults_first ? "hfaults" : "ffaults", args);
    auto second = std::make_unique<Tracer>(hfaults_first ? "ffaults" : "hfaults", args);
    program.touch();
    Finished first_traced = first->stop();
    Finished second_traced = second->stop();
    program.release();
    ASSERT_EQ(first_traced.exit_code, 0) << first_traced.err;
    ASSERT_EQ(second_traced.exit_code, 0) << second_traced.err;
    const Finished& hfaults = hfaults_first ? first_traced : second_traced;
    const Finished& ffaults = hfaults_first ? second_traced : first_traced;

    auto hugetlb_events = json_lines(hfaults.out);
    const nlohmann::json* record = record_of(hugetlb_events, program.pid());
    ASSERT_NE(record, nullptr) << hfaults.out << hfaults.err;
    EXPECT_EQ((*record)["faults"].get<uint64_t>(), kHugePages) << hfaults.out << hfaults.err;
    // A MAP_HUGETLB|MAP_ANONYMOUS mapping is a file of the kernel's internal hugetlbfs mount.
    uint64_t file_faults = 0;
    for (const auto& event : json_lines(ffaults.out))
      if (event["event"] == "file_faults" && event["file"] == "/anon_hugepage")
        file_faults += event["faults"].get<uint64_t>();
    EXPECT_EQ(file_faults, kHugePages) << ffaults.out << ffaults.err;
    for (const Finished* traced : {&hfaults, &ffaults})
      EXPECT_EQ(traced->out.find("Lost:"), std::string::npos) << traced->out;

    // The collision happened (the second tool's lookup was answered by the walk) and nothing was
    // left unresolved.
    std::vector<uint64_t> second_lookups = vma_lookups(second_traced.err);
    ASSERT_EQ(second_lookups.size(), 4u) << second_traced.err;
    EXPECT_GE(second_lookups[2], 1u) << second_traced.err;
    EXPECT_EQ(second_lookups[3], 0u) << second_traced.err;
    std::vector<uint64_t> first_lookups = vma_lookups(first_traced.err);
    ASSERT_EQ(first_lookups.size(), 4u) << first_traced.err;
    EXPECT_EQ(first_lookups[3], 0u) << first_traced.err;
  }
}

TEST(HugetlbFaults, ForcedKprobeWithoutKprobesFailsWithOneLine) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  expect_forced_kprobe_fails_with_one_line("hfaults", "hugetlb page fault");
}

}  // namespace
}  // namespace memscope::test
