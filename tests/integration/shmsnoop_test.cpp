// shmsnoop sees the System V shared memory calls of tests/testprogs/shm_user.c in order, with exact
// decoded arguments and results: create, a failing create (EEXIST), attach, stat, detach, remove.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <sstream>

#include "harness.hpp"

namespace memscope::test {
namespace {

constexpr uint64_t kSize = 100000;  // not a page multiple: shmget keeps the size asked for

struct ShmRun {
  pid_t pid = 0;
  uint32_t key = 0;
  std::map<std::string, uint64_t> printed;  // shmid, address, stat_buffer
  Finished traced;
};

ShmRun run_shm_user(std::vector<std::string> tracer_args) {
  ShmRun run;
  // A key of our own, so parallel runs and leftovers of other programs cannot collide with it.
  run.key = 0x4d530000u | (static_cast<uint32_t>(getpid()) & 0xffffu);
  tracer_args.insert(tracer_args.end(), {"--comm", "shm_user"});
  Tracer tracer("shmsnoop", tracer_args);
  Child program({testprog("shm_user"), fmt::format("{:#x}", run.key), std::to_string(kSize)});
  run.pid = program.pid();
  Finished done = program.finish();
  if (done.exit_code != 0) throw std::runtime_error("shm_user failed: " + done.err);
  run.traced = tracer.stop();
  for (const auto& line : lines(done.out)) {
    std::istringstream fields(line);
    std::string name, value;
    if (fields >> name >> value) run.printed[name] = std::stoull(value, nullptr, 0);
  }
  return run;
}

std::vector<nlohmann::json> events_of(const ShmRun& run) {
  std::vector<nlohmann::json> found;
  for (const auto& event : json_lines(run.traced.out))
    if (event.contains("pid") && event["pid"] == run.pid) found.push_back(event);
  return found;
}

void expect_all_calls(const ShmRun& run) {
  ASSERT_EQ(run.traced.exit_code, 0) << run.traced.err;
  auto events = events_of(run);
  ASSERT_EQ(events.size(), 6u) << run.traced.out << run.traced.err;
  const uint64_t shmid = run.printed.at("shmid"), address = run.printed.at("address");
  const std::string key_text = fmt::format("{:#010x}", run.key);
  for (const auto& event : events) EXPECT_EQ(event["comm"], "shm_user");

  const auto& created = events[0];
  EXPECT_EQ(created["event"], "shmget");
  EXPECT_EQ(created["ret"], shmid);
  EXPECT_EQ(created["error"], "");
  EXPECT_EQ(created["key"], run.key);
  EXPECT_EQ(created["key_text"], key_text);
  EXPECT_EQ(created["size"], kSize);
  EXPECT_EQ(created["shmflg"], 01000u | 02000u | 0600u);
  EXPECT_EQ(created["shmflg_names"], "IPC_CREAT|IPC_EXCL|0600");
  EXPECT_EQ(created["args"],
            fmt::format("key: {}, size: {}, shmflg: 0x780 (IPC_CREAT|IPC_EXCL|0600)", key_text, kSize));

  const auto& exists = events[1];
  EXPECT_EQ(exists["event"], "shmget");
  EXPECT_EQ(exists["ret"], -17);
  EXPECT_EQ(exists["error"], "EEXIST");
  EXPECT_EQ(exists["key"], run.key);

  const auto& attached = events[2];
  EXPECT_EQ(attached["event"], "shmat");
  EXPECT_EQ(attached["ret"], static_cast<int64_t>(address));
  EXPECT_EQ(attached["error"], "");
  EXPECT_EQ(attached["shmid"], shmid);
  EXPECT_EQ(attached["shmaddr"], 0u);
  EXPECT_EQ(attached["shmflg"], 010000u);
  EXPECT_EQ(attached["shmflg_names"], "SHM_RDONLY");

  const auto& stat = events[3];
  EXPECT_EQ(stat["event"], "shmctl");
  EXPECT_EQ(stat["ret"], 0);
  EXPECT_EQ(stat["shmid"], shmid);
  EXPECT_EQ(stat["cmd"], 2u);
  EXPECT_EQ(stat["cmd_name"], "IPC_STAT");
  EXPECT_EQ(stat["buf"], run.printed.at("stat_buffer"));

  const auto& detached = events[4];
  EXPECT_EQ(detached["event"], "shmdt");
  EXPECT_EQ(detached["ret"], 0);
  EXPECT_EQ(detached["shmaddr"], address);
  EXPECT_EQ(detached["args"], fmt::format("shmaddr: {:#x}", address));

  const auto& removed = events[5];
  EXPECT_EQ(removed["event"], "shmctl");
  EXPECT_EQ(removed["ret"], 0);
  EXPECT_EQ(removed["shmid"], shmid);
  EXPECT_EQ(removed["cmd"], 0u);
  EXPECT_EQ(removed["cmd_name"], "IPC_RMID");
  EXPECT_EQ(removed["buf"], 0u);
  EXPECT_EQ(removed["args"], fmt::format("shmid: {:#x}, cmd: 0 (IPC_RMID), buf: 0x0", shmid));
}

TEST(ShmSnoop, SeesEveryCallWithDecodedArgumentsAndResults) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  expect_all_calls(run_shm_user({"--json"}));
}

TEST(ShmSnoop, WorksOnForcedTpBtf) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  ShmRun run = run_shm_user({"--json", "-v", "--probe", "tp_btf"});
  EXPECT_NE(run.traced.err.find("using tp_btf sys_enter,sys_exit"), std::string::npos) << run.traced.err;
  expect_all_calls(run);
}

TEST(ShmSnoop, FailedOnlyShowsTheFailingCall) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  ShmRun run = run_shm_user({"--json", "-x"});
  auto events = events_of(run);
  ASSERT_EQ(events.size(), 1u) << run.traced.out;
  EXPECT_EQ(events[0]["event"], "shmget");
  EXPECT_EQ(events[0]["error"], "EEXIST");
}

TEST(ShmSnoop, TextKeepsBccColumns) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  ShmRun run = run_shm_user({});
  ASSERT_EQ(run.traced.exit_code, 0) << run.traced.err;
  auto out = lines(run.traced.out);
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out[0], "PID     COMM                SYS              RET ARGs");
  std::string prefix = fmt::format("{:<7} {:<16} ", run.pid, "shm_user");
  std::string key_text = fmt::format("{:#010x}", run.key);
  uint64_t shmid = run.printed.at("shmid"), address = run.printed.at("address");
  std::vector<std::string> expected = {
      prefix + fmt::format("{:>6} {:>16} key: {}, size: {}, shmflg: 0x780 (IPC_CREAT|IPC_EXCL|0600)",
                           "SHMGET", fmt::format("{:x}", shmid), key_text, kSize),
      prefix + fmt::format("{:>6} {:>16} key: {}, size: {}, shmflg: 0x780 (IPC_CREAT|IPC_EXCL|0600)",
                           "SHMGET", "-EEXIST", key_text, kSize),
      prefix + fmt::format("{:>6} {:>16x} shmid: {:#x}, shmaddr: 0x0, shmflg: 0x1000 (SHM_RDONLY)", "SHMAT",
                           address, shmid),
      prefix + fmt::format("{:>6} {:>16} shmid: {:#x}, cmd: 2 (IPC_STAT), buf: {:#x}", "SHMCTL", 0, shmid,
                           run.printed.at("stat_buffer")),
      prefix + fmt::format("{:>6} {:>16} shmaddr: {:#x}", "SHMDT", 0, address),
      prefix + fmt::format("{:>6} {:>16} shmid: {:#x}, cmd: 0 (IPC_RMID), buf: 0x0", "SHMCTL", 0, shmid),
  };
  std::vector<std::string> seen;
  for (const auto& line : out)
    if (line.rfind(prefix, 0) == 0) seen.push_back(line);
  EXPECT_EQ(seen, expected) << run.traced.out;
}

}  // namespace
}  // namespace memscope::test
