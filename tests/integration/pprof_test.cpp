// --pprof: the profiles memscope writes are read by pprof itself (`go tool pprof`, Debian's golang-go)
// and hold exactly the stacks and values of the report printed next to them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "harness.hpp"

using nlohmann::json;

namespace memscope::test {
namespace {

std::string go_binary() {
  for (const char* candidate : {"/usr/bin/go", "/usr/lib/go/bin/go"})
    if (access(candidate, X_OK) == 0) return candidate;
  return "";
}

class PprofFile : public ::testing::Test {
 protected:
  void SetUp() override {
    MEMSCOPE_REQUIRE_INTEGRATION();
    go_ = go_binary();  // only the tests that read a profile need it
    char pattern[] = "/tmp/memscope-pprof-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    directory_ = pattern;
  }
  void TearDown() override {
    if (!directory_.empty()) std::filesystem::remove_all(directory_);
  }

  // `go tool pprof -traces -sample_index=INDEX FILE`: one block per sample, "-----+---" between them.
  std::string traces(const std::string& file, const std::string& sample_index) {
    // scripts/setup.sh installs golang-go: its absence is a broken setup, not a reason to skip.
    if (go_.empty()) {
      ADD_FAILURE() << "go tool pprof is not installed (Debian package golang-go, installed by scripts/setup.sh)";
      return "";
    }
    std::vector<std::string> argv = {go_, "tool", "pprof", "-traces", "-sample_index=" + sample_index};
    if (sample_index == "bytes") argv.push_back("-unit=B");  // exact byte counts, not "40.01kB"
    argv.push_back(file);
    Finished pprof = run(argv, std::chrono::seconds(120));
    EXPECT_EQ(pprof.exit_code, 0) << pprof.err;
    return pprof.out;
  }

  std::string go_;
  std::string directory_;
};

// The sample blocks of -traces output whose frames include `function`, each as its text.
std::vector<std::string> blocks_with(const std::string& traces, const std::string& function) {
  std::vector<std::string> found;
  size_t start = 0;
  while (start < traces.size()) {
    size_t end = traces.find("-----------+", start);
    if (end == std::string::npos) end = traces.size();
    std::string block = traces.substr(start, end - start);
    if (std::regex_search(block, std::regex("\\b" + function + "\\b"))) found.push_back(block);
    start = traces.find('\n', end);
    if (start == std::string::npos) break;
  }
  return found;
}

TEST_F(PprofFile, MemleakFinalReportReadsInPprofWithItsBytesAndFrames) {
  std::string profile = directory_ + "/leak.pb.gz";
  Finished traced = run({memscope_binary(), "memleak", "-c", testprog("leak_short"), "--no-scan", "--json",
                         "-T", "200", "--pprof", profile},
                        std::chrono::seconds(90));
  ASSERT_EQ(traced.exit_code, 0) << traced.err;
  // The printed report: the blocks leak_briefly leaves behind (40961 and 40973 bytes).
  std::vector<uint64_t> printed;
  for (const auto& record : json_lines(traced.out))
    if (record.value("event", "") == "outstanding_allocations") {
      printed.clear();
      for (const auto& entry : record["stacks"])
        for (const auto& frame : entry["frames"])
          if (frame["function"] == "leak_briefly") printed.push_back(entry["bytes"].get<uint64_t>());
    }
  ASSERT_EQ(printed.size(), 2u) << traced.out;

  std::string by_bytes = traces(profile, "bytes");
  auto blocks = blocks_with(by_bytes, "leak_briefly");
  ASSERT_EQ(blocks.size(), 2u) << by_bytes;
  for (uint64_t bytes : printed) {
    bool seen = false;
    for (const auto& block : blocks)
      seen |= std::regex_search(block, std::regex("\\b" + std::to_string(bytes) + "B\\b"));
    EXPECT_TRUE(seen) << bytes << " bytes not in:\n" << by_bytes;
  }
  // leak_briefly is called from main: the caller is in the profile's stack too.
  for (const auto& block : blocks) EXPECT_TRUE(std::regex_search(block, std::regex("\\bmain\\b"))) << block;
  // A second sample type: allocation counts.
  auto counted = blocks_with(traces(profile, "allocations"), "leak_briefly");
  ASSERT_EQ(counted.size(), 2u);
  for (const auto& block : counted)
    EXPECT_TRUE(std::regex_search(block, std::regex("^\\s*1\\b", std::regex::multiline))) << block;
}

TEST_F(PprofFile, FaultStacksReadInPprofWithTheirCounts) {
  constexpr int kPages = 300;
  std::string profile = directory_ + "/faults.pb.gz";
  // tests/testprogs/fault_touch.c: prints its pid, touches on "go", waits again before exiting.
  Child program({testprog("fault_touch"), "anon", std::to_string(kPages)}, /*capture_stdin=*/true);
  ASSERT_TRUE(program.wait_for("pid ", std::chrono::seconds(10), true));
  Tracer tracer("faults", {"--pprof", profile, "-p", std::to_string(program.pid())});
  program.write_stdin("go\n");
  ASSERT_TRUE(program.wait_for("touched", std::chrono::seconds(30), true)) << program.err();
  Finished traced = tracer.stop();
  program.write_stdin("done\n");
  program.finish();
  ASSERT_EQ(traced.exit_code, 0) << traced.err;

  std::string by_faults = traces(profile, "faults");
  auto blocks = blocks_with(by_faults, "touch_pages_from_here");
  ASSERT_FALSE(blocks.empty()) << by_faults;
  uint64_t faults = 0;
  std::smatch value;
  for (const auto& block : blocks)
    if (std::regex_search(block, value, std::regex("^\\s*(\\d+)\\s", std::regex::multiline)))
      faults += std::stoull(value[1]);
  EXPECT_GE(faults, static_cast<uint64_t>(kPages)) << by_faults;
  EXPECT_LE(faults, static_cast<uint64_t>(kPages) + 16) << by_faults;
}

TEST_F(PprofFile, UnwritableProfileIsOneClearLineBeforeTracing) {
  Finished refused = run(
      {memscope_binary(), "memleak", "-c", testprog("leak_short"), "--pprof", "/nonexistent/dir/p.pb.gz"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_EQ(lines(refused.err).size(), 1u) << refused.err;
  EXPECT_NE(refused.err.find("--pprof /nonexistent/dir/p.pb.gz"), std::string::npos) << refused.err;
}

}  // namespace
}  // namespace memscope::test
