// memscope serve: a long-running agent that runs the event tools' BPF programs continuously
// (aggregating in the kernel) and serves Prometheus metrics and pprof profiles over HTTP(S).
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>

#include "collectors.hpp"
#include "exposition.hpp"
#include "heap_profiles.hpp"
#include "http_endpoint.hpp"
#include "output/pprof.hpp"
#include "runtime/event_loop.hpp"
#include "runtime/log.hpp"
#include "runtime/tool.hpp"
#include "serve_config.hpp"
#include "symbols/symbolizer.hpp"

namespace memscope {
namespace {

using serve::MetricFamily;
using serve::MetricType;

double monotonic_seconds() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

uint64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

struct CollectorSlot {
  std::string name;
  std::unique_ptr<serve::Collector> collector;  // null when it could not start
  std::string error;
};

class ServeTool : public Tool {
 public:
  CommonOptionSet common_options() const override {
    CommonOptionSet set;
    set.pid = set.tid = set.comm = set.cgroup = set.uid = false;  // an agent sees the whole machine
    set.timestamps = false;
    set.kernel_threads = true;
    return set;
  }

  void add_options(CLI::App& app) override {
    app.add_option("--listen", listen_, "Address and port to serve on (default 127.0.0.1:9477; the config's listen otherwise)");
    app.add_option("--config", config_path_, "YAML configuration: collectors, refresh interval, limits, web config");
    app.add_option("--web-config", web_config_path_,
                   "Prometheus web.config.file (tls_server_config, basic_auth_users), as node_exporter reads it");
    app.add_flag("--check-config", check_config_, "Validate the configuration files and exit");
  }

  void validate(const CommonOptions&) override {
    std::vector<std::string> errors;
    if (!config_path_.empty()) config_ = serve::load_serve_config(config_path_, errors);
    if (!listen_.empty()) config_.listen = listen_;
    if (!web_config_path_.empty()) config_.web_config_file = web_config_path_;
    std::string error;
    if (!serve::split_listen_address(config_.listen, host_, port_, error)) errors.push_back(error);
    if (errors.empty() && !config_.web_config_file.empty()) web_ = serve::load_web_config(config_.web_config_file, errors);
    if (config_.collectors.empty())
      config_.collectors.insert(serve::collector_names().begin(), serve::collector_names().end());
    if (errors.empty()) return;
    for (size_t i = 0; i + 1 < errors.size(); i++) fmt::print(stderr, "memscope serve: {}\n", errors[i]);
    throw FatalError(errors.back());
  }

  bool needs_bpf() const override { return !check_config_; }
  std::vector<ProbeSpec> probes(const KernelFeatures&) const override { return {}; }

  int run(ToolContext& context) override {
    if (check_config_) {
      fmt::print("{}: configuration is valid\n", config_path_.empty() ? "defaults" : config_path_);
      return 0;
    }
    // The loop's interval is the refresh: maps read, /metrics rebuilt.
    context.options.interval = config_.refresh_interval_s;
    context.options.count = 0;
    EventLoop loop(context.options);  // blocks the stop signals before any thread starts

    const double started = monotonic_seconds();
    std::vector<CollectorSlot> slots;
    serve::KernelAllocationProfile* kmem = nullptr;
    for (const std::string& name : serve::collector_names()) {
      if (!config_.collectors.count(name)) continue;
      CollectorSlot slot{name, serve::make_collector(name, config_, context.symbolizer), ""};
      try {
        slot.collector->start(context.features, context.options.probe_mode);
        log::verbose("collector {}: using {}", name, slot.collector->hooks());
        if (!slot.collector->missing().empty())
          log::warning("collector {}: not traced on this kernel: {}", name, slot.collector->missing());
        if (auto* reader = slot.collector->reader()) loop.add(*reader);
        if (name == "kmem") kmem = dynamic_cast<serve::KernelAllocationProfile*>(slot.collector.get());
      } catch (const FatalError& error) {
        // Serving goes on without it; memscope_collector_up says why.
        slot.error = error.what();
        slot.collector.reset();
        log::warning("collector {} cannot run on this kernel: {}", name, slot.error);
      }
      slots.push_back(std::move(slot));
    }

    std::unique_ptr<serve::HeapProfiles> heap;
    if (!config_.heap_targets.empty())
      heap = std::make_unique<serve::HeapProfiles>(config_, context.features, context.symbolizer);

    std::mutex rendered_mutex;
    std::string rendered;
    std::mutex requests_mutex;
    std::map<std::pair<std::string, int>, uint64_t> requests;

    auto refresh = [&] {
      double begin = monotonic_seconds();
      std::vector<MetricFamily> families;
      MetricFamily up{"memscope_collector_up",
                      "Whether a collector runs (1) or could not attach on this kernel (0, reason says why)",
                      MetricType::Gauge};
      MetricFamily dropped{"memscope_drops_total", "Events memscope lost, by collector and cause", MetricType::Counter};
      for (auto& slot : slots) {
        up.add({{"collector", slot.name}, {"reason", slot.error}}, slot.collector ? 1 : 0);
        if (!slot.collector) continue;
        try {
          slot.collector->collect(families, begin);
        } catch (const std::exception& error) {
          log::warning("collector {}: {}", slot.name, error.what());
        }
        DropCounts drops = slot.collector->drops();
        dropped.add({{"collector", slot.name}, {"cause", "ring_buffer_full"}}, static_cast<double>(drops.ring_buffer_full));
        dropped.add({{"collector", slot.name}, {"cause", "stack_not_captured"}}, static_cast<double>(drops.stack_failures));
        dropped.add({{"collector", slot.name}, {"cause", "map_full"}}, static_cast<double>(drops.map_full));
      }
      families.push_back(std::move(up));
      families.push_back(std::move(dropped));
      if (heap) heap->refresh(families);

      rusage usage{};
      getrusage(RUSAGE_SELF, &usage);
      MetricFamily cpu{"memscope_cpu_seconds_total", "CPU time memscope serve used, by mode", MetricType::Counter};
      cpu.add({{"mode", "user"}}, static_cast<double>(usage.ru_utime.tv_sec) + usage.ru_utime.tv_usec / 1e6);
      cpu.add({{"mode", "system"}}, static_cast<double>(usage.ru_stime.tv_sec) + usage.ru_stime.tv_usec / 1e6);
      families.push_back(std::move(cpu));
      MetricFamily rss{"memscope_resident_memory_bytes", "Resident memory of memscope serve", MetricType::Gauge};
      rss.add({}, static_cast<double>(resident_bytes()));
      families.push_back(std::move(rss));
      MetricFamily uptime{"memscope_uptime_seconds", "Seconds since memscope serve started", MetricType::Gauge};
      uptime.add({}, begin - started);
      families.push_back(std::move(uptime));
      MetricFamily http{"memscope_http_requests_total", "HTTP requests served, by handler and status",
                        MetricType::Counter};
      {
        std::lock_guard lock(requests_mutex);
        for (const auto& [key, count] : requests)
          http.add({{"handler", key.first}, {"code", std::to_string(key.second)}}, static_cast<double>(count));
      }
      families.push_back(std::move(http));
      size_t series = 0;
      for (const auto& family : families) series += family.samples.size();
      MetricFamily series_family{"memscope_exposition_series", "Samples in this exposition (these two included)",
                                 MetricType::Gauge};
      series_family.add({}, static_cast<double>(series + 2));
      families.push_back(std::move(series_family));
      MetricFamily refresh_time{"memscope_refresh_duration_seconds", "Time the last refresh took to read the maps",
                                MetricType::Gauge};
      refresh_time.add({}, monotonic_seconds() - begin);
      families.push_back(std::move(refresh_time));
      std::string text = serve::render(families);
      std::lock_guard lock(rendered_mutex);
      rendered = std::move(text);
    };
    refresh();

    serve::MainThreadCalls calls;
    loop.watch_fd(calls.fd(), [&calls] {
      calls.run_pending();
      return false;
    });
    auto timeout = std::chrono::milliseconds(static_cast<int64_t>(config_.request_timeout_s * 1000));
    serve::HttpHandlers handlers;
    handlers.metrics = [&] {
      std::lock_guard lock(rendered_mutex);
      return rendered;
    };
    handlers.kmem_profile = [&, timeout]() -> std::optional<std::string> {
      if (!kmem) return std::nullopt;
      return calls.call([kmem] { return output::gzip_bytes(kmem->profile()); }, timeout);
    };
    handlers.heap_profile = [&, timeout](int pid, std::string& why_not) -> std::optional<std::string> {
      if (!heap) {
        why_not = "no process is profiled: heap_profiles.targets is not configured";
        return std::nullopt;
      }
      // The reason is written on the main thread and read here only after the call returned.
      auto reason = std::make_shared<std::string>();
      auto profile = calls.call(
          [&heap, pid, reason] {
            std::string why;
            auto bytes = heap->profile(pid, why);
            *reason = why;
            return bytes ? output::gzip_bytes(*bytes) : std::string();
          },
          timeout);
      if (!profile) return std::nullopt;  // busy: why_not stays empty (503)
      if (profile->empty()) {
        why_not = *reason;
        return std::nullopt;
      }
      return profile;
    };
    handlers.count_request = [&](const std::string& handler, int status) {
      std::lock_guard lock(requests_mutex);
      requests[{handler, status}]++;
    };
    serve::HttpEndpoint endpoint(config_, web_, handlers);
    int port = endpoint.start(host_, port_);
    bool loopback = host_ == "127.0.0.1" || host_ == "::1" || host_ == "localhost";
    fmt::print(stderr, "Serving on {}://{}:{}/ ({} collectors running{}{})\n", endpoint.tls() ? "https" : "http",
               host_.find(':') != std::string::npos ? "[" + host_ + "]" : host_, port,
               std::count_if(slots.begin(), slots.end(), [](const auto& slot) { return slot.collector != nullptr; }),
               web_.basic_auth_users.empty() ? "" : ", basic auth", loopback ? "" : "; not loopback only");
    announce_attached("memory events for /metrics", context.options);
    StopReason reason = loop.run(refresh);
    log::verbose("stopped: {}", describe(reason));
    calls.close();
    endpoint.stop();
    return 0;
  }

 private:
  std::string listen_;
  std::string config_path_;
  std::string web_config_path_;
  bool check_config_ = false;
  serve::ServeConfig config_;
  serve::WebConfig web_;
  std::string host_;
  int port_ = 0;
};

}  // namespace
}  // namespace memscope

// serve is built as a module of its own (memscope-serve.so, with OpenSSL, cpp-httplib and
// yaml-cpp); the memscope binary's descriptor (serve_loader.cpp) creates the tool through this.
extern "C" __attribute__((visibility("default"))) memscope::Tool* memscope_serve_tool_create() {
  return new memscope::ServeTool();
}
