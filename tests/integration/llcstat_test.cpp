// llcstat needs hardware cache counters. Where the machine has no PMU (this one: perf_event_open of
// PERF_TYPE_HARDWARE fails with ENOENT), llcstat and doctor say so in one line; where it has one,
// llcstat counts a process that walks a large array.
#include <gtest/gtest.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "harness.hpp"

namespace memscope::test {
namespace {

// 0 when this machine counts LLC references, else the errno of perf_event_open.
int cache_references_error() {
  perf_event_attr attr{};
  attr.size = sizeof(attr);
  attr.type = PERF_TYPE_HARDWARE;
  attr.config = PERF_COUNT_HW_CACHE_REFERENCES;
  attr.disabled = 1;
  int fd = static_cast<int>(syscall(__NR_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC));
  if (fd < 0) return errno;
  close(fd);
  return 0;
}

TEST(LlcStat, RefusesInOneLineWithoutAHardwarePmu) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  int err = cache_references_error();
  if (err == 0) GTEST_SKIP() << "skipped: this machine has hardware cache counters";
  ASSERT_TRUE(err == ENOENT || err == EOPNOTSUPP || err == ENODEV) << strerror(err);
  int mark = highest_bpf_program_id();
  ASSERT_GE(mark, 0) << "bpftool prog show failed";
  Finished refused = run({memscope_binary(), "llcstat", "-d", "1"});
  EXPECT_EQ(refused.exit_code, 1);
  ASSERT_EQ(lines(refused.err).size(), 1u) << refused.err;
  EXPECT_TRUE(refused.out.empty()) << refused.out;
  EXPECT_NE(refused.err.find("memscope llcstat: this machine exposes no hardware cache counters"),
            std::string::npos)
      << refused.err;
  EXPECT_NE(refused.err.find("PERF_TYPE_HARDWARE"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find(strerrorname_np(err)), std::string::npos) << refused.err;
  EXPECT_EQ(bpf_programs_loaded_after(mark), std::vector<std::string>{}) << "nothing may be left loaded";

  // doctor: one line for llcstat's event, naming the missing hardware event.
  Finished doctor = run({memscope_binary(), "doctor"});
  ASSERT_EQ(doctor.exit_code, 0) << doctor.err;
  int llcstat_lines = 0;
  for (const auto& line : lines(doctor.out)) {
    if (line.rfind("llcstat", 0) != 0) continue;
    llcstat_lines++;
    EXPECT_NE(line.find("unavailable"), std::string::npos) << line;
    EXPECT_NE(line.find("hardware:cache-references"), std::string::npos) << line;
  }
  EXPECT_EQ(llcstat_lines, 1) << doctor.out;
  Finished doctor_json = run({memscope_binary(), "doctor", "--json"});
  bool found = false;
  for (const auto& row : json_lines(doctor_json.out)) {
    if (row["event"] != "tool_probe" || row["tool"] != "llcstat") continue;
    found = true;
    EXPECT_EQ(row["status"], "unavailable");
  }
  EXPECT_TRUE(found) << doctor_json.out;
}

// doctor says, in text and JSON, whether perf events work and whether there is a hardware PMU,
// and --all-modes shows llcstat's only mode (perf_event) with the same verdict.
TEST(LlcStat, DoctorShowsThePerfEventAndPmuLines) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  int err = cache_references_error();
  Finished doctor = run({memscope_binary(), "doctor"});
  ASSERT_EQ(doctor.exit_code, 0) << doctor.err;
  std::string perf_line, pmu_line;
  for (const auto& line : lines(doctor.out)) {
    if (line.rfind("perf_event ", 0) == 0) perf_line = line;
    if (line.rfind("pmu ", 0) == 0) pmu_line = line;
  }
  EXPECT_TRUE(has_word(perf_line, "available")) << doctor.out;
  ASSERT_FALSE(pmu_line.empty()) << doctor.out;
  if (err) {
    EXPECT_TRUE(has_word(pmu_line, "unavailable")) << pmu_line;
    EXPECT_NE(pmu_line.find(strerrorname_np(err)), std::string::npos) << pmu_line;
  } else {
    EXPECT_FALSE(has_word(pmu_line, "unavailable")) << pmu_line;
  }

  Finished json = run({memscope_binary(), "doctor", "--json", "--all-modes"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  bool pmu_seen = false, mode_seen = false;
  for (const auto& row : json_lines(json.out)) {
    if (row["event"] == "kernel_feature" && row["feature"] == "pmu") {
      pmu_seen = true;
      EXPECT_EQ(row["status"], err ? "unavailable" : "available") << row.dump();
    }
    if (row["event"] == "tool_probe_mode" && row["tool"] == "llcstat") {
      mode_seen = true;
      EXPECT_EQ(row["mode"], "perf_event");
      EXPECT_EQ(row["status"], err ? "unavailable" : "works") << row.dump();
      if (err) {
        EXPECT_NE(row["hook"].get<std::string>().find("hardware:cache-references"), std::string::npos);
      }
    }
  }
  EXPECT_TRUE(pmu_seen) << json.out;
  EXPECT_TRUE(mode_seen) << json.out;
}

TEST(LlcStat, CountsReferencesAndMissesWithAHardwarePmu) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  if (int err = cache_references_error())
    GTEST_SKIP() << "skipped: no hardware cache counters here (perf_event_open PERF_TYPE_HARDWARE: "
                 << strerror(err) << ")";
  // A shell loop touching memory is enough to show up in the LLC counters of its CPU.
  Child busy({"/bin/sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"});
  Finished traced = run({memscope_binary(), "llcstat", "--json", "-c", "10", "-d", "2"});
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  bool total_seen = false;
  uint64_t references = 0;
  for (const auto& row : json_lines(traced.out)) {
    if (row["event"] == "llcstat") {
      references += row["references"].get<uint64_t>();
      EXPECT_GE(row["hit_percent"].get<double>(), 0.0);
      EXPECT_LE(row["hit_percent"].get<double>(), 100.0);
    }
    if (row["event"] == "llcstat_total") total_seen = true;
  }
  EXPECT_TRUE(total_seen) << traced.out;
  EXPECT_GT(references, 0u) << traced.out;
}

}  // namespace
}  // namespace memscope::test
