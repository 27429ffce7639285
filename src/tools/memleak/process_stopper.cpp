#include "tools/memleak/process_stopper.hpp"

#include <dirent.h>
#include <elf.h>
#include <fmt/core.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <thread>

namespace memscope::memleak {
namespace {

// A thread that does not reach ptrace-stop within this time is in an uninterruptible sleep (state D).

std::string status_path(pid_t pid, pid_t tid) {
  return tid == 0 ? fmt::format("/proc/{}/status", pid) : fmt::format("/proc/{}/task/{}/status", pid, tid);
}

// "State:" and "TracerPid:" of /proc/PID[/task/TID]/status; false when the task is gone.
bool read_status(const std::string& path, char& state, pid_t& tracer) {
  std::ifstream status(path);
  if (!status) return false;
  std::string line;
  state = '?';
  tracer = 0;
  while (std::getline(status, line)) {
    if (line.starts_with("State:")) {
      size_t at = line.find_first_not_of(" \t", 6);
      if (at != std::string::npos) state = line[at];
    } else if (line.starts_with("TracerPid:")) {
      tracer = static_cast<pid_t>(std::strtol(line.c_str() + 10, nullptr, 10));
    }
  }
  return true;
}

std::string already_traced(pid_t pid, pid_t tracer) {
  return fmt::format("PID {} is already traced by PID {}", pid, tracer);
}

// The thread ids of pid; empty when the process is gone.
std::vector<pid_t> list_threads(pid_t pid) {
  std::vector<pid_t> tids;
  DIR* dir = opendir(fmt::format("/proc/{}/task", pid).c_str());
  if (dir == nullptr) return tids;
  while (dirent* entry = readdir(dir)) {
    char* end = nullptr;
    long tid = std::strtol(entry->d_name, &end, 10);
    if (end != entry->d_name && *end == '\0' && tid > 0) tids.push_back(static_cast<pid_t>(tid));
  }
  closedir(dir);
  return tids;
}

}  // namespace

Result<pid_t> tracer_of(pid_t pid) {
  char state;
  pid_t tracer;
  if (!read_status(status_path(pid, 0), state, tracer))
    return Error{errno == ENOENT || errno == ESRCH ? fmt::format("no process with PID {}", pid)
                                                   : fmt::format("cannot read {}: {}", status_path(pid, 0), std::strerror(errno))};
  return tracer;
}

Result<ThreadRegisters> read_thread_registers(pid_t tid) {
  ThreadRegisters result;
  result.tid = tid;
  user_regs_struct regs{};
  iovec vec{&regs, sizeof regs};
  if (ptrace(PTRACE_GETREGSET, tid, reinterpret_cast<void*>(NT_PRSTATUS), &vec) != 0) {
    int error = errno;
    Error failure{fmt::format("cannot read the registers of thread {}: {}", tid, std::strerror(error))};
    errno = error;  // callers tell a thread that is gone (ESRCH) from a real failure
    return failure;
  }
  // General-purpose registers only, as LeakSanitizer and memcheck do. The vector registers are all
  // caller-saved, so no live pointer stays in one across a call (a thread blocked in a syscall is at
  // a call); what they do hold is stale data from string functions, which kept leaked blocks
  // "reachable". A pointer in flight through one mid-copy is still at the copy's source.
  static_assert(sizeof regs % sizeof(uint64_t) == 0);
  result.words.resize(sizeof regs / sizeof(uint64_t));
  std::memcpy(result.words.data(), &regs, sizeof regs);
#if defined(__x86_64__)
  result.stack_pointer = regs.rsp;
  result.thread_pointer = regs.fs_base;
#elif defined(__aarch64__)
  result.stack_pointer = regs.sp;
  uint64_t tpidr = 0;
  iovec tlsvec{&tpidr, sizeof tpidr};
  if (ptrace(PTRACE_GETREGSET, tid, reinterpret_cast<void*>(NT_ARM_TLS), &tlsvec) == 0)
    result.thread_pointer = tpidr;
#else
#error "heap scanner: registers of this architecture are not described"
#endif
  return result;
}

Result<ProcessStopper> ProcessStopper::stop(pid_t pid, std::chrono::milliseconds max_wait) {
  if (pid == getpid()) return Error{"cannot scan memscope's own process"};
  Result<pid_t> tracer = tracer_of(pid);
  if (!tracer) return tracer.error();
  if (*tracer != 0) return Error{already_traced(pid, *tracer)};

  detach_lingering_threads();
  ProcessStopper stopper(pid);
  stopper.first_interrupt_ = std::chrono::steady_clock::now();
  stopper.deadline_ = stopper.first_interrupt_ + max_wait;
  // Every pass stops the threads it sees; a thread still running during a pass may have cloned one
  // more, which the next pass finds. When a pass finds none, all threads are stopped and none can
  // clone: the set is complete. The bound only guards against a pathological thread storm.
  for (int pass = 0;; ++pass) {
    Result<bool> found_new = stopper.attach_new_threads();
    if (!found_new) return found_new.error();  // the destructor resumes what was stopped
    if (!*found_new) break;
    if (pass == 10000)
      return Error{fmt::format("PID {} creates threads faster than they can be stopped", pid)};
  }
  if (stopper.stopped_.empty()) return Error{fmt::format("PID {} exited before it could be stopped", pid)};
  return Result<ProcessStopper>(std::move(stopper));
}

Result<bool> ProcessStopper::attach_new_threads() {
  std::vector<pid_t> tids = list_threads(pid_);
  if (tids.empty()) return Error{fmt::format("PID {} exited before it could be stopped", pid_)};
  std::vector<size_t> interrupted;
  bool found_new = false;
  for (pid_t tid : tids) {
    bool seen =
        std::any_of(attached_.begin(), attached_.end(), [&](const Attached& a) { return a.tid == tid; }) ||
        std::find(unattachable_.begin(), unattachable_.end(), tid) != unattachable_.end();
    if (seen) continue;
    found_new = true;
    if (ptrace(PTRACE_SEIZE, tid, nullptr, nullptr) != 0) {
      int error = errno;
      char state;
      pid_t tracer;
      bool alive = read_status(status_path(pid_, tid), state, tracer);
      // Gone, or a zombie (a leader that called pthread_exit stays listed while the others run).
      if (error == ESRCH || !alive || state == 'Z' || state == 'X') {
        unattachable_.push_back(tid);
        continue;
      }
      if (tracer != 0) return Error{already_traced(pid_, tracer)};
      return Error{fmt::format("cannot stop thread {} of PID {}: ptrace(PTRACE_SEIZE): {}", tid, pid_,
                               std::strerror(error))};
    }
    attached_.push_back({tid});
    // Fails only with ESRCH, when it died between the two calls: wait_for_stop() then sees the exit.
    (void)ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr);
    interrupted.push_back(attached_.size() - 1);
  }
  Result<bool> waited = wait_for_stops(interrupted);
  if (!waited) return waited.error();
  return found_new;
}

Result<bool> ProcessStopper::wait_for_stops(const std::vector<size_t>& indices) {
  std::vector<size_t> pending = indices;
  auto delay = std::chrono::microseconds(20);
  while (!pending.empty()) {
    std::vector<size_t> still;
    for (size_t index : pending) {
      Attached& thread = attached_[index];
      int status = 0;
      pid_t waited = waitpid(thread.tid, &status, __WALL | WNOHANG);
      if (waited == thread.tid) {
        if (WIFSTOPPED(status)) {
          if ((status >> 16) != PTRACE_EVENT_STOP) thread.pending_signal = WSTOPSIG(status);
          thread.stopped = true;
          stopped_.push_back(thread.tid);
        } else {
          thread.exited = true;
        }
      } else if (waited < 0 && errno != EINTR) {
        thread.exited = true;  // ECHILD: gone, and reaped by its parent
      } else {
        still.push_back(index);
      }
    }
    pending.swap(still);
    if (pending.empty()) break;
    if (std::chrono::steady_clock::now() >= deadline_) {
      auto waited_ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - first_interrupt_).count();
      return Error{fmt::format("thread {} of PID {} did not stop within {} ms (uninterruptible sleep?); "
                               "every thread was resumed",
                               attached_[pending.front()].tid, pid_, waited_ms)};
    }
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::microseconds(1000));
  }
  return true;
}

namespace {

// Threads seized but not yet stopped when their scan ended (uninterruptible sleep): PTRACE_DETACH
// needs the stop, which comes when the thread leaves the kernel. They are detached as soon as it
// has come (detach_lingering_threads(), at every stop and every memleak report); the kernel
// detaches them itself if memscope exits first.
struct Lingering {
  pid_t tid;
};
std::vector<Lingering> lingering_threads;

}  // namespace

size_t detach_lingering_threads() {
  std::vector<Lingering> still;
  for (const Lingering& thread : lingering_threads) {
    int status = 0;
    pid_t waited = waitpid(thread.tid, &status, __WALL | WNOHANG);
    if (waited == 0) {
      still.push_back(thread);
      continue;
    }
    if (waited == thread.tid && WIFSTOPPED(status)) {
      int signal = (status >> 16) != PTRACE_EVENT_STOP ? WSTOPSIG(status) : 0;
      ptrace(PTRACE_DETACH, thread.tid, nullptr, reinterpret_cast<void*>(static_cast<long>(signal)));
    }
  }
  lingering_threads.swap(still);
  return lingering_threads.size();
}

void ProcessStopper::resume() {
  if (released_) return;
  released_ = true;
  std::vector<size_t> unstopped;
  for (size_t i = 0; i < attached_.size(); i++) {
    Attached& thread = attached_[i];
    if (thread.exited) continue;
    if (ptrace(PTRACE_DETACH, thread.tid, nullptr,
               reinterpret_cast<void*>(static_cast<long>(thread.pending_signal))) == 0)
      continue;
    if (errno != ESRCH) continue;
    if (thread.stopped) {
      // Stopped, then killed (SIGKILL ends a ptrace stop): an exiting thread or a zombie that only
      // its tracer can reap, and until it does, the process never counts as exited (pidfd) and its
      // parent cannot reap it. detach_lingering_threads() waits for it.
      lingering_threads.push_back({thread.tid});
      continue;
    }
    unstopped.push_back(i);
  }
  if (unstopped.empty()) return;
  // Seized, but its interrupt has not been reported yet: PTRACE_DETACH needs the stop. Wait a
  // little for all of them at once; a thread still in the kernel after that is detached later.
  stopped_.clear();
  deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  (void)wait_for_stops(unstopped);
  for (size_t i : unstopped) {
    Attached& thread = attached_[i];
    if (thread.exited) continue;
    if (thread.stopped)
      ptrace(PTRACE_DETACH, thread.tid, nullptr, reinterpret_cast<void*>(static_cast<long>(thread.pending_signal)));
    else
      lingering_threads.push_back({thread.tid});
  }
}

ProcessStopper::ProcessStopper(ProcessStopper&& other) noexcept
    : pid_(other.pid_),
      attached_(std::move(other.attached_)),
      unattachable_(std::move(other.unattachable_)),
      stopped_(std::move(other.stopped_)),
      first_interrupt_(other.first_interrupt_),
      released_(other.released_) {
  other.released_ = true;
}

ProcessStopper::~ProcessStopper() { resume(); }

}  // namespace memscope::memleak
