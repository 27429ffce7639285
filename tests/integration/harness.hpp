// Drives the real memscope binary and test programs for the integration tier.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace memscope::test {

std::string memscope_binary();
std::string testprog(const std::string& name);

struct Finished {
  int exit_code = -1;  // exit status, or 128+signal
  std::string out;
  std::string err;
};

// A child process with captured stdout and stderr.
class Child {
 public:
  // run_as_uid >= 0: drop to that uid (and gid) before exec, for privilege tests.
  explicit Child(std::vector<std::string> argv, bool capture_stdin = false, int run_as_uid = -1);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  // Waits until stderr (or stdout) contains `text`; false on timeout or exit.
  bool wait_for(const std::string& text, std::chrono::milliseconds timeout, bool in_stdout = false);
  void write_stdin(const std::string& text);
  void signal(int signo);
  // Waits for exit (killing it after the timeout) and returns everything it printed.
  Finished finish(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

 private:
  void pump(int timeout_ms);
  pid_t pid_ = -1;
  int out_fd_ = -1, err_fd_ = -1, in_fd_ = -1;
  std::string out_, err_;
  bool exited_ = false;
  int status_ = 0;
};

// memscope TOOL args…, started and waited for until attached ("Tracing … Hit Ctrl-C").
class Tracer : public Child {
 public:
  Tracer(const std::string& tool, std::vector<std::string> args);
  // Ctrl-C, then collect.
  Finished stop();
};

Finished run(std::vector<std::string> argv, std::chrono::milliseconds timeout = std::chrono::seconds(60));
Finished run_as(int uid, std::vector<std::string> argv);
std::vector<nlohmann::json> json_lines(const std::string& text);
// The lines of `text` that are JSON objects, the others skipped: a command traced with -c shares
// memscope's stdout.
std::vector<nlohmann::json> json_objects(const std::string& text);
std::vector<std::string> lines(const std::string& text);
// memleak --json: the outstanding_allocations reports among the objects of `out`.
std::vector<nlohmann::json> outstanding_reports(const std::string& out);
// The innermost frame's function of a report entry ("" without frames).
std::string top_function(const nlohmann::json& entry);
// The stack entries of a memleak report whose top frame is `function`.
std::vector<nlohmann::json> entries_from(const nlohmann::json& report, const std::string& function);
// A memleak report's stacks, one line each ("BYTES B / COUNT: functions…"), for failure messages.
std::string describe(const nlohmann::json& report);
// Whether `word` is one of the whitespace-separated words of `line` ("available" is not a word of
// "unavailable").
bool has_word(const std::string& line, const std::string& word);
// A counter of /proc/vmstat (0 when the kernel has no such counter).
uint64_t vmstat(const std::string& name);
// The value of a /proc/PID/status line ("State", "TracerPid", "VmRSS"), "" when there is none.
std::string proc_status_field(pid_t pid, const std::string& field);
// VmRSS of /proc/PID/status in KiB (0 when the process is gone).
uint64_t rss_kib(pid_t pid);
// Neither stopped nor traced: "State: S (sleeping)" or R, "TracerPid: 0" (a gtest expectation).
void expect_running_untraced(pid_t pid);
// Empty when the integration tier can run here; otherwise why not (not root, no BTF).
std::string missing_requirements();
// Leftover checks. Program ids only grow, so the programs loaded after a mark are those with a
// higher id: unlike a count, this ignores programs of earlier runs that are still being freed and
// tracers that come and go elsewhere on the machine. -1: bpftool cannot list programs.
int highest_bpf_program_id();
// Programs ("id name") loaded after `mark` that still exist. The kernel frees a program after an RCU
// grace period, so one of a process that just exited can be listed for a moment: waits up to
// `timeout` for them to go.
std::vector<std::string> bpf_programs_loaded_after(int mark, std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace memscope::test

#define MEMSCOPE_REQUIRE_INTEGRATION()                               \
  do {                                                               \
    std::string missing_ = ::memscope::test::missing_requirements(); \
    if (!missing_.empty()) GTEST_SKIP() << "skipped: " << missing_;  \
  } while (0)
