// What the page fault tests (faults, ffaults, hfaults) drive: tests/testprogs/fault_touch, which
// takes a known number of faults on "go", and a few huge pages reserved for its hugetlb mode.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "harness.hpp"

namespace memscope::test {

// tests/testprogs/fault_touch.c: prints its pid, touches on "go", waits again before exiting.
class FaultTouch {
 public:
  explicit FaultTouch(std::vector<std::string> args) : child_(argv(std::move(args)), true) {
    if (!child_.wait_for("pid ", std::chrono::seconds(10), true) ||
        !child_.wait_for("\n", std::chrono::seconds(5), true))
      throw std::runtime_error("fault_touch did not start: " + child_.out() + child_.err());
  }
  pid_t pid() const { return child_.pid(); }
  // Touches the pages and waits until done.
  void touch() {
    child_.write_stdin("go\n");
    if (!child_.wait_for("touched", std::chrono::seconds(30), true))
      throw std::runtime_error("fault_touch did not finish touching: " + child_.out() + child_.err());
  }
  Finished release() {
    child_.write_stdin("done\n");
    return child_.finish();
  }
  // `memscope TOOL ARGS… -p PID`, attached before the touches and stopped after them; the program
  // then exits.
  Finished traced_by(const std::string& tool, std::vector<std::string> args) {
    args.insert(args.end(), {"-p", std::to_string(pid())});
    Tracer tracer(tool, std::move(args));
    touch();
    Finished traced = tracer.stop();
    release();
    return traced;
  }

 private:
  static std::vector<std::string> argv(std::vector<std::string> args) {
    args.insert(args.begin(), testprog("fault_touch"));
    return args;
  }
  Child child_;
};

// A /proc/meminfo value (kB or pages, as the line says); 0 when absent.
inline uint64_t meminfo_value(const std::string& key) {
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
  HugePageReservation(const HugePageReservation&) = delete;
  HugePageReservation& operator=(const HugePageReservation&) = delete;
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

inline bool kprobes_available() { return access("/sys/bus/event_source/devices/kprobe/type", F_OK) == 0; }

// Where kprobes are missing, `memscope TOOL --probe kprobe` fails with one line that names the
// event (the VM tier tests the kprobe hooks themselves).
inline void expect_forced_kprobe_fails_with_one_line(const std::string& tool, const std::string& event) {
  if (kprobes_available()) GTEST_SKIP() << "skipped: this kernel has kprobes (the VM tier tests that path)";
  Finished result = run({memscope_binary(), tool, "--probe", "kprobe", "-d", "1"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(lines(result.err).size(), 1u) << result.err;
  EXPECT_NE(result.err.find("memscope " + tool + ": no usable hook for " + event + ": kprobe:"),
            std::string::npos)
      << result.err;
  EXPECT_TRUE(result.out.empty()) << result.out;
}

}  // namespace memscope::test
