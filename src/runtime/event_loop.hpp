// The one loop every tool runs: ring buffer records, intervals, a duration, Ctrl-C/SIGTERM and the
// traced process exiting all end up here, so every tool detaches and reports the same way.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/options.hpp"
#include "runtime/ring_buffer_reader.hpp"

namespace memscope {

enum class StopReason { Signal, Duration, Count, ProcessExited };
std::string describe(StopReason reason);

class EventLoop {
 public:
  explicit EventLoop(const CommonOptions& options);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  void add(RingBufferReader& reader) { readers_.push_back(&reader); }
  // Stop when this process exits (the -p target, or a child started with -c).
  void watch_process(pid_t pid);
  // Also polls `fd`: when it is readable, on_ready runs, and the loop stops with
  // StopReason::ProcessExited when it returns true (e.g. a signalfd for SIGCHLD of a ptraced child).
  void watch_fd(int fd, std::function<bool()> on_ready);
  // Runs until a stop condition; calls on_interval at each interval boundary (if interval > 0)
  // and on_tick about every tick_ms for tools that poll maps.
  StopReason run(const std::function<void()>& on_interval);
  // Drains what is left in the ring buffers after detaching (nothing new arrives then).
  void drain();

  // SIGINT/SIGTERM are blocked and read from a signalfd; children must unblock them.
  static void unblock_signals_in_child();

 private:
  // One budgeted pass over the ring buffers (RingBufferReader::kConsumeBudget records each): while
  // programs are attached, a producer may never let them run empty.
  void consume_available();
  CommonOptions options_;
  std::vector<RingBufferReader*> readers_;
  int signal_fd_ = -1;
  int process_fd_ = -1;
  std::vector<std::pair<int, std::function<bool()>>> watched_fds_;
};

}  // namespace memscope
