// Holds every thread of a process in ptrace-stop for the duration of a scan, and lets it go again on
// every path (RAII): a process must never be left stopped by a failed scan.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/result.hpp"

namespace memscope::memleak {

// The registers a conservative scan treats as roots, and the two it navigates by.
struct ThreadRegisters {
  pid_t tid = 0;
  std::vector<uint64_t> words;  // the general-purpose registers
  uint64_t stack_pointer = 0;
  uint64_t thread_pointer = 0;  // fs_base on x86-64, TPIDR_EL0 on aarch64
};

// Reads the registers of a thread this process holds in ptrace-stop. On error errno is ptrace's.
Result<ThreadRegisters> read_thread_registers(pid_t tid);

// The pid of the process tracing pid (TracerPid in /proc/PID/status), 0 when none, or an error
// when pid does not exist.
Result<pid_t> tracer_of(pid_t pid);

// Detaches threads an earlier stop could not (they were in uninterruptible sleep until after the
// scan) once they have stopped; returns how many still wait. Non-blocking.
size_t detach_lingering_threads();

class ProcessStopper {
 public:
  // PTRACE_SEIZE + PTRACE_INTERRUPT on every thread listed in /proc/PID/task, listing again until a
  // pass finds no thread it has not stopped (a running thread may have created one meanwhile).
  // Threads that exit meanwhile are dropped. On error, whatever was stopped is resumed. All threads
  // together get `max_wait` to stop (they are waited for at once, not one after the other): a
  // thread in uninterruptible sleep (D) fails the stop after that, not after a wait per thread.
  static Result<ProcessStopper> stop(pid_t pid,
                                     std::chrono::milliseconds max_wait = std::chrono::milliseconds(2000));

  ProcessStopper(ProcessStopper&& other) noexcept;
  ProcessStopper& operator=(ProcessStopper&&) = delete;
  ProcessStopper(const ProcessStopper&) = delete;
  ~ProcessStopper();

  pid_t pid() const { return pid_; }
  const std::vector<pid_t>& threads() const { return stopped_; }
  std::chrono::steady_clock::time_point first_interrupt() const { return first_interrupt_; }

  // PTRACE_DETACH every thread, re-delivering a signal that arrived while it was stopped. Idempotent.
  void resume();

 private:
  explicit ProcessStopper(pid_t pid) : pid_(pid) {}
  struct Attached {
    pid_t tid;
    bool stopped = false;
    bool exited = false;
    int pending_signal = 0;  // a signal-delivery-stop we took, to re-inject on detach
  };
  Result<bool> attach_new_threads();  // true when it found threads it had not seen
  // Waits for every thread of `indices` at once, until deadline_; an error names one that did not stop.
  Result<bool> wait_for_stops(const std::vector<size_t>& indices);

  pid_t pid_ = 0;
  std::vector<Attached> attached_;
  std::vector<pid_t> unattachable_;  // zombies and threads gone before PTRACE_SEIZE
  std::vector<pid_t> stopped_;
  std::chrono::steady_clock::time_point first_interrupt_{};
  std::chrono::steady_clock::time_point deadline_{};
  bool released_ = false;
};

}  // namespace memscope::memleak
