// The HTTP(S) side of `memscope serve` (cpp-httplib): a bounded pool of worker threads, request
// size and time limits, TLS and basic auth from the web config. Its threads block every signal
// (the event loop owns them through a signalfd) and never touch BPF maps or the symbolizer: they
// read what the main thread rendered or ask it for a profile (MainThreadCalls).
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "serve_config.hpp"

namespace memscope::serve {

// Work the HTTP threads hand to the main thread (which owns the maps and the symbolizer): an
// eventfd the event loop polls, and a queue of calls.
class MainThreadCalls {
 public:
  MainThreadCalls();
  ~MainThreadCalls();
  int fd() const { return event_fd_; }
  // From any thread: nullopt when the main thread did not answer within `timeout` or has stopped.
  std::optional<std::string> call(std::function<std::string()> work, std::chrono::milliseconds timeout);
  // On the main thread, when fd() is readable.
  void run_pending();
  // No more calls are accepted; pending ones are answered with nothing.
  void close();

 private:
  int event_fd_ = -1;
  std::mutex mutex_;
  bool closed_ = false;
  std::deque<std::shared_ptr<std::packaged_task<std::string()>>> pending_;
};

struct HttpHandlers {
  std::function<std::string()> metrics;           // the last rendered exposition
  std::function<std::optional<std::string>()> kmem_profile;  // gzipped pprof; nullopt: not collected / busy
  // Gzipped pprof of a profiled process; nullopt with `why_not` (not profiled, busy).
  std::function<std::optional<std::string>(int pid, std::string& why_not)> heap_profile;
  std::function<void(const std::string& handler, int status)> count_request;
};

class HttpEndpoint {
 public:
  HttpEndpoint(const ServeConfig& config, const WebConfig& web, HttpHandlers handlers);
  ~HttpEndpoint();
  // Binds (throws FatalError when it cannot) and starts serving on a thread of its own. Returns the
  // port (the one chosen when `port` is 0).
  int start(const std::string& host, int port);
  void stop();
  bool tls() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// RFC 4648 base64, for the Authorization header; nullopt when malformed.
std::optional<std::string> decode_base64(const std::string& text);

}  // namespace memscope::serve
