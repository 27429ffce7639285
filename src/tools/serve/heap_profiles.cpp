#include "heap_profiles.hpp"

#include <bpf/libbpf.h>
#include <dirent.h>
#include <fmt/format.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <optional>
#include <sstream>

#include "memleak_user.skel.h"
#include "output/pprof.hpp"
#include "runtime/bpf_skeleton.hpp"
#include "runtime/kernel_introspection.hpp"
#include "runtime/log.hpp"
#include "runtime/probe_resolver.hpp"
#include "runtime/ring_buffer_reader.hpp"
#include "runtime/stack_map.hpp"
#include "runtime/tool.hpp"
#include "runtime/user_stacks.hpp"
#include "symbols/symbolizer.hpp"
#include "tools/memleak/allocator_libraries.hpp"
#include "tools/memleak/allocator_probes.hpp"
#include "tools/memleak/kernel_allocations.hpp"
#include "tools/memleak/memleak.h"

namespace memscope::serve {
namespace {

std::string read_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// "/sys/fs/cgroup/a/b" or "a/b" or "/a/b" -> "/a/b", relative to the hierarchy's root.
std::string relative_cgroup(const std::string& directory) {
  std::string path = directory;
  for (bool memory : {false, true}) {
    auto root = cgroup_root(memory);
    if (root && path.rfind(*root + "/", 0) == 0) return path.substr(root->size());
  }
  return path.front() == '/' ? path : "/" + path;
}

}  // namespace

struct HeapProfiles::Process {
  pid_t pid = 0;
  std::string comm;
  CommonOptions options;
  std::optional<Skeleton<memleak_user>> skeleton;
  // Declared after the skeleton: stops before the maps it serves are gone.
  std::unique_ptr<UserStacks> user_stacks;

  std::vector<memleak::StackSummary> totals() {
    return memleak::read_stack_totals(bpf_map__fd((*skeleton)->maps.stack_totals));
  }
};

HeapProfiles::HeapProfiles(const ServeConfig& config, const KernelFeatures& features,
                           symbols::StackSymbolizer& symbolizer)
    : config_(config), features_(features), symbolizer_(symbolizer) {
  for (const auto& target : config.heap_targets)
    if (!target.cgroup.empty()) target_cgroups_.push_back(relative_cgroup(target.cgroup));
}

HeapProfiles::~HeapProfiles() = default;

bool HeapProfiles::matches(pid_t pid, const std::string& comm) const {
  for (const auto& target : config_.heap_targets)
    if (!target.comm.empty() && target.comm == comm) return true;
  if (target_cgroups_.empty()) return false;
  // /proc/PID/cgroup: "0::/a/b" (v2) or "7:memory:/a/b" (v1): any hierarchy's path will do.
  std::ifstream cgroups("/proc/" + std::to_string(pid) + "/cgroup");
  for (std::string line; std::getline(cgroups, line);) {
    size_t second = line.find(':', line.find(':') + 1);
    if (second == std::string::npos) continue;
    std::string path = line.substr(second + 1);
    for (const auto& target : target_cgroups_)
      if (path == target || path.rfind(target + "/", 0) == 0) return true;
  }
  return false;
}

void HeapProfiles::start(pid_t pid, const std::string& comm) {
  auto process = std::make_unique<Process>();
  process->pid = pid;
  process->comm = comm;
  process->options.pid = pid;
  process->options.stack_mode = "dwarf";
  memleak::AllocatorPlan plan = memleak::plan_allocator_for_process(pid, {});
  std::vector<ProbeSpec> specs = {{"allocator calls", {{HookKind::Uprobe, memleak::allocator_programs()}}}};
  auto resolver = ProbeResolver::create(features_, "");
  if (!resolver) throw FatalError(resolver.error().message);
  auto resolved = resolver->resolve_all(specs);
  if (!resolved) throw FatalError(resolved.error().message);

  process->skeleton.emplace(Skeleton<memleak_user>::open(MEMSCOPE_SKELETON_OPS(memleak_user)));
  memleak_user& skel = *process->skeleton->get();
  apply_filters(skel.rodata, process->options);
  process->user_stacks = std::make_unique<UserStacks>(process->skeleton->object(), process->options);
  skel.rodata->combined_only = true;
  skel.rodata->trace_calls = false;
  skel.rodata->sample_every = config_.heap_sample_every;
  shrink_unused_ring_buffer(skel.maps.events);
  bool uprobe_multi = memleak::prepare_uprobe_multi(skel.obj);
  process->skeleton->load(specs, *resolved);
  process->user_stacks->start();
  process->skeleton->attach(*resolved);
  memleak::attach_allocator_probes(process->skeleton->object(), process->skeleton->links(), plan, pid, uprobe_multi);
  symbolizer_.prepare(pid);
  log::verbose("heap profile of PID {} ({}): {} uprobe links", pid, comm, process->skeleton->links().size());
  processes_[pid] = std::move(process);
}

void HeapProfiles::refresh(std::vector<MetricFamily>& families) {
  for (auto it = processes_.begin(); it != processes_.end();) {
    if (process_exited(it->first)) {
      symbolizer_.forget(it->first);
      it = processes_.erase(it);  // detaches its uprobes; its series go with it
    } else {
      ++it;
    }
  }
  for (auto it = failed_.begin(); it != failed_.end();) it = process_exited(it->first) ? failed_.erase(it) : std::next(it);

  if (DIR* proc = opendir("/proc")) {
    while (dirent* entry = readdir(proc)) {
      if (processes_.size() >= config_.heap_max_processes) break;
      char* end = nullptr;
      long pid = strtol(entry->d_name, &end, 10);
      if (pid <= 0 || *end || pid == getpid() || processes_.count(pid) || failed_.count(pid)) continue;
      std::string base = "/proc/" + std::to_string(pid);
      char exe[16];
      if (readlink((base + "/exe").c_str(), exe, sizeof(exe)) <= 0) continue;  // kernel thread, or gone
      std::string comm = read_line(base + "/comm");
      if (!matches(static_cast<pid_t>(pid), comm)) continue;
      // A process caught right after exec may not have mapped its allocator's library yet: it is
      // taken at the next refresh.
      if (process_age_seconds(static_cast<int>(pid)) < 0.5) continue;
      try {
        start(static_cast<pid_t>(pid), comm);
      } catch (const std::exception& error) {
        failed_[pid] = error.what();
        log::warning("cannot profile the heap of PID {} ({}): {}", pid, comm, error.what());
      }
    }
    closedir(proc);
  }

  MetricFamily bytes{"memscope_heap_outstanding_bytes",
                     "Heap memory a profiled process allocated since profiling began and has not freed",
                     MetricType::Gauge};
  MetricFamily count{"memscope_heap_outstanding_allocations",
                     "Allocations a profiled process made since profiling began and has not freed", MetricType::Gauge};
  for (auto& [pid, process] : processes_) {
    uint64_t total_bytes = 0, total_count = 0;
    for (const auto& summary : process->totals()) {
      total_bytes += summary.bytes;
      total_count += summary.count;
    }
    Labels labels = {{"pid", std::to_string(pid)}, {"comm", process->comm}};
    bytes.add(labels, static_cast<double>(total_bytes * config_.heap_sample_every));
    count.add(labels, static_cast<double>(total_count * config_.heap_sample_every));
  }
  families.push_back(std::move(bytes));
  families.push_back(std::move(count));
  MetricFamily profiled{"memscope_heap_profiled_processes", "Processes whose heap is profiled", MetricType::Gauge};
  profiled.add({}, static_cast<double>(processes_.size()));
  families.push_back(std::move(profiled));
}

std::optional<std::string> HeapProfiles::profile(pid_t pid, std::string& why_not) {
  auto found = processes_.find(pid);
  if (found == processes_.end()) {
    auto failed = failed_.find(pid);
    std::vector<std::string> pids;
    for (const auto& each : processes_) pids.push_back(std::to_string(each.first));
    why_not = failed != failed_.end()
                  ? fmt::format("PID {} could not be profiled: {}", pid, failed->second)
                  : fmt::format("PID {} is not profiled (heap_profiles.targets in the config); profiled: {}", pid,
                                pids.empty() ? "none" : fmt::format("{}", fmt::join(pids, ", ")));
    return std::nullopt;
  }
  Process& process = *found->second;
  int stacks_fd = bpf_map__fd((*process.skeleton)->maps.stacks);
  int overflow_fd = bpf_map__fd((*process.skeleton)->maps.overflow_stacks);
  output::StackReport report;
  report.name = "outstanding_allocations";
  for (const auto& summary : process.totals()) {
    output::StackEntry entry;
    entry.stack.pid = pid;
    if (summary.stack_id >= 0 && (summary.stack_id & MEMLEAK_OVERFLOW_STACK))
      entry.stack.user = read_stack(overflow_fd, summary.stack_id & ~MEMLEAK_OVERFLOW_STACK);
    else
      process.user_stacks->read_into(entry.stack, stacks_fd, summary.stack_id);
    entry.stack.lost = entry.stack.user.empty();
    entry.comm = process.comm;
    uint64_t bytes = summary.bytes * config_.heap_sample_every;
    entry.weight = bytes;
    entry.values = {{"bytes", bytes}, {"allocations", summary.count * config_.heap_sample_every}};
    report.entries.push_back(std::move(entry));
  }
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return output::encode_pprof(report, symbolizer_, int64_t{now.tv_sec} * 1000000000 + now.tv_nsec);
}

}  // namespace memscope::serve
