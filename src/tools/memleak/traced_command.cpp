#include "traced_command.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "runtime/log.hpp"
#include "runtime/result.hpp"

namespace memscope::memleak {
namespace {

constexpr unsigned long kExitingFlag = 0x4;  // PF_EXITING in /proc/TID/stat's flags

// State, flags and the SIGKILL-pending bit of a thread; false when it is gone.
bool thread_exiting_or_gone(pid_t pid, pid_t tid) {
  std::string base = fmt::format("/proc/{}/task/{}/", pid, tid);
  std::ifstream stat_file(base + "stat");
  std::string stat;
  if (!std::getline(stat_file, stat)) return true;
  // "tid (comm) S ppid … flags …": fields after the last ')' — state is the 1st, flags the 7th.
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return true;
  std::istringstream fields(stat.substr(paren + 1));
  std::string state, skip;
  unsigned long flags = 0;
  fields >> state;
  for (int i = 0; i < 5; i++) fields >> skip;
  fields >> flags;
  if (state == "Z" || state == "X" || (flags & kExitingFlag)) return true;
  // A group exit sends SIGKILL to every other thread (zap_other_threads): pending per thread.
  std::ifstream status_file(base + "status");
  std::string line;
  while (std::getline(status_file, line)) {
    if (line.rfind("SigPnd:", 0) != 0) continue;
    unsigned long long pending = std::stoull(line.substr(7), nullptr, 16);
    return pending & (1ULL << (SIGKILL - 1));
  }
  return false;
}

}  // namespace

TracedCommand::TracedCommand(const std::string& executable, const std::vector<std::string>& argv,
                             const std::vector<std::string>& environment) {
  // SIGCHLD is read from a signalfd, blocked from now on so that no state change is missed.
  sigset_t child_signal;
  sigemptyset(&child_signal);
  sigaddset(&child_signal, SIGCHLD);
  sigprocmask(SIG_BLOCK, &child_signal, nullptr);
  signal_fd_ = signalfd(-1, &child_signal, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd_ < 0) throw FatalError(fmt::format("signalfd: {}", strerror(errno)));

  // The child reports a failed exec through this pipe; a successful exec closes it.
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) throw FatalError(fmt::format("pipe: {}", strerror(errno)));
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  std::vector<char*> variables;
  for (const auto& variable : environment) variables.push_back(const_cast<char*>(variable.c_str()));
  variables.push_back(nullptr);
  const char* path = executable.c_str();

  pid_ = fork();
  if (pid_ < 0) throw FatalError(fmt::format("fork: {}", strerror(errno)));
  if (pid_ == 0) {
    close(report[0]);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    int error = 0;
    if (ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) {
      error = errno;
    } else {
      if (environment.empty())
        execv(path, args.data());
      else
        execve(path, args.data(), variables.data());
      error = errno;
    }
    (void)!write(report[1], &error, sizeof(error));
    _exit(127);
  }
  close(report[1]);
  int exec_error = 0;
  ssize_t reported;
  do {
    reported = read(report[0], &exec_error, sizeof(exec_error));
  } while (reported < 0 && errno == EINTR);
  close(report[0]);

  int status = 0;
  while (waitpid(pid_, &status, __WALL) < 0 && errno == EINTR) {
  }
  if (reported == static_cast<ssize_t>(sizeof(exec_error))) {
    gone_ = true;
    throw FatalError(fmt::format("-c: cannot execute {}: {}", executable, strerror(exec_error)));
  }
  if (!WIFSTOPPED(status) || WSTOPSIG(status) != SIGTRAP) {
    if (WIFSTOPPED(status)) kill(pid_, SIGKILL);
    throw FatalError(fmt::format("-c: {} did not stop after exec (wait status {:#x})", executable, status));
  }
  threads_.insert(pid_);
}

TracedCommand::~TracedCommand() {
  try {
    finish();
  } catch (...) {
  }
  if (signal_fd_ >= 0) close(signal_fd_);
}

void TracedCommand::start() {
  long options = PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_TRACEEXIT | PTRACE_O_EXITKILL;
  if (ptrace(PTRACE_SETOPTIONS, pid_, nullptr, reinterpret_cast<void*>(options)) != 0)
    throw FatalError(fmt::format("-c: PTRACE_SETOPTIONS: {}", strerror(errno)));
  resume(pid_, 0);  // the exec SIGTRAP is ours, not the program's
}

void TracedCommand::resume(pid_t tid, int signal) {
  if (ptrace(PTRACE_CONT, tid, nullptr, reinterpret_cast<void*>(static_cast<long>(signal))) != 0 &&
      errno != ESRCH)
    log::verbose("PTRACE_CONT {}: {}", tid, strerror(errno));
}

void TracedCommand::drain_signal_fd() {
  signalfd_siginfo info;
  while (read(signal_fd_, &info, sizeof(info)) == sizeof(info)) {
  }
}

bool TracedCommand::other_threads_live(pid_t exiting_tid) const {
  // A thread stopping at PTRACE_EVENT_EXIT ends the process when the others are being killed by
  // the group exit; after pthread_exit() they live on. A thread that already dequeued its SIGKILL
  // may not show PF_EXITING yet, so a live-looking thread is looked at once more.
  auto live_thread = [&]() {
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(fmt::format("/proc/{}/task", pid_), error)) {
      pid_t tid = static_cast<pid_t>(std::strtol(entry.path().filename().c_str(), nullptr, 10));
      if (tid != exiting_tid && !thread_exiting_or_gone(pid_, tid)) return true;
    }
    return false;
  };
  if (!live_thread()) return false;
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return live_thread();
}

void TracedCommand::handle_status(pid_t tid, int status, Context context) {
  if (WIFEXITED(status) || WIFSIGNALED(status)) {
    threads_.erase(tid);
    new_threads_.erase(tid);
    held_.erase(tid);
    if (tid == pid_) {
      gone_ = true;
      wait_status_ = status;
    }
    return;
  }
  if (!WIFSTOPPED(status)) return;
  if (!threads_.count(tid)) {
    // A thread attached by PTRACE_O_TRACECLONE can report before its creator's clone event.
    if (!std::filesystem::exists(fmt::format("/proc/{}/task/{}", pid_, tid))) return;
    threads_.insert(tid);
    new_threads_.insert(tid);
  }
  int signal = WSTOPSIG(status);
  switch (status >> 16) {
    case PTRACE_EVENT_CLONE: {
      unsigned long new_tid = 0;
      if (ptrace(PTRACE_GETEVENTMSG, tid, nullptr, &new_tid) == 0 &&
          !threads_.count(static_cast<pid_t>(new_tid))) {
        threads_.insert(static_cast<pid_t>(new_tid));
        new_threads_.insert(static_cast<pid_t>(new_tid));
      }
      resume(tid, 0);
      return;
    }
    case PTRACE_EVENT_EXEC:
      // execve() from any thread leaves one thread with the process id.
      threads_ = {tid};
      new_threads_.clear();
      held_.clear();
      if (on_exec) on_exec();
      resume(tid, 0);
      return;
    case PTRACE_EVENT_EXIT:
      if (context != Context::Finishing && !other_threads_live(tid)) {
        exit_stop_tid_ = tid;
        held_.erase(tid);
        return;
      }
      resume(tid, 0);
      return;
    default:
      break;
  }
  if (context == Context::Finishing) {
    resume(tid, 0);
    return;
  }
  if (signal == SIGSTOP && new_threads_.count(tid)) {
    // The stop every auto-attached thread starts with.
    new_threads_.erase(tid);
    if (context == Context::Holding)
      held_.insert(tid);
    else
      resume(tid, 0);
    return;
  }
  if (signal == SIGSTOP && on_unwinder_stop && on_unwinder_stop(tid)) {
    resume(tid, 0);
    return;
  }
  siginfo_t info{};
  if (ptrace(PTRACE_GETSIGINFO, tid, nullptr, &info) != 0) {
    // No siginfo: a group-stop (SIGSTOP/SIGTSTP delivered earlier). Job control is not honoured.
    resume(tid, 0);
    return;
  }
  if (signal == SIGSTOP && info.si_code == SI_TKILL && info.si_pid == getpid()) {
    // Our own stop request (hold()); when it arrives late, it is simply dropped.
    if (context == Context::Holding)
      held_.insert(tid);
    else
      resume(tid, 0);
    return;
  }
  resume(tid, signal);
}

bool TracedCommand::handle_events() {
  drain_signal_fd();
  for (;;) {
    int status = 0;
    pid_t tid = waitpid(-1, &status, __WALL | WNOHANG);
    if (tid <= 0) {
      if (tid < 0 && errno == ECHILD) gone_ = true;
      break;
    }
    handle_status(tid, status, Context::Running);
  }
  return at_exit_stop() || gone_;
}

std::vector<pid_t> TracedCommand::hold() {
  if (gone_) return {};
  if (exit_stop_tid_) return {exit_stop_tid_};
  held_.clear();
  for (pid_t tid : threads_)
    if (!new_threads_.count(tid)) syscall(SYS_tgkill, pid_, tid, SIGSTOP);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  for (;;) {
    bool everyone = true;
    for (pid_t tid : threads_)
      if (!held_.count(tid)) everyone = false;
    if (everyone || gone_ || exit_stop_tid_) break;
    int status = 0;
    pid_t tid = waitpid(-1, &status, __WALL | WNOHANG);
    if (tid > 0) {
      handle_status(tid, status, Context::Holding);
      continue;
    }
    if (tid < 0 && errno == ECHILD) {
      gone_ = true;
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      log::warning("PID {}: not every thread stopped within a second; no leak scan this time", pid_);
      release();
      return {};
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  if (gone_) return {};
  if (exit_stop_tid_) return {exit_stop_tid_};
  return std::vector<pid_t>(held_.begin(), held_.end());
}

void TracedCommand::release() {
  for (pid_t tid : held_) resume(tid, 0);
  held_.clear();
}

void TracedCommand::finish() {
  if (gone_ || pid_ <= 0) return;
  if (exit_stop_tid_) {
    resume(exit_stop_tid_, 0);
    release();
  } else {
    kill(pid_, SIGKILL);
  }
  while (!gone_) {
    int status = 0;
    pid_t tid = waitpid(-1, &status, __WALL);
    if (tid < 0) {
      if (errno == EINTR) continue;
      gone_ = true;
      break;
    }
    handle_status(tid, status, Context::Finishing);
  }
}

}  // namespace memscope::memleak
