#include "runtime/options.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <cstdlib>
#include <fmt/format.h>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>

#include "runtime/result.hpp"

namespace memscope {
namespace {

std::string option_names(const CommonOptionSet& set, char letter, const std::string& long_name) {
  if (set.reserved_letters.count(letter)) return "--" + long_name;
  return fmt::format("-{},--{}", letter, long_name);
}

// How messages name a common option: its letter unless the tool keeps the letter for itself.
std::string option_name(const CommonOptionSet& set, char letter, const std::string& long_name) {
  if (set.reserved_letters.count(letter)) return "--" + long_name;
  return fmt::format("-{}", letter);
}

// What /proc says of a task (a process or one of its threads); nullopt when it is gone.
struct TaskIdentity {
  int tgid = 0;
  bool kernel_thread = false;
  std::string comm;
};

std::optional<TaskIdentity> task_identity(int id) {
  TaskIdentity task;
  std::ifstream status(fmt::format("/proc/{}/status", id));
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("Name:\t")) task.comm = line.substr(6);
    if (line.starts_with("Tgid:\t")) task.tgid = std::atoi(line.c_str() + 6);
  }
  if (task.tgid == 0) return std::nullopt;
  // The flags are the 9th field of /proc/PID/stat, the 7th after the command name's ')'.
  std::ifstream stat_file(fmt::format("/proc/{}/stat", id));
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  size_t comm_end = stat.rfind(')');
  if (comm_end == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(comm_end + 1));
  std::string field;
  for (int i = 0; i < 7 && fields >> field; i++) {
  }
  constexpr unsigned long kPfKthread = 0x00200000;  // include/linux/sched.h
  task.kernel_thread = (std::strtoul(field.c_str(), nullptr, 10) & kPfKthread) != 0;
  return task;
}

// -p of a thread that does not lead its process, and -p/-t of a kernel thread where the tool sees only
// user memory, trace nothing: say why instead.
void validate_target_task(char letter, int id, const CommonOptionSet& set) {
  std::optional<TaskIdentity> task = task_identity(id);
  if (!task) return;
  std::string pid_option = option_name(set, 'p', "pid"), tid_option = option_name(set, 't', "tid");
  std::string option = letter == 'p' ? pid_option : tid_option;
  if (letter == 'p' && task->tgid != id) {
    std::optional<TaskIdentity> process = task_identity(task->tgid);
    throw FatalError(fmt::format("{0} {1}: {1} is a thread of process {2} ({3}); {4}{0} {2} traces the whole process",
                                 pid_option, id, task->tgid, process ? process->comm : task->comm,
                                 set.tid ? fmt::format("{} {} traces the thread, ", tid_option, id) : ""));
  }
  if (task->kernel_thread && !set.kernel_threads)
    throw FatalError(
        fmt::format("{} {}: {} is a kernel thread ({}), which has no user memory to trace", option, id, id, task->comm));
}

// `help_name` keeps the word --help showed with CLI11's checks.
CLI::Validator number_check(const char* help_name, const char* range, bool (*accepted)(double)) {
  return CLI::Validator(
      [range, accepted](std::string& input) -> std::string {
        double value = 0;
        if (CLI::detail::lexical_cast(input, value) && accepted(value)) return "";
        return fmt::format("must be a number {}, not {}", range, input);
      },
      help_name);
}

}  // namespace

CLI::Validator positive_number() {
  return number_check("POSITIVE", "greater than 0", [](double value) { return value > 0; });
}

CLI::Validator non_negative_number() {
  return number_check("NONNEGATIVE", "of 0 or more", [](double value) { return value >= 0; });
}

void add_common_options(CLI::App& app, CommonOptions& options, const CommonOptionSet& set) {
  if (set.pid) app.add_option(option_names(set, 'p', "pid"), options.pid, "Trace this process only (in-kernel filter)");
  if (set.tid) app.add_option(option_names(set, 't', "tid"), options.tid, "Trace this thread only (in-kernel filter)");
  if (set.comm) app.add_option("--comm", options.comm, "Trace tasks with this command name only");
  if (set.cgroup) app.add_option("--cgroup", options.cgroup, "Trace tasks in this cgroup v2 directory only");
  if (set.uid) app.add_option(option_names(set, 'u', "uid"), options.uid, "Trace this user ID only");
  if (set.interval) {
    options.interval = set.default_interval;
    // An interval of 0 would report without pause, forever.
    app.add_option("interval", options.interval, "Seconds between reports")->check(positive_number());
    app.add_option("count", options.count, "Number of reports, then exit (0: no limit)")->check(non_negative_number());
    app.add_option("--interval", options.interval, "Seconds between reports")->check(positive_number());
  }
  if (set.duration)
    app.add_option(option_names(set, 'd', "duration"), options.duration, "Stop after this many seconds")
        ->check(non_negative_number());
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

void validate_common_options(const CommonOptions& options, const CommonOptionSet& set) {
  if (options.json && options.folded) throw FatalError("--json and --folded exclude each other");
  if (!options.pprof_path.empty()) {
    // Fail before tracing starts, not at the first report; without creating anything at the path, which
    // may be a symlink someone planted (the profile replaces the path itself by rename).
    std::string directory = options.pprof_path;
    size_t slash = directory.rfind('/');
    directory = slash == std::string::npos ? "." : slash == 0 ? "/" : directory.substr(0, slash);
    struct stat target;
    if (lstat(options.pprof_path.c_str(), &target) == 0 && S_ISDIR(target.st_mode))
      throw FatalError(fmt::format("--pprof {}: a directory", options.pprof_path));
    int fd = open(directory.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR)) fd = open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw FatalError(fmt::format("--pprof {}: cannot write in {}: {}", options.pprof_path, directory, strerror(errno)));
    close(fd);
  }
  if (options.pid < 0) throw FatalError(fmt::format("invalid PID {}", options.pid));
  if (options.pid > 0 && kill(options.pid, 0) != 0 && errno == ESRCH)
    throw FatalError(fmt::format("no process with PID {}", options.pid));
  if (options.tid > 0) {
    struct stat st;
    if (stat(fmt::format("/proc/{}", options.tid).c_str(), &st) != 0)
      throw FatalError(fmt::format("no thread with TID {}", options.tid));
    validate_target_task('t', options.tid, set);
  }
  if (options.pid > 0) validate_target_task('p', options.pid, set);
  if (!options.cgroup.empty()) {
    struct stat st;
    if (stat(options.cgroup.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      throw FatalError(fmt::format("cgroup {} is not a directory", options.cgroup));
  }
  if (options.comm.size() > 15)
    throw FatalError(fmt::format("--comm {}: the kernel keeps at most 15 characters of a command name", options.comm));
}

}  // namespace memscope
