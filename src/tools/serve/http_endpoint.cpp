#include "http_endpoint.hpp"

#include <fmt/format.h>
#include <httplib.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <set>
#include <thread>

#include "runtime/result.hpp"

namespace memscope::serve {

MainThreadCalls::MainThreadCalls() {
  event_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (event_fd_ < 0) throw FatalError(fmt::format("eventfd: {}", strerror(errno)));
}

MainThreadCalls::~MainThreadCalls() {
  close();
  if (event_fd_ >= 0) ::close(event_fd_);
}

std::optional<std::string> MainThreadCalls::call(std::function<std::string()> work, std::chrono::milliseconds timeout) {
  auto task = std::make_shared<std::packaged_task<std::string()>>(std::move(work));
  std::future<std::string> result = task->get_future();
  {
    std::lock_guard lock(mutex_);
    if (closed_) return std::nullopt;
    pending_.push_back(task);
  }
  uint64_t one = 1;
  (void)!write(event_fd_, &one, sizeof(one));
  if (result.wait_for(timeout) != std::future_status::ready) return std::nullopt;
  try {
    return result.get();
  } catch (const std::exception&) {
    return std::nullopt;  // the work threw (e.g. a map could not be read) or was abandoned
  }
}

void MainThreadCalls::run_pending() {
  uint64_t count = 0;
  (void)!read(event_fd_, &count, sizeof(count));
  for (;;) {
    std::shared_ptr<std::packaged_task<std::string()>> task;
    {
      std::lock_guard lock(mutex_);
      if (pending_.empty()) return;
      task = pending_.front();
      pending_.pop_front();
    }
    (*task)();
  }
}

void MainThreadCalls::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  pending_.clear();  // the abandoned futures report broken_promise to their callers
}

std::optional<std::string> decode_base64(const std::string& text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < text.size(); i += 4) {
    int v[4];
    int padding = 0;
    for (int j = 0; j < 4; j++) {
      char c = text[i + j];
      if (c == '=' && i + 4 == text.size() && j >= 2) {
        v[j] = 0;
        padding++;
        continue;
      }
      if (padding || (v[j] = value(c)) < 0) return std::nullopt;
    }
    uint32_t bits = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out += static_cast<char>((bits >> 16) & 0xff);
    if (padding < 2) out += static_cast<char>((bits >> 8) & 0xff);
    if (padding < 1) out += static_cast<char>(bits & 0xff);
  }
  return out;
}

namespace {

const char* const kIndex = R"(<!DOCTYPE html>
<html><head><title>memscope</title></head><body>
<h1>memscope serve</h1>
<ul>
<li><a href="/metrics">/metrics</a> &mdash; Prometheus metrics</li>
<li><a href="/debug/pprof/kmem">/debug/pprof/kmem</a> &mdash; outstanding kernel allocations by stack (gzipped pprof)</li>
<li>/debug/pprof/heap?pid=N &mdash; outstanding heap allocations of a profiled process by stack (gzipped pprof; the processes in memscope_heap_outstanding_bytes)</li>
<li><a href="/healthz">/healthz</a> &mdash; liveness</li>
</ul>
</body></html>
)";

// Bounded pool: `threads` workers; connections beyond what they serve wait in the queue, each
// bounded by the read timeout once a worker takes it.
class WorkerPool : public httplib::TaskQueue {
 public:
  explicit WorkerPool(size_t threads) {
    for (size_t i = 0; i < threads; i++) workers_.emplace_back([this] { work(); });
  }
  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard lock(mutex_);
      jobs_.push_back(std::move(fn));
    }
    ready_.notify_one();
  }
  void shutdown() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_all();
    for (auto& worker : workers_) worker.join();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;  // stopping, and nothing left: queued connections are still served
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
};

// Threads started while every signal is blocked inherit that mask (and so do the pool's workers,
// which the listener thread creates).
template <typename F>
std::thread thread_without_signals(F&& body) {
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &previous);
  std::thread thread(std::forward<F>(body));
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return thread;
}

}  // namespace

struct HttpEndpoint::Impl {
  ServeConfig config;
  WebConfig web;
  HttpHandlers handlers;
  std::unique_ptr<httplib::Server> server;
  std::thread thread;
  std::mutex verified_mutex;
  std::set<std::string> verified;  // Authorization values already checked (bcrypt is slow on purpose)

  bool authorized(const httplib::Request& request) {
    if (web.basic_auth_users.empty()) return true;
    std::string header = request.get_header_value("Authorization");
    if (header.rfind("Basic ", 0) != 0) return false;
    {
      std::lock_guard lock(verified_mutex);
      if (verified.count(header)) return true;
    }
    auto decoded = decode_base64(header.substr(6));
    if (!decoded) return false;
    size_t colon = decoded->find(':');
    if (colon == std::string::npos) return false;
    auto user = web.basic_auth_users.find(decoded->substr(0, colon));
    if (user == web.basic_auth_users.end() || !password_matches(decoded->substr(colon + 1), user->second))
      return false;
    std::lock_guard lock(verified_mutex);
    if (verified.size() < 64) verified.insert(header);
    return true;
  }

  void routes() {
    server->set_pre_routing_handler([this](const httplib::Request& request, httplib::Response& response) {
      if (authorized(request)) return httplib::Server::HandlerResponse::Unhandled;
      response.status = 401;
      response.set_header("WWW-Authenticate", "Basic realm=\"memscope\"");
      response.set_content("Unauthorized\n", "text/plain");
      handlers.count_request("unauthorized", 401);
      return httplib::Server::HandlerResponse::Handled;
    });
    server->Get("/", [this](const httplib::Request&, httplib::Response& response) {
      response.set_content(kIndex, "text/html; charset=utf-8");
      handlers.count_request("/", 200);
    });
    server->Get("/healthz", [this](const httplib::Request&, httplib::Response& response) {
      response.set_content("ok\n", "text/plain");
      handlers.count_request("/healthz", 200);
    });
    server->Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
      response.set_content(handlers.metrics(), "text/plain; version=0.0.4; charset=utf-8");
      handlers.count_request("/metrics", 200);
    });
    server->Get("/debug/pprof/kmem", [this](const httplib::Request&, httplib::Response& response) {
      auto profile = handlers.kmem_profile();
      if (!profile) {
        response.status = 503;
        response.set_content("the kmem collector is not running, or did not answer in time\n", "text/plain");
      } else {
        response.set_content(*profile, "application/octet-stream");
        response.set_header("Content-Disposition", "attachment; filename=\"kmem.pb.gz\"");
      }
      handlers.count_request("/debug/pprof/kmem", response.status);
    });
    server->Get("/debug/pprof/heap", [this](const httplib::Request& request, httplib::Response& response) {
      std::string pid_text = request.get_param_value("pid");
      char* end = nullptr;
      long pid = pid_text.empty() ? 0 : strtol(pid_text.c_str(), &end, 10);
      std::string why_not;
      std::optional<std::string> profile;
      if (pid <= 0 || pid > 0x3fffffff || *end) {
        response.status = 400;
        why_not = "pid=N (a process ID) is required";
      } else if (!(profile = handlers.heap_profile(static_cast<int>(pid), why_not))) {
        response.status = why_not.empty() ? 503 : 404;
        if (why_not.empty()) why_not = "the profile was not ready in time";
      }
      if (profile) {
        response.set_content(*profile, "application/octet-stream");
        response.set_header("Content-Disposition", "attachment; filename=\"heap.pb.gz\"");
      } else {
        response.set_content(why_not + "\n", "text/plain");
      }
      handlers.count_request("/debug/pprof/heap", response.status);
    });
    server->set_error_handler([this](const httplib::Request&, httplib::Response& response) {
      if (response.status == 404 && response.body.empty())
        response.set_content("not found; see / for the endpoints\n", "text/plain");
      handlers.count_request("other", response.status);
    });
  }
};

HttpEndpoint::HttpEndpoint(const ServeConfig& config, const WebConfig& web, HttpHandlers handlers)
    : impl_(std::make_unique<Impl>()) {
  impl_->config = config;
  impl_->web = web;
  impl_->handlers = std::move(handlers);
  if (!web.cert_file.empty()) {
    auto tls = std::make_unique<httplib::SSLServer>(web.cert_file.c_str(), web.key_file.c_str());
    if (!tls->is_valid())
      throw FatalError(fmt::format("cannot use the TLS certificate {} with the key {}", web.cert_file, web.key_file));
    impl_->server = std::move(tls);
  } else {
    impl_->server = std::make_unique<httplib::Server>();
  }
  auto& server = *impl_->server;
  size_t threads = config.max_connections;
  server.new_task_queue = [threads] { return new WorkerPool(threads); };
  auto timeout = std::chrono::milliseconds(static_cast<int64_t>(config.request_timeout_s * 1000));
  server.set_read_timeout(timeout);
  server.set_write_timeout(timeout);
  // An idle connection holds a worker for this long before its request is even read: no longer
  // than a request may take.
  server.set_keep_alive_timeout(std::clamp<time_t>(static_cast<time_t>(config.request_timeout_s), 1, 5));
  server.set_keep_alive_max_count(100);
  server.set_payload_max_length(4096);  // every endpoint is a GET: a body is never needed
  impl_->routes();
}

HttpEndpoint::~HttpEndpoint() { stop(); }

bool HttpEndpoint::tls() const { return !impl_->web.cert_file.empty(); }

int HttpEndpoint::start(const std::string& host, int port) {
  auto& server = *impl_->server;
  int bound = port;
  if (port == 0) {
    bound = server.bind_to_any_port(host);
    if (bound < 0) bound = -1;
  } else if (!server.bind_to_port(host, port)) {
    bound = -1;
  }
  if (bound <= 0)
    throw FatalError(fmt::format("cannot listen on {}:{}: {}", host, port,
                                 errno ? strerror(errno) : "address not available"));
  impl_->thread = thread_without_signals([&server] { server.listen_after_bind(); });
  return bound;
}

void HttpEndpoint::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->server->stop();
  impl_->thread.join();
}

}  // namespace memscope::serve
