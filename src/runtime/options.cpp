#include "runtime/options.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>

#include "runtime/result.hpp"

namespace memscope {
namespace {

std::string option_names(const CommonOptionSet& set, char letter, const std::string& long_name) {
  if (set.reserved_letters.count(letter)) return "--" + long_name;
  return fmt::format("-{},--{}", letter, long_name);
}

}  // namespace

void add_common_options(CLI::App& app, CommonOptions& options, const CommonOptionSet& set) {
  if (set.pid) app.add_option(option_names(set, 'p', "pid"), options.pid, "Trace this process only (in-kernel filter)");
  if (set.tid) app.add_option(option_names(set, 't', "tid"), options.tid, "Trace this thread only (in-kernel filter)");
  if (set.comm) app.add_option("--comm", options.comm, "Trace tasks with this command name only");
  if (set.cgroup) app.add_option("--cgroup", options.cgroup, "Trace tasks in this cgroup v2 directory only");
  if (set.uid) app.add_option(option_names(set, 'u', "uid"), options.uid, "Trace this user ID only");
  if (set.interval) {
    options.interval = set.default_interval;
    app.add_option("interval", options.interval, "Seconds between reports")->check(CLI::NonNegativeNumber);
    app.add_option("count", options.count, "Number of reports, then exit")->check(CLI::NonNegativeNumber);
    app.add_option("--interval", options.interval, "Seconds between reports")->check(CLI::NonNegativeNumber);
  }
  if (set.duration)
    app.add_option(option_names(set, 'd', "duration"), options.duration, "Stop after this many seconds")
        ->check(CLI::NonNegativeNumber);
  if (set.timestamps) app.add_flag(option_names(set, 'T', "timestamp"), options.timestamps, "Include a TIME column");
  app.add_flag("--json", options.json, "Print JSON lines (one object per event or report)");
  if (set.user_stacks)
    app.add_option("--stack-mode", options.stack_mode,
                   "How user stacks are walked: dwarf (call-frame information, through code built without "
                   "frame pointers; the default) or fp (frame pointers only)")
        ->check(CLI::IsMember({"dwarf", "fp"}));
  if (set.user_stacks)
    app.add_option("--stack-depth", options.stack_depth,
                   "Frames a user stack is followed through before it is cut and marked [truncated] (dwarf mode)")
        ->check(CLI::Range(1, 127));
  if (set.folded)
    app.add_flag("--folded", options.folded, "Print folded stacks (flamegraph.pl / speedscope input)");
  if (set.folded)
    app.add_option("--pprof", options.pprof_path,
                   "Also write each stack report to this file as a gzipped pprof profile (go tool pprof); "
                   "the last report replaces the previous one");
  app.add_flag(option_names(set, 'v', "verbose"), options.verbose, "Show the hook chosen for each event and more");
  app.add_option("--probe", options.probe_mode,
                 "Force hook kinds: fentry, kprobe, tp_btf, raw_tp, tracepoint, or tp (any tracepoint); "
                 "a comma list (e.g. kprobe,tracepoint) allows several");
}

void validate_common_options(const CommonOptions& options) {
  if (options.json && options.folded) throw FatalError("--json and --folded exclude each other");
  if (!options.pprof_path.empty()) {
    // Fail before tracing starts, not at the first report.
    int fd = open(options.pprof_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) throw FatalError(fmt::format("--pprof {}: {}", options.pprof_path, strerror(errno)));
    close(fd);
  }
  if (options.pid < 0) throw FatalError(fmt::format("invalid PID {}", options.pid));
  if (options.pid > 0 && kill(options.pid, 0) != 0 && errno == ESRCH)
    throw FatalError(fmt::format("no process with PID {}", options.pid));
  if (options.tid > 0) {
    struct stat st;
    if (stat(fmt::format("/proc/{}", options.tid).c_str(), &st) != 0)
      throw FatalError(fmt::format("no thread with TID {}", options.tid));
  }
  if (!options.cgroup.empty()) {
    struct stat st;
    if (stat(options.cgroup.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      throw FatalError(fmt::format("cgroup {} is not a directory", options.cgroup));
  }
  if (options.comm.size() > 15)
    throw FatalError(fmt::format("--comm {}: the kernel keeps at most 15 characters of a command name", options.comm));
}

}  // namespace memscope
