// Heap profiles of user processes for /debug/pprof/heap?pid=N: every process the config's targets
// name (by command or memory cgroup) gets memleak's allocator uprobes (its memleak_user skeleton,
// per-stack totals kept in the kernel, every Nth allocation when sampled) and the stack service's
// DWARF unwinder; the profile is its outstanding allocations by user stack. Processes are found at
// each refresh, and forgotten (uprobes detached, series removed) when they exit.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "exposition.hpp"
#include "runtime/kernel_features.hpp"
#include "serve_config.hpp"

namespace memscope::symbols {
class StackSymbolizer;
}

namespace memscope::serve {

class HeapProfiles {
 public:
  HeapProfiles(const ServeConfig& config, const KernelFeatures& features, symbols::StackSymbolizer& symbolizer);
  ~HeapProfiles();

  // Main thread, at each refresh: starts profiling processes that match a target (up to
  // max_processes), stops for those that exited, and adds the heap metric families.
  void refresh(std::vector<MetricFamily>& families);
  // Main thread: the uncompressed profile of one profiled process; nullopt with `why_not` set when
  // it is not profiled.
  std::optional<std::string> profile(pid_t pid, std::string& why_not);

 private:
  struct Process;
  bool matches(pid_t pid, const std::string& comm) const;
  void start(pid_t pid, const std::string& comm);

  const ServeConfig& config_;
  const KernelFeatures& features_;
  symbols::StackSymbolizer& symbolizer_;
  std::vector<std::string> target_cgroups_;  // relative to the cgroup hierarchy, "/a/b"
  std::map<pid_t, std::unique_ptr<Process>> processes_;
  std::map<pid_t, std::string> failed_;  // PIDs that could not be profiled, and why (tried once)
};

}  // namespace memscope::serve
