// mmapsnoop sees the known mmap() calls of tests/testprogs/mmap_file.c: a file opened before tracing
// began, a file opened after, an anonymous mapping and a failing mmap, with exact sizes, flags,
// offsets, returned addresses and file paths, on every hook kind this kernel offers.
#include <gtest/gtest.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
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

// mmap_burst maps `file` `count` times while the tracer runs with its default ring buffer: how many
// of its mmaps were printed as `shown`, and what the tracer said.
struct Burst {
  uint64_t mapped = 0;   // what mmap_burst says it mapped
  uint64_t printed = 0;  // its mmaps that mmapsnoop printed with the file `shown`
  Finished traced;
};

// `stop_reader`: memscope is stopped (SIGSTOP) for the whole burst, so the ring buffer alone must
// hold every event, however fast memscope would have read.
Burst run_burst(const std::string& file, const std::string& shown, int count, bool stop_reader) {
  Burst burst;
  Child program({testprog("mmap_burst"), std::to_string(count), file}, true);
  if (!program.wait_for("ready", std::chrono::seconds(10), true))
    throw std::runtime_error("mmap_burst did not get ready: " + program.err());
  Tracer tracer("mmapsnoop", {"--json", "-p", std::to_string(program.pid())});
  if (stop_reader) tracer.signal(SIGSTOP);
  program.write_stdin("go\n");
  std::string done = "mapped " + std::to_string(count);
  bool finished = program.wait_for(done, std::chrono::seconds(60), true);
  if (stop_reader) tracer.signal(SIGCONT);
  if (!finished) throw std::runtime_error("mmap_burst did not finish: " + program.out() + program.err());
  burst.mapped = count;
  usleep(500000);
  burst.traced = tracer.stop();
  program.write_stdin("done\n");
  program.finish();
  for (const auto& event : json_lines(burst.traced.out))
    if (event["event"] == "mmap" && event["pid"] == program.pid() && event["len"] == 4096 &&
        event["file"] == shown)
      burst.printed++;
  return burst;
}

// The tracer ended cleanly and printed each of the burst's mmaps, with nothing lost.
void expect_every_mmap_printed(const Burst& burst) {
  ASSERT_EQ(burst.traced.exit_code, 0) << burst.traced.err;
  EXPECT_EQ(burst.printed, burst.mapped) << burst.traced.err << burst.traced.out.substr(0, 2000);
  EXPECT_EQ(burst.traced.err.find("Lost"), std::string::npos) << burst.traced.err;
  EXPECT_EQ(burst.traced.out.find("Lost"), std::string::npos);
}

// DIR/NAME_1/…/NAME_n/mapped.bin, created; its real path.
std::string deep_file(const std::string& dir, int depth, const std::string& name) {
  std::filesystem::path path = dir;
  for (int level = 1; level <= depth; level++) path /= name + std::to_string(level);
  std::filesystem::create_directories(path);
  path /= "mapped.bin";
  std::ofstream(path) << std::string(4096, 'x');
  return path.string();
}

// Records are as long as their path: the default buffer (2 MiB) alone holds at least the 11,000
// events of a typical path that the 16 MiB of fixed-size records held, with nobody reading it.
TEST(MmapSnoop, DefaultBufferHoldsElevenThousandTypicalEventsUnread) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  const std::string libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
  if (access(libc.c_str(), R_OK) != 0) GTEST_SKIP() << "skipped: no " << libc;
  expect_every_mmap_printed(run_burst(libc, libc, 11000, true));
}

// A burst of 5,000 mmaps of a file 15 directories deep (more than a typical path), printed through
// a pipe: each with its whole path, none lost.
TEST(MmapSnoop, DefaultBufferKeepsEveryMmapOfABurstOfDeepPaths) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::string file = deep_file(dir.path(), 15, "level-");
  expect_every_mmap_printed(run_burst(file, file, 5000, false));
}

// A path deeper than the walk (MMAPSNOOP_PATH_DEPTH names) of names of the longest length kept
// (63 bytes): the largest record. Its 20 innermost names are printed after "...".
TEST(MmapSnoop, PathDeeperThanTheWalkIsMarkedTruncated) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::string file = deep_file(dir.path(), 25, std::string(61, 'd'));
  std::vector<std::string> names;
  for (const auto& name : std::filesystem::path(file)) names.push_back(name.string());
  std::string innermost;
  for (size_t i = names.size() - 20; i < names.size(); i++) innermost += "/" + names[i];

  Burst burst = run_burst(file, "..." + innermost, 1, false);
  ASSERT_EQ(burst.traced.exit_code, 0) << burst.traced.err;
  EXPECT_EQ(burst.printed, 1u) << "expected ..." << innermost << " in:\n" << burst.traced.out;
}

}  // namespace
}  // namespace memscope::test
