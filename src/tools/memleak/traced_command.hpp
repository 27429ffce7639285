// memleak -c: the command runs as a ptraced child of memscope, from before its first instruction
// to after its atexit handlers.
//
// fork; the child asks to be traced (PTRACE_TRACEME) and execs the command, which stops it right
// after exec, before the dynamic loader ran: memleak attaches its uprobes there, so even a program
// that lives for a few milliseconds is traced from its first allocation. Every thread is traced
// (PTRACE_O_TRACECLONE) so that
//   * whichever thread ends the process (exit() on any thread, a fatal signal) stops at
//     PTRACE_EVENT_EXIT, after atexit handlers, with the memory intact: the final report and the
//     leak scan happen there, then the process is let go;
//   * a leak scan of the running command can hold every thread in ptrace-stop.
// Signals the command receives are passed on unchanged; job-control stops are not honoured (a
// traced program keeps running after SIGTSTP). PTRACE_O_EXITKILL kills the command if memscope dies.
#pragma once

#include <sys/types.h>

#include <functional>
#include <set>
#include <string>
#include <vector>

namespace memscope::memleak {

class TracedCommand {
 public:
  // Starts `executable` with `argv` (argv[0] as the user typed it) and returns once it is stopped
  // right after exec. Throws FatalError when it cannot be executed. A non-empty `environment`
  // replaces memscope's own (memleak --sample-bytes preloads its sampler library).
  TracedCommand(const std::string& executable, const std::vector<std::string>& argv,
                const std::vector<std::string>& environment = {});
  ~TracedCommand();  // kills and reaps the command if it is still there
  TracedCommand(const TracedCommand&) = delete;
  TracedCommand& operator=(const TracedCommand&) = delete;

  pid_t pid() const { return pid_; }
  // Readable when a traced thread changed state (a signalfd for SIGCHLD).
  int notification_fd() const { return signal_fd_; }
  // Lets the command run from its post-exec stop.
  void start();
  // Handles every pending state change of the command's threads. True once a thread is stopped at
  // the process's exit (memory intact) or the command is gone.
  bool handle_events();
  bool at_exit_stop() const { return exit_stop_tid_ != 0; }
  bool gone() const { return gone_; }
  // Called after the command exec()s another program (its allocations are void).
  std::function<void()> on_exec;
  // Asked for each SIGSTOP the command receives: true when it was the stack unwinder's (a stop
  // while the tables of newly loaded libraries load), which is then suppressed.
  std::function<bool(pid_t tid)> on_unwinder_stop;

  // Holds every thread in ptrace-stop for a scan and returns their tids; at the exit stop, the
  // exiting thread (the others are being killed). Empty when the command is gone or does not stop
  // within a second.
  std::vector<pid_t> hold();
  // Resumes what hold() stopped; nothing at the exit stop.
  void release();
  // Lets the command finish exiting (or kills it when it is not exiting) and reaps it.
  void finish();
  // Exit status as waitpid reported it, once gone().
  int wait_status() const { return wait_status_; }

 private:
  enum class Context { Running, Holding, Finishing };
  void handle_status(pid_t tid, int status, Context context);
  bool other_threads_live(pid_t exiting_tid) const;
  void resume(pid_t tid, int signal);
  void drain_signal_fd();

  pid_t pid_ = -1;
  int signal_fd_ = -1;
  bool gone_ = false;
  int wait_status_ = 0;
  pid_t exit_stop_tid_ = 0;
  std::set<pid_t> threads_;
  std::set<pid_t> new_threads_;  // attached by PTRACE_O_TRACECLONE, initial SIGSTOP not yet seen
  std::set<pid_t> held_;
};

}  // namespace memscope::memleak
