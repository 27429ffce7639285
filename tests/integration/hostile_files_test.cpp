// Issue 11's reproduction against the real binary: a user's stripped library whose .gnu_debuglink
// names a FIFO, or a device node, next to it. `memscope faults -p PID 1 3` must finish on time and
// must never open the device (opening /dev/watchdog arms it). The unit tier
// (tests/unit/hostile_files_test.cpp) covers the same rules function by function.
#include <gtest/gtest.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "harness.hpp"
#include "reclaim_workload.hpp"

namespace memscope::test {
namespace {

// libunwind_plugin.so stripped, with a .gnu_debuglink naming `link` in the same directory; `link` is
// made a regular file first (objcopy computes its CRC) and replaced by the caller.
std::string stripped_plugin_linking_to(const std::string& directory, const std::string& link) {
  std::string library = directory + "/libplugin.so";
  std::ofstream(directory + "/" + link) << "not a debug file";
  std::string command = std::string(MEMSCOPE_OBJCOPY) + " --strip-all --add-gnu-debuglink=" + directory + "/" +
                        link + " " + testprog("libunwind_plugin.so") + " " + library;
  if (std::system(command.c_str()) != 0) return {};
  std::filesystem::remove(directory + "/" + link);
  return library;
}

// Runs `memscope faults -p PID 1 3` on fault_touch with `library` preloaded; fault_touch takes its
// faults once memscope is attached, and its first fault makes memscope open every object it maps.
Finished faults_on_process_mapping(const std::string& library, std::chrono::seconds& took) {
  Child program({"/usr/bin/env", "LD_PRELOAD=" + library, testprog("fault_touch"), "anon", "100"},
                /*capture_stdin=*/true);
  if (!program.wait_for("pid", std::chrono::seconds(10), /*in_stdout=*/true))
    return Finished{-1, "", "fault_touch did not start: " + program.err()};
  auto start = std::chrono::steady_clock::now();
  Tracer tracer("faults", {"-p", std::to_string(program.pid()), "1", "3"});
  program.write_stdin("go\n");
  Finished traced = tracer.finish(std::chrono::seconds(30));
  took = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start);
  program.write_stdin("done\n");
  program.finish(std::chrono::seconds(10));
  return traced;
}

TEST(HostileFiles, FifoBehindADebugLinkDoesNotHangFaults) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  ScratchDirectory scratch("hostile-fifo");
  ASSERT_TRUE(scratch.ok());
  std::string library = stripped_plugin_linking_to(scratch.path(), "libplugin.debug");
  ASSERT_FALSE(library.empty());
  ASSERT_EQ(mkfifo((scratch.path() + "/libplugin.debug").c_str(), 0666), 0);
  std::chrono::seconds took{};
  Finished traced = faults_on_process_mapping(library, took);
  EXPECT_EQ(traced.exit_code, 0) << traced.err;
  EXPECT_LT(took.count(), 20) << "faults 1 3 took " << took.count() << " s";
}

TEST(HostileFiles, DeviceBehindADebugLinkIsNeverOpened) {
  MEMSCOPE_REQUIRE_INTEGRATION();
  ScratchDirectory scratch("hostile-device");
  ASSERT_TRUE(scratch.ok());
  std::string library = stripped_plugin_linking_to(scratch.path(), "libplugin.debug");
  ASSERT_FALSE(library.empty());
  // A node of its own (the same device as /dev/full): its IN_OPEN events are memscope's alone.
  std::string device = scratch.path() + "/libplugin.debug";
  ASSERT_EQ(mknod(device.c_str(), S_IFCHR | 0600, makedev(1, 7)), 0);
  int watch = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  ASSERT_GE(watch, 0);
  ASSERT_GE(inotify_add_watch(watch, device.c_str(), IN_OPEN), 0);
  std::chrono::seconds took{};
  Finished traced = faults_on_process_mapping(library, took);
  alignas(inotify_event) char events[4096];
  ssize_t length = read(watch, events, sizeof(events));
  close(watch);
  EXPECT_EQ(traced.exit_code, 0) << traced.err;
  EXPECT_LE(length, 0) << "memscope opened the device behind the debug link";
}

}  // namespace
}  // namespace memscope::test
