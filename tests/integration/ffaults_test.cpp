// ffaults sees the page faults a test program takes on purpose: K writes into a file it maps
// (counted under the file's full path) and K writes into fresh anonymous memory (under [anon]).
#include <gtest/gtest.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "fault_touch.hpp"
#include "harness.hpp"

namespace memscope::test {
namespace {

constexpr uint64_t kPages = 1000;
// Faults besides the K touches while traced: first runs of code after the tracer attached (its
// text is a file mapping too) take a handful; a double count would give 2K.
constexpr uint64_t kTolerance = 32;

// A sparse file of `pages` pages beside the test programs (on disk, so that 6.1's filemap_fault
// hook sees it too: tmpfs files fault through shmem_fault), removed at the end.
class TargetFile {
 public:
  explicit TargetFile(uint64_t pages) {
    char resolved[PATH_MAX];
    std::string directory = realpath(testprog("").c_str(), resolved) ? resolved : testprog("");
    path_ = directory + "/ffaults-target-" + std::to_string(getpid()) + ".dat";
    FILE* file = std::fopen(path_.c_str(), "w");
    if (!file) throw std::runtime_error("cannot create " + path_);
    std::fclose(file);
    std::filesystem::resize_file(path_, pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)));
  }
  ~TargetFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

uint64_t faults_on(const std::vector<nlohmann::json>& events, const std::string& file) {
  uint64_t faults = 0;
  for (const auto& event : events)
    if (event["event"] == "file_faults" && event["file"] == file) faults += event["faults"].get<uint64_t>();
  return faults;
}

TEST(FileFaults, CountsFaultsOnAMappedFileByFullPath) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  TargetFile target(kPages);
  FaultTouch program({"file", target.path(), std::to_string(kPages)});
  Finished traced = program.traced_by("ffaults", {"--json"});
  ASSERT_EQ(traced.exit_code, 0) << traced.err;

  auto events = json_lines(traced.out);
  uint64_t faults = faults_on(events, target.path());
  EXPECT_GE(faults, kPages) << traced.out;
  EXPECT_LE(faults, kPages + kTolerance) << traced.out;
  for (const auto& event : events) {
    if (event["event"] == "file_faults" && event["file"] == target.path()) {
      EXPECT_EQ(event["kind"], "file");
    }
  }
}

TEST(FileFaults, CountsAnonymousTouchesAsAnon) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  FaultTouch program({"anon", std::to_string(kPages)});
  // filemap_fault (the default hook where kprobes exist) sees files only: anonymous memory needs
  // the tracepoint hook.
  Finished traced = program.traced_by("ffaults", {"--json", "--probe", "tp"});
  ASSERT_EQ(traced.exit_code, 0) << traced.err;

  auto events = json_lines(traced.out);
  uint64_t anonymous = faults_on(events, "[anon]");
  EXPECT_GE(anonymous, kPages) << traced.out;
  EXPECT_LE(anonymous, kPages + kTolerance) << traced.out;
  for (const auto& event : events) {
    if (event["event"] == "file_faults" && event["file"] == "[anon]") {
      EXPECT_EQ(event["kind"], "anon");
    }
  }
}

// A memfd is a shmem file mounted nowhere: it is named as /proc/PID/maps names it, and its faults
// bypass filemap_fault, so only the tracepoint hook sees them.
TEST(FileFaults, NamesMemfdsLikeProcMaps) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  std::string name = "memscope-ffaults-" + std::to_string(getpid());
  FaultTouch program({"memfd", name, std::to_string(kPages)});
  Finished traced = program.traced_by("ffaults", {"--json", "--probe", "tp"});
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  uint64_t faults = faults_on(json_lines(traced.out), "/memfd:" + name);
  EXPECT_GE(faults, kPages) << traced.out;
  EXPECT_LE(faults, kPages + kTolerance) << traced.out;
}

TEST(FileFaults, TextTableSortedByFaults) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  TargetFile target(kPages);
  FaultTouch program({"file", target.path(), std::to_string(kPages)});
  Finished traced = program.traced_by("ffaults", {});
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  auto output = lines(traced.out);
  ASSERT_GE(output.size(), 2u) << traced.out;
  EXPECT_EQ(output[0], "    FAULTS KIND   FILE");
  // The mapped file has by far the most faults of this process: first row.
  EXPECT_NE(output[1].find(" file   " + target.path()), std::string::npos) << traced.out;
}

TEST(FileFaults, EveryTracepointFlavourFindsTheFile) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  for (std::string kind : {"tp_btf", "raw_tp", "tracepoint"}) {
    SCOPED_TRACE(kind);
    TargetFile target(kPages);
    FaultTouch program({"file", target.path(), std::to_string(kPages)});
    Finished traced = program.traced_by("ffaults", {"--json", "--probe", kind});
    ASSERT_EQ(traced.exit_code, 0) << traced.err;
    uint64_t faults = faults_on(json_lines(traced.out), target.path());
    EXPECT_GE(faults, kPages) << traced.out;
    EXPECT_LE(faults, kPages + kTolerance) << traced.out;
  }
}

TEST(FileFaults, ForcedKprobeWithoutKprobesFailsWithOneLine) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  expect_forced_kprobe_fails_with_one_line("ffaults", "page fault by file");
}

}  // namespace
}  // namespace memscope::test
