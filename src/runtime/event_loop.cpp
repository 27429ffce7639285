#include "runtime/event_loop.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "runtime/log.hpp"
#include "runtime/result.hpp"

namespace memscope {
namespace {

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

}  // namespace

std::string describe(StopReason reason) {
  switch (reason) {
    case StopReason::Signal: return "signal";
    case StopReason::Duration: return "duration elapsed";
    case StopReason::Count: return "report count reached";
    case StopReason::ProcessExited: return "traced process exited";
  }
  return "?";
}

EventLoop::EventLoop(const CommonOptions& options) : options_(options) {
  sigset_t set = stop_signals();
  // A non-interactive shell starts background jobs with SIGINT ignored, and an ignored signal is
  // discarded before signalfd can see it: restore the default so `memscope … & kill -INT` works.
  for (int signo : {SIGINT, SIGTERM, SIGHUP}) signal(signo, SIG_DFL);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  signal_fd_ = signalfd(-1, &set, SFD_CLOEXEC);
  if (signal_fd_ < 0) throw FatalError(fmt::format("signalfd: {}", strerror(errno)));
  if (options.pid > 0) watch_process(options.pid);
}

EventLoop::~EventLoop() {
  if (signal_fd_ >= 0) close(signal_fd_);
  if (process_fd_ >= 0) close(process_fd_);
}

void EventLoop::unblock_signals_in_child() {
  sigset_t set = stop_signals();
  sigprocmask(SIG_UNBLOCK, &set, nullptr);
}

void EventLoop::watch_process(pid_t pid) {
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) {
    if (errno == ESRCH) throw FatalError(fmt::format("no process with PID {}", pid));
    log::warning("cannot watch PID {} for exit: {}", pid, strerror(errno));
    return;
  }
  if (process_fd_ >= 0) close(process_fd_);
  process_fd_ = fd;
}

void EventLoop::watch_fd(int fd, std::function<bool()> on_ready) {
  watched_fds_.emplace_back(fd, std::move(on_ready));
}

void EventLoop::drain() {
  for (auto* reader : readers_)
    while (reader->consume() >= RingBufferReader::kConsumeBudget) {
    }
}

void EventLoop::consume_available() {
  for (auto* reader : readers_) reader->consume();
}

StopReason EventLoop::run(const std::function<void()>& on_interval) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto interval = std::chrono::duration<double>(options_.interval);
  auto next_interval = start + std::chrono::duration_cast<Clock::duration>(interval);
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options_.duration));
  int reports = 0;

  std::vector<pollfd> fds;
  fds.push_back({signal_fd_, POLLIN, 0});
  if (process_fd_ >= 0) fds.push_back({process_fd_, POLLIN, 0});
  const size_t first_reader = fds.size();
  for (auto* reader : readers_) fds.push_back({reader->epoll_fd(), POLLIN, 0});
  const size_t first_watched = fds.size();
  for (const auto& watched : watched_fds_) fds.push_back({watched.first, POLLIN, 0});

  for (;;) {
    auto now = Clock::now();
    if (options_.duration > 0 && now >= deadline) return StopReason::Duration;
    if (options_.interval > 0 && now >= next_interval) {
      consume_available();
      if (on_interval) on_interval();
      reports++;
      if (options_.count > 0 && reports >= options_.count) return StopReason::Count;
      next_interval += std::chrono::duration_cast<Clock::duration>(interval);
      continue;
    }
    auto wake = now + std::chrono::milliseconds(200);
    if (options_.duration > 0 && deadline < wake) wake = deadline;
    if (options_.interval > 0 && next_interval < wake) wake = next_interval;
    int timeout_ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count());
    int ready = poll(fds.data(), fds.size(), timeout_ms < 0 ? 0 : timeout_ms);
    if (ready < 0 && errno != EINTR) throw FatalError(fmt::format("poll: {}", strerror(errno)));
    if (ready <= 0) continue;
    for (size_t i = first_reader; i < first_watched; i++)
      if (fds[i].revents) readers_[i - first_reader]->consume();
    for (size_t i = first_watched; i < fds.size(); i++) {
      if (fds[i].revents && watched_fds_[i - first_watched].second()) {
        consume_available();
        return StopReason::ProcessExited;
      }
    }
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo info;
      (void)!read(signal_fd_, &info, sizeof(info));
      consume_available();
      return StopReason::Signal;
    }
    if (process_fd_ >= 0 && (fds[1].revents & POLLIN)) {
      consume_available();
      return StopReason::ProcessExited;
    }
  }
}

}  // namespace memscope
