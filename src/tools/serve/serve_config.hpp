// `memscope serve --config FILE`: which collectors run, how often maps are read, label limits, how
// long series of vanished cgroups stay, and the web config (TLS, basic auth). YAML, validated at
// start: every error is one line "FILE:LINE: what is wrong", all of them reported at once.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

namespace memscope::serve {

// The collectors `serve` knows, in exposition order; each runs one tool's BPF programs.
const std::vector<std::string>& collector_names();

// A process to profile (/debug/pprof/heap?pid=N): every process whose command is `comm`, or that
// is in the cgroup directory `cgroup` (a path under /sys/fs/cgroup, or relative to the hierarchy).
struct HeapTarget {
  std::string comm;
  std::string cgroup;
};

struct ServeConfig {
  std::string listen = "127.0.0.1:9477";
  std::set<std::string> collectors;  // empty set before defaults: every collector
  double refresh_interval_s = 1;     // maps are read and /metrics rebuilt this often
  double series_retention_s = 300;   // series of a vanished cgroup stay this long (scraped at least once)
  size_t kmem_call_sites = 10;       // top N call sites of outstanding kernel memory, the rest "other"
  size_t oom_series = 500;           // memcg x victim comm series kept at most (oldest dropped)
  size_t kmem_max_allocations = 262144;
  // HTTP limits
  size_t max_connections = 8;  // worker threads; more concurrent clients wait in the accept queue
  double request_timeout_s = 10;
  // Heap profiles of user processes (memleak's allocator uprobes, per-stack totals in the kernel).
  std::vector<HeapTarget> heap_targets;
  size_t heap_sample_every = 1;   // track every Nth allocation (profile values scaled back by N)
  size_t heap_max_processes = 8;  // processes profiled at once (the first found)
  // Prometheus web.config.file (exporter-toolkit): TLS and basic auth. Relative paths in it are
  // relative to its own directory, as node_exporter reads them.
  std::string web_config_file;
};

struct WebConfig {
  std::string cert_file;  // both empty: plain HTTP
  std::string key_file;
  std::map<std::string, std::string> basic_auth_users;  // user -> bcrypt hash
};

// Parses and validates; `errors` gets one line per problem ("FILE:LINE: …"). The returned config
// is only meaningful when no error was added.
ServeConfig load_serve_config(const std::string& path, std::vector<std::string>& errors);
ServeConfig parse_serve_config(const std::string& text, const std::string& name, std::vector<std::string>& errors);
WebConfig load_web_config(const std::string& path, std::vector<std::string>& errors);
WebConfig parse_web_config(const std::string& text, const std::string& name, const std::string& base_directory,
                           std::vector<std::string>& errors);

// "ADDR:PORT" or "[ADDR6]:PORT"; false with `error` set when malformed.
bool split_listen_address(const std::string& listen, std::string& host, int& port, std::string& error);

// Basic auth: whether `password` matches the bcrypt `hash` (libcrypt's crypt(), $2y$/$2b$/$2a$).
bool password_matches(const std::string& password, const std::string& hash);

}  // namespace memscope::serve
