// mmapsnoop sees the known mmap() calls of tests/testprogs/mmap_file.c: a file opened before tracing
// began, a file opened after, an anonymous mapping and a failing mmap, with exact sizes, flags,
// offsets, returned addresses and file paths, on every hook kind this kernel offers.
#include <gtest/gtest.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <sstream>

#include "harness.hpp"

namespace memscope::test {
namespace {

constexpr uint64_t kFileSize = 64 * 1024;
constexpr uint64_t kPage = 4096;

struct MmapRun {
  std::string dir;  // real path of the directory holding before.bin and after.bin
  pid_t pid = 0;
  std::map<std::string, uint64_t> addresses;  // what the program printed: call → returned address
  Finished program;
  Finished traced;
};

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/memscope-mmapsnoop-XXXXXX";
    char* made = mkdtemp(pattern);
    if (made) {
      char real[PATH_MAX];
      path_ = realpath(made, real) ? real : made;
    }
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Starts mmap_file, waits until it has created and opened its files, attaches mmapsnoop to it, lets
// it run its calls, and collects both outputs.
MmapRun run_mmap_file(const TempDir& dir, std::vector<std::string> tracer_args) {
  MmapRun run;
  run.dir = dir.path();
  Child program({testprog("mmap_file"), dir.path(), std::to_string(kFileSize)}, true);
  run.pid = program.pid();
  if (!program.wait_for("ready", std::chrono::seconds(10), true))
    throw std::runtime_error("mmap_file did not get ready: " + program.err());
  tracer_args.insert(tracer_args.end(), {"-p", std::to_string(run.pid)});
  Tracer tracer("mmapsnoop", tracer_args);
  program.write_stdin("go\n");
  run.program = program.finish();
  run.traced = tracer.stop();
  for (const auto& line : lines(run.program.out)) {
    std::istringstream fields(line);
    std::string name, value;
    if (fields >> name >> value && name != "ready") run.addresses[name] = std::stoull(value, nullptr, 16);
  }
  return run;
}

std::vector<nlohmann::json> events_named(const MmapRun& run, const std::string& name) {
  std::vector<nlohmann::json> found;
  for (const auto& event : json_lines(run.traced.out))
    if (event["event"] == name && event["pid"] == run.pid) found.push_back(event);
  return found;
}

const nlohmann::json* mmap_of(const std::vector<nlohmann::json>& events, const std::string& file) {
  for (const auto& event : events)
    if (event["file"] == file) return &event;
  return nullptr;
}

void expect_known_mmaps(const MmapRun& run) {
  ASSERT_EQ(run.program.exit_code, 0) << run.program.err;
  ASSERT_EQ(run.traced.exit_code, 0) << run.traced.err;
  ASSERT_EQ(run.addresses.size(), 6u) << run.program.out;
  auto mmaps = events_named(run, "mmap");
  ASSERT_EQ(mmaps.size(), 4u) << "expected exactly the 4 mmap calls of mmap_file in:\n"
                              << run.traced.out << run.traced.err;

  const nlohmann::json* shared = mmap_of(mmaps, run.dir + "/before.bin");
  ASSERT_NE(shared, nullptr) << "no mmap of before.bin (opened before tracing began) in:\n" << run.traced.out;
  EXPECT_EQ((*shared)["comm"], "mmap_file");
  EXPECT_EQ((*shared)["addr"], run.addresses.at("shared_before"));
  EXPECT_EQ((*shared)["ret"], static_cast<int64_t>(run.addresses.at("shared_before")));
  EXPECT_EQ((*shared)["error"], "");
  EXPECT_EQ((*shared)["len"], kFileSize);
  EXPECT_EQ((*shared)["offset"], 0u);
  EXPECT_EQ((*shared)["prot"], 3u);
  EXPECT_EQ((*shared)["prot_names"], "PROT_READ|PROT_WRITE");
  EXPECT_EQ((*shared)["flags"], 1u);
  EXPECT_EQ((*shared)["flags_names"], "MAP_SHARED");
  EXPECT_GE((*shared)["fd"].get<int64_t>(), 3);

  const nlohmann::json* private_after = mmap_of(mmaps, run.dir + "/after.bin");
  ASSERT_NE(private_after, nullptr) << "no mmap of after.bin in:\n" << run.traced.out;
  EXPECT_EQ((*private_after)["addr"], run.addresses.at("private_after"));
  EXPECT_EQ((*private_after)["len"], kFileSize - kPage);
  EXPECT_EQ((*private_after)["offset"], kPage);
  EXPECT_EQ((*private_after)["prot_names"], "PROT_READ");
  EXPECT_EQ((*private_after)["flags_names"], "MAP_PRIVATE");

  const nlohmann::json* anonymous = mmap_of(mmaps, "[anon]");
  ASSERT_NE(anonymous, nullptr) << "no anonymous mmap in:\n" << run.traced.out;
  EXPECT_EQ((*anonymous)["addr"], run.addresses.at("anonymous"));
  EXPECT_EQ((*anonymous)["len"], 3 * kPage);
  EXPECT_EQ((*anonymous)["fd"], -1);
  EXPECT_EQ((*anonymous)["flags_names"], "MAP_PRIVATE|MAP_ANONYMOUS");
  EXPECT_EQ((*anonymous)["error"], "");

  const nlohmann::json* failed = mmap_of(mmaps, "[fd 987]");
  ASSERT_NE(failed, nullptr) << "no failed mmap of fd 987 in:\n" << run.traced.out;
  EXPECT_EQ((*failed)["error"], "EBADF");
  EXPECT_EQ((*failed)["ret"], -9);
  EXPECT_EQ((*failed)["addr"], 0u);
  EXPECT_EQ((*failed)["fd"], 987);
  EXPECT_EQ((*failed)["len"], kPage);
}

TEST(MmapSnoop, SeesFilesAnonymousAndFailedMmaps) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  expect_known_mmaps(run_mmap_file(dir, {"--json"}));
}

TEST(MmapSnoop, WorksOnForcedTracepoint) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  TempDir dir;
  MmapRun run = run_mmap_file(dir, {"--json", "-v", "--probe", "tracepoint"});
  EXPECT_NE(run.traced.err.find("using tracepoint syscalls:sys_enter_mmap,syscalls:sys_exit_mmap"),
            std::string::npos)
      << run.traced.err;
  expect_known_mmaps(run);
}

TEST(MmapSnoop, WorksOnForcedTpBtf) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  TempDir dir;
  MmapRun run = run_mmap_file(dir, {"--json", "-v", "--probe", "tp_btf"});
  EXPECT_NE(run.traced.err.find("using tp_btf sys_enter,sys_exit"), std::string::npos) << run.traced.err;
  expect_known_mmaps(run);
}

TEST(MmapSnoop, WorksOnForcedRawTp) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  TempDir dir;
  MmapRun run = run_mmap_file(dir, {"--json", "-v", "--probe", "raw_tp"});
  EXPECT_NE(run.traced.err.find("using raw_tp sys_enter,sys_exit"), std::string::npos) << run.traced.err;
  expect_known_mmaps(run);
}

TEST(MmapSnoop, ForcedKprobeFailsWithOneClearLine) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  if (access("/sys/bus/event_source/devices/kprobe/type", F_OK) == 0)
    GTEST_SKIP() << "skipped: this kernel has kprobes, so --probe kprobe is expected to work";
  Finished result = run({memscope_binary(), "mmapsnoop", "--probe", "kprobe"});
  EXPECT_NE(result.exit_code, 0);
  EXPECT_EQ(result.out, "");
  auto err_lines = lines(result.err);
  ASSERT_EQ(err_lines.size(), 1u) << result.err;
  EXPECT_NE(err_lines[0].find("kprobes"), std::string::npos) << result.err;
  EXPECT_EQ(err_lines[0].rfind("memscope mmapsnoop: ", 0), 0u) << result.err;
}

TEST(MmapSnoop, AllAddsMremapAndMunmapWithTheirFiles) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  TempDir dir;
  for (const char* probe : {"tracepoint", "tp_btf"}) {
    SCOPED_TRACE(probe);
    MmapRun run = run_mmap_file(dir, {"--json", "--all", "--probe", probe});
    ASSERT_EQ(run.traced.exit_code, 0) << run.traced.err;
    EXPECT_EQ(events_named(run, "mmap").size(), 4u) << run.traced.out;

    auto remaps = events_named(run, "mremap");
    ASSERT_EQ(remaps.size(), 1u) << run.traced.out;
    EXPECT_EQ(remaps[0]["old_addr"], run.addresses.at("anonymous"));
    EXPECT_EQ(remaps[0]["old_len"], 3 * kPage);
    EXPECT_EQ(remaps[0]["new_len"], 5 * kPage);
    EXPECT_EQ(remaps[0]["flags_names"], "MREMAP_MAYMOVE");
    EXPECT_EQ(remaps[0]["addr"], run.addresses.at("moved"));
    EXPECT_EQ(remaps[0]["file"], "[anon]");

    auto unmaps = events_named(run, "munmap");
    ASSERT_EQ(unmaps.size(), 3u) << run.traced.out;
    std::map<uint64_t, nlohmann::json> by_address;
    for (const auto& unmap : unmaps) by_address[unmap["addr"].get<uint64_t>()] = unmap;
    ASSERT_TRUE(by_address.count(run.addresses.at("moved"))) << run.traced.out;
    EXPECT_EQ(by_address[run.addresses.at("moved")]["len"], 5 * kPage);
    EXPECT_EQ(by_address[run.addresses.at("moved")]["file"], "[anon]");
    EXPECT_EQ(by_address[run.addresses.at("moved")]["ret"], 0);
    ASSERT_TRUE(by_address.count(run.addresses.at("shared_before"))) << run.traced.out;
    EXPECT_EQ(by_address[run.addresses.at("shared_before")]["file"], run.dir + "/before.bin");
    EXPECT_EQ(by_address[run.addresses.at("shared_before")]["len"], kFileSize);
  }
}

TEST(MmapSnoop, TextKeepsTheBookColumns) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  TempDir dir;
  MmapRun run = run_mmap_file(dir, {});
  ASSERT_EQ(run.traced.exit_code, 0) << run.traced.err;
  auto out = lines(run.traced.out);
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out[0], "PID     COMM             PROT MAP   OFFS(KB) SIZE(KB) FILE");
  std::string pid = std::to_string(run.pid);
  auto expect_line = [&](const std::string& rest) {
    std::string pid_column = pid + std::string(8 - pid.size(), ' ');
    std::string expected = pid_column + "mmap_file        " + rest;
    bool found = false;
    for (const auto& line : out) found = found || line == expected;
    EXPECT_TRUE(found) << "missing line:\n" << expected << "\nin:\n" << run.traced.out;
  };
  expect_line("RW-  S---  0        64       " + run.dir + "/before.bin");
  expect_line("R--  -P--  4        60       " + run.dir + "/after.bin");
  expect_line("RW-  -P-A  0        12       [anon]");
  expect_line("R--  -P--  0        4        [fd 987] (failed: EBADF)");
}

}  // namespace
}  // namespace memscope::test
