#include "collectors.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include "compact.skel.h"
#include "faults.skel.h"
#include "memleak_kernel.skel.h"
#include "migrate.skel.h"
#include "oomkill.skel.h"
#include "output/pprof.hpp"
#include "runtime/bpf_skeleton.hpp"
#include "runtime/kernel_introspection.hpp"
#include "runtime/log.hpp"
#include "runtime/map_reading.hpp"
#include "runtime/stack_map.hpp"
#include "runtime/tool.hpp"
#include "runtime/user_stacks.hpp"
#include "swapin.skel.h"
#include "symbols/symbolizer.hpp"
#include "tools/compact/compact.h"
#include "tools/faults/faults.h"
#include "tools/memleak/kernel_allocations.hpp"
#include "tools/memleak/memleak.h"
#include "tools/migrate/kernel_enum.hpp"
#include "tools/migrate/migrate.h"
#include "tools/oomkill/oom_kill_decoding.hpp"
#include "tools/swapin/swapin.h"
#include "tools/vmscan/reclaim_maps.hpp"
#include "vmscan.skel.h"

namespace memscope::serve {
namespace {

// A tool's skeleton, loaded and attached with the tool's own probe specs as the runtime step does
// it (filters: none but memscope's own PID; user stacks: none), kept for as long as serve runs.
template <typename Skel>
class ToolSkeleton {
 public:
  ToolSkeleton(const char* tool, const typename Skeleton<Skel>::Ops& ops)
      : tool_(tool), ops_(ops) {
    options_.stack_mode = "fp";  // no collector walks user stacks: the unwinder stays switched off
  }

  void start(const KernelFeatures& features, const std::string& probe_mode,
             const std::function<void(Skel&)>& configure) {
    const ToolDescriptor* descriptor = find_tool(tool_);
    if (!descriptor) throw FatalError(fmt::format("internal: no tool {}", tool_));
    specs_ = descriptor->create()->probes(features);
    auto resolver = ProbeResolver::create(features, probe_mode);
    if (!resolver) throw FatalError(resolver.error().message);
    auto resolved = resolver->resolve_all(specs_);
    if (!resolved) throw FatalError(resolved.error().message);
    resolved_ = *resolved;
    for (const auto& probe : resolved_)
      if (probe.available && (probe.kind == HookKind::PerfEvent || probe.kind == HookKind::Uprobe))
        throw FatalError(fmt::format("{}: this kernel offers only a {} hook, which serve does not attach",
                                     probe.event, hook_kind_name(probe.kind)));
    skeleton_.emplace(Skeleton<Skel>::open(ops_));
    apply_filters((*skeleton_)->rodata, options_);
    user_stacks_ = std::make_unique<UserStacks>(skeleton_->object(), options_);
    if (configure) configure(*skeleton_->get());
    skeleton_->load(specs_, resolved_);
    user_stacks_->start();
    skeleton_->attach(resolved_);
  }

  Skel* operator->() { return skeleton_->get(); }
  bpf_object* object() { return skeleton_->object(); }
  bool started() const { return skeleton_.has_value(); }

  std::string hooks() const {
    std::vector<std::string> chosen;
    for (const auto& probe : resolved_)
      if (probe.available) chosen.push_back(probe.describe());
    return fmt::format("{}", fmt::join(chosen, "; "));
  }
  std::string missing() const {
    std::vector<std::string> events;
    for (const auto& probe : resolved_)
      if (!probe.available) events.push_back(probe.event);
    return fmt::format("{}", fmt::join(events, "; "));
  }
  bool available(const std::string& event) const {
    for (const auto& probe : resolved_)
      if (probe.event == event) return probe.available;
    return false;
  }
  const std::vector<ResolvedProbe>& resolved() const { return resolved_; }

 private:
  const char* tool_;
  typename Skeleton<Skel>::Ops ops_;
  CommonOptions options_;
  std::vector<ProbeSpec> specs_;
  std::vector<ResolvedProbe> resolved_;
  std::optional<Skeleton<Skel>> skeleton_;
  // Declared after the skeleton: stops before the maps it serves are gone.
  std::unique_ptr<UserStacks> user_stacks_;
};

// A collector over one tool's skeleton: its name, the hooks chosen and the events missing, and its
// drop counts, from its ring buffer reader when its records come that way, else from the drops map
// as last read by collect() (read_drops()).
template <typename Skel>
class SkeletonCollector : public Collector {
 public:
  SkeletonCollector(const char* name, const char* tool, const typename Skeleton<Skel>::Ops& ops)
      : skeleton_(tool, ops), name_(name) {}
  std::string name() const override { return name_; }
  std::string hooks() const override { return skeleton_.hooks(); }
  std::string missing() const override { return skeleton_.missing(); }
  RingBufferReader* reader() override { return reader_.get(); }
  DropCounts drops() const override { return reader_ ? reader_->drops() : drops_; }

 protected:
  void read_records(RingBufferReader::Handler handler) {
    reader_ = std::make_unique<RingBufferReader>(skeleton_.object(), std::move(handler));
  }
  void read_drops() { drops_ = read_drop_counts(skeleton_.object()); }

  ToolSkeleton<Skel> skeleton_;

 private:
  const char* name_;
  std::unique_ptr<RingBufferReader> reader_;
  DropCounts drops_;
};

// Whether a process is gone (its counts can be folded into the totals of exited processes).
bool process_gone(uint32_t pid) { return pid != 0 && process_exited(static_cast<int>(pid)); }

// Entries of processes that exited: removed from the map (so it never fills with dead PIDs) and
// returned, so their counts stay in the totals.
template <typename Key, typename Value, typename PidOf>
std::vector<std::pair<Key, Value>> read_live_and_retire(int fd, PidOf pid_of, std::vector<std::pair<Key, Value>>& retired) {
  auto entries = read_hash_map<Key, Value>(fd);
  std::vector<std::pair<Key, Value>> live;
  for (auto& entry : entries) {
    if (!process_gone(pid_of(entry.first))) {
      live.push_back(entry);
      continue;
    }
    Value last{};
    // Atomic where the kernel supports it (5.14+ for hash maps); else what was read is kept.
    if (bpf_map_lookup_and_delete_elem(fd, &entry.first, &last) == 0)
      retired.emplace_back(entry.first, last);
    else if (bpf_map_delete_elem(fd, &entry.first) == 0)
      retired.push_back(entry);
  }
  return live;
}

// ---------------------------------------------------------------------------------------------
// oomkill: memscope_oom_kills_total{memcg, victim_comm}, from the oomkill tool's records.
class OomKillCollector : public SkeletonCollector<oomkill> {
 public:
  OomKillCollector(const ServeConfig& config, symbols::StackSymbolizer& symbolizer)
      : SkeletonCollector("oomkill", "oomkill", MEMSCOPE_SKELETON_OPS(oomkill)), config_(config), symbolizer_(symbolizer) {}

  void start(const KernelFeatures& features, const std::string& probe_mode) override {
    skeleton_.start(features, probe_mode, [](oomkill& skel) { oomkill_decoding::configure(skel); });
    read_records([this](const void* data, size_t size) {
      if (size >= sizeof(oomkill_event)) handle(*static_cast<const oomkill_event*>(data));
    });
  }

  void collect(std::vector<MetricFamily>& families, double now_s) override {
    now_s_ = now_s;
    expire(now_s);
    MetricFamily kills{"memscope_oom_kills_total",
                       "OOM kills by memory cgroup (empty for a system-wide OOM) and victim command",
                       MetricType::Counter};
    for (const auto& [key, series] : series_) kills.add({{"memcg", key.first}, {"victim_comm", key.second}}, series.kills);
    families.push_back(std::move(kills));
  }

 private:
  struct Series {
    uint64_t kills = 0;
    double last_kill_s = 0;
    double gone_since_s = -1;  // the memcg was found gone at this time
  };

  void handle(const oomkill_event& event) {
    auto kill = oomkill_decoding::decode(event, symbolizer_);
    Series& series = series_[{kill.memcg, kill.victim_comm}];
    series.kills++;
    series.last_kill_s = now_s_;
    series.gone_since_s = -1;
    while (series_.size() > config_.oom_series) {
      auto oldest = std::min_element(series_.begin(), series_.end(), [](const auto& a, const auto& b) {
        return a.second.last_kill_s < b.second.last_kill_s;
      });
      series_.erase(oldest);
    }
  }

  // Series of a memory cgroup that no longer exists are removed after the retention time (long
  // enough for Prometheus to scrape the last value).
  void expire(double now_s) {
    auto root = cgroup_root(true);
    for (auto it = series_.begin(); it != series_.end();) {
      const std::string& memcg = it->first.first;
      bool gone = false;
      if (!memcg.empty() && root) {
        struct stat st;
        gone = memcg.rfind("cgroup id ", 0) == 0 || stat((*root + memcg).c_str(), &st) != 0;
      }
      Series& series = it->second;
      if (!gone) series.gone_since_s = -1;
      else if (series.gone_since_s < 0) series.gone_since_s = now_s;
      if (gone && now_s - series.gone_since_s >= config_.series_retention_s)
        it = series_.erase(it);
      else
        ++it;
    }
  }

  const ServeConfig& config_;
  symbols::StackSymbolizer& symbolizer_;
  std::map<std::pair<std::string, std::string>, Series> series_;
  double now_s_ = 0;
};

// ---------------------------------------------------------------------------------------------
// reclaim: vmscan's latency histograms as memscope_reclaim_duration_seconds{kind}.
class ReclaimCollector : public SkeletonCollector<vmscan> {
 public:
  ReclaimCollector() : SkeletonCollector("reclaim", "vmscan", MEMSCOPE_SKELETON_OPS(vmscan)) {}
  void start(const KernelFeatures& features, const std::string& probe_mode) override {
    skeleton_.start(features, probe_mode, [](vmscan& skel) { shrink_unused_ring_buffer(skel.maps.events); });
    memcg_traced_ = skeleton_.available("memcg reclaim");
  }

  void collect(std::vector<MetricFamily>& families, double) override {
    read_drops();
    auto totals = reclaim_maps::read_totals(skeleton_->maps.totals);
    MetricFamily duration{"memscope_reclaim_duration_seconds",
                          "Time tasks spent in direct reclaim (kind=direct) and memory cgroup reclaim (kind=memcg)",
                          MetricType::Histogram};
    // 1 µs (2^10 ns) to 34 s (2^35 ns).
    duration.add_log2_ns_histogram({{"kind", "direct"}},
                                   reclaim_maps::read_histogram(skeleton_->maps.latency_hist, VMSCAN_DIRECT_RECLAIM),
                                   static_cast<double>(totals.phase_ns[VMSCAN_DIRECT_RECLAIM]), 10, 35);
    if (memcg_traced_)
      duration.add_log2_ns_histogram({{"kind", "memcg"}},
                                     reclaim_maps::read_histogram(skeleton_->maps.latency_hist, VMSCAN_MEMCG_RECLAIM),
                                     static_cast<double>(totals.phase_ns[VMSCAN_MEMCG_RECLAIM]), 10, 35);
    families.push_back(std::move(duration));
    MetricFamily kswapd{"memscope_kswapd_wakeups_total", "kswapd wake-ups", MetricType::Counter};
    kswapd.add({}, static_cast<double>(totals.kswapd_wakeups));
    families.push_back(std::move(kswapd));
  }

 private:
  bool memcg_traced_ = false;
};

// ---------------------------------------------------------------------------------------------
// faults: page faults by CPU mode, from the faults tool's per-process counts (no stacks).
class FaultsCollector : public SkeletonCollector<faults> {
 public:
  FaultsCollector() : SkeletonCollector("faults", "faults", MEMSCOPE_SKELETON_OPS(faults)) {}
  void start(const KernelFeatures& features, const std::string& probe_mode) override {
    skeleton_.start(features, probe_mode, [](faults& skel) {
      skel.rodata->capture_stacks = false;
      bpf_map__set_max_entries(skel.maps.stacks, 1);
      bpf_map__set_max_entries(skel.maps.unwound_stacks, 1);
    });
    // First-fault notices (for the faults tool's symbolization) are read and dropped here.
    read_records([](const void*, size_t) {});
  }

  void collect(std::vector<MetricFamily>& families, double) override {
    std::vector<std::pair<uint32_t, faults_process_counts>> retired;
    auto live = read_live_and_retire<uint32_t, faults_process_counts>(
        bpf_map__fd(skeleton_->maps.process_faults), [](uint32_t pid) { return pid; }, retired);
    for (const auto& entry : retired) {
      exited_user_ += entry.second.user;
      exited_kernel_ += entry.second.kernel;
    }
    uint64_t user = exited_user_, kernel = exited_kernel_;
    for (const auto& entry : live) {
      user += entry.second.user;
      kernel += entry.second.kernel;
    }
    MetricFamily family{"memscope_page_faults_total", "Page faults by the CPU mode they were taken in",
                        MetricType::Counter};
    family.add({{"mode", "user"}}, static_cast<double>(user));
    family.add({{"mode", "kernel"}}, static_cast<double>(kernel));
    families.push_back(std::move(family));
    MetricFamily processes{"memscope_page_fault_processes", "Live processes with page fault counts in the kernel map",
                           MetricType::Gauge};
    processes.add({}, static_cast<double>(live.size()));
    families.push_back(std::move(processes));
  }

 private:
  uint64_t exited_user_ = 0, exited_kernel_ = 0;
};

// ---------------------------------------------------------------------------------------------
// swapin: swap-ins, from the swapin tool's per-process counts.
class SwapinCollector : public SkeletonCollector<swapin> {
 public:
  SwapinCollector() : SkeletonCollector("swapin", "swapin", MEMSCOPE_SKELETON_OPS(swapin)) {}
  void start(const KernelFeatures& features, const std::string& probe_mode) override {
    skeleton_.start(features, probe_mode, [](swapin& skel) { shrink_unused_ring_buffer(skel.maps.events); });
  }

  void collect(std::vector<MetricFamily>& families, double) override {
    std::vector<std::pair<swapin_key, uint64_t>> retired;
    auto live = read_live_and_retire<swapin_key, uint64_t>(
        bpf_map__fd(skeleton_->maps.swapins), [](const swapin_key& key) { return key.pid; }, retired);
    for (const auto& entry : retired) exited_ += entry.second;
    uint64_t total = exited_;
    for (const auto& entry : live) total += entry.second;
    MetricFamily family{"memscope_swapins_total", "Pages swapped in", MetricType::Counter};
    family.add({}, static_cast<double>(total));
    families.push_back(std::move(family));
    read_drops();
  }

 private:
  uint64_t exited_ = 0;
};

// ---------------------------------------------------------------------------------------------
// migrate: page migrations by reason and result.
class MigrateCollector : public SkeletonCollector<migrate> {
 public:
  MigrateCollector() : SkeletonCollector("migrate", "migrate", MEMSCOPE_SKELETON_OPS(migrate)) {}
  void start(const KernelFeatures& features, const std::string& probe_mode) override {
    skeleton_.start(features, probe_mode, [](migrate& skel) { shrink_unused_ring_buffer(skel.maps.events); });
    for (const auto& [value, name] : kernel_enum::values_of("migrate_reason"))
      if (name != "MR_TYPES") reasons_[value] = kernel_enum::lowercase_without_prefix(name, "MR_");
  }

  void collect(std::vector<MetricFamily>& families, double) override {
    std::vector<std::pair<migrate_key, migrate_counts>> retired;
    auto live = read_live_and_retire<migrate_key, migrate_counts>(
        bpf_map__fd(skeleton_->maps.migrations), [](const migrate_key& key) { return key.pid; }, retired);
    for (const auto& entry : retired) add(exited_[reason(entry.first.reason)], entry.second);
    std::map<std::string, migrate_counts> totals = exited_;
    for (const auto& entry : live) add(totals[reason(entry.first.reason)], entry.second);
    MetricFamily pages{"memscope_page_migrations_total", "Base pages migrated, by reason and result",
                       MetricType::Counter};
    for (const auto& [why, counts] : totals) {
      pages.add({{"reason", why}, {"result", "succeeded"}}, static_cast<double>(counts.succeeded));
      pages.add({{"reason", why}, {"result", "failed"}}, static_cast<double>(counts.failed));
    }
    families.push_back(std::move(pages));
    read_drops();
  }

 private:
  static void add(migrate_counts& sum, const migrate_counts& more) {
    sum.calls += more.calls;
    sum.succeeded += more.succeeded;
    sum.failed += more.failed;
    sum.thp_succeeded += more.thp_succeeded;
    sum.thp_failed += more.thp_failed;
    sum.thp_split += more.thp_split;
  }
  std::string reason(uint32_t value) const {
    auto found = reasons_.find(value);
    return found != reasons_.end() ? found->second : std::to_string(value);
  }

  std::map<int64_t, std::string> reasons_;
  std::map<std::string, migrate_counts> exited_;
};

// ---------------------------------------------------------------------------------------------
// compact: zone compactions and direct-compaction stalls, from the compact tool's records.
class CompactCollector : public SkeletonCollector<compact> {
 public:
  CompactCollector() : SkeletonCollector("compact", "compact", MEMSCOPE_SKELETON_OPS(compact)) {}
  void start(const KernelFeatures& features, const std::string& probe_mode) override {
    skeleton_.start(features, probe_mode, nullptr);
    stalls_traced_ = skeleton_.available("direct compaction stall");
    read_records([this](const void* data, size_t size) {
      if (size < sizeof(compact_event)) return;
      const auto& event = *static_cast<const compact_event*>(data);
      // Each stall is one record: its begin (tracepoint hooks) or its end (fexit/kretprobe).
      if (event.kind == COMPACT_EVENT_ZONE) zones_++;
      else if (event.kind == COMPACT_EVENT_STALL_BEGIN || event.kind == COMPACT_EVENT_STALL_END) stalls_++;
    });
  }

  void collect(std::vector<MetricFamily>& families, double) override {
    MetricFamily zones{"memscope_compactions_total", "Zone compaction runs (compact_zone)", MetricType::Counter};
    zones.add({}, static_cast<double>(zones_));
    families.push_back(std::move(zones));
    if (stalls_traced_) {
      MetricFamily stalls{"memscope_compaction_stalls_total", "Direct compactions: allocations that stalled to compact",
                          MetricType::Counter};
      stalls.add({}, static_cast<double>(stalls_));
      families.push_back(std::move(stalls));
    }
  }

 private:
  bool stalls_traced_ = false;
  uint64_t zones_ = 0, stalls_ = 0;
};

// ---------------------------------------------------------------------------------------------
// kmem: outstanding kernel allocations (memleak's kernel mode, totals kept in the kernel) by call
// site, top N and "other"; and by stack for /debug/pprof/kmem.
class KmemCollector : public SkeletonCollector<memleak_kernel>, public KernelAllocationProfile {
 public:
  KmemCollector(const ServeConfig& config, symbols::StackSymbolizer& symbolizer)
      : SkeletonCollector("kmem", "memleak", MEMSCOPE_SKELETON_OPS(memleak_kernel)), config_(config), symbolizer_(symbolizer) {}
  void start(const KernelFeatures& features, const std::string& probe_mode) override {
    skeleton_.start(features, probe_mode, [this](memleak_kernel& skel) {
      skel.rodata->combined_only = true;
      skel.rodata->trace_calls = false;
      shrink_unused_ring_buffer(skel.maps.events);
      memleak::configure_kernel_skeleton(skel, static_cast<uint32_t>(config_.kmem_max_allocations));
    });
  }

  void collect(std::vector<MetricFamily>& families, double now_s) override {
    if (now_s - sites_cleared_s_ > 300) {  // stack ids are reused once their stacks are gone
      site_by_stack_.clear();
      sites_cleared_s_ = now_s;
    }
    auto summaries = memleak::read_stack_totals(bpf_map__fd(skeleton_->maps.stack_totals));
    std::unordered_map<std::string, std::pair<uint64_t, uint64_t>> by_site;
    for (const auto& summary : summaries) {
      auto& total = by_site[call_site(summary.stack_id)];
      total.first += summary.bytes;
      total.second += summary.count;
    }
    std::vector<std::pair<std::string, std::pair<uint64_t, uint64_t>>> sites(by_site.begin(), by_site.end());
    std::sort(sites.begin(), sites.end(), [](const auto& a, const auto& b) {
      return a.second.first != b.second.first ? a.second.first > b.second.first : a.first < b.first;
    });
    MetricFamily bytes{"memscope_kernel_outstanding_bytes",
                       "Kernel memory allocated and not freed since memscope started, by call site (top N, the rest as other)",
                       MetricType::Gauge};
    MetricFamily count{"memscope_kernel_outstanding_allocations",
                       "Kernel allocations not freed since memscope started, by call site (top N, the rest as other)",
                       MetricType::Gauge};
    uint64_t other_bytes = 0, other_count = 0;
    for (size_t i = 0; i < sites.size(); i++) {
      if (i < config_.kmem_call_sites) {
        bytes.add({{"call_site", sites[i].first}}, static_cast<double>(sites[i].second.first));
        count.add({{"call_site", sites[i].first}}, static_cast<double>(sites[i].second.second));
      } else {
        other_bytes += sites[i].second.first;
        other_count += sites[i].second.second;
      }
    }
    bytes.add({{"call_site", "other"}}, static_cast<double>(other_bytes));
    count.add({{"call_site", "other"}}, static_cast<double>(other_count));
    families.push_back(std::move(bytes));
    families.push_back(std::move(count));
    read_drops();
  }

  std::string profile() override {
    output::StackReport report;
    report.name = "outstanding_kernel_allocations";
    for (const auto& summary : memleak::read_stack_totals(bpf_map__fd(skeleton_->maps.stack_totals))) {
      output::StackEntry entry;
      entry.stack.kernel = stack(summary.stack_id);
      entry.stack.lost = entry.stack.kernel.empty();
      entry.comm = "kernel";
      entry.weight = summary.bytes;
      entry.values = {{"bytes", summary.bytes}, {"allocations", summary.count}};
      report.entries.push_back(std::move(entry));
    }
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    return output::encode_pprof(report, symbolizer_, int64_t{now.tv_sec} * 1000000000 + now.tv_nsec);
  }

 private:
  std::vector<uint64_t> stack(int32_t stack_id) {
    if (stack_id < 0) return {};
    if (stack_id & MEMLEAK_OVERFLOW_STACK)
      return read_stack(bpf_map__fd(skeleton_->maps.overflow_stacks), stack_id & ~MEMLEAK_OVERFLOW_STACK);
    return read_stack(bpf_map__fd(skeleton_->maps.stacks), stack_id);
  }

  // The first function of the stack that is not the allocator itself.
  std::string call_site(int32_t stack_id) {
    auto cached = site_by_stack_.find(stack_id);
    if (cached != site_by_stack_.end()) return cached->second;
    std::string site = "[stack lost]";
    auto addresses = stack(stack_id);
    if (!addresses.empty()) {
      site = "[unknown]";
      for (const auto& frame : symbolizer_.kernel_frames(addresses)) {
        if (frame.function.empty() || is_allocator(frame.function)) continue;
        site = frame.function;
        break;
      }
    }
    site_by_stack_[stack_id] = site;
    return site;
  }

  static bool is_allocator(const std::string& function) {
    static const char* const prefixes[] = {
        "kmalloc",       "__kmalloc",     "kmem_cache_alloc", "__kmem_cache_alloc", "slab_",     "__slab_",
        "___slab_",      "new_slab",      "allocate_slab",    "alloc_slab",         "kvmalloc",  "__kvmalloc",
        "kzalloc",       "kcalloc",       "krealloc",         "__krealloc",         "__do_kmalloc", "alloc_pages",
        "__alloc_pages", "folio_alloc",   "__folio_alloc",    "alloc_pages_mpol",   "__get_free_pages",
        "get_zeroed_page", "___kmalloc", "kmalloc_trace",   "kmem_cache_alloc_lru", "alloc_frozen_pages",
        "__alloc_frozen_pages", "pcpu_",  "memscope",
    };
    for (const char* prefix : prefixes)
      if (function.rfind(prefix, 0) == 0) return true;
    return false;
  }

  const ServeConfig& config_;
  symbols::StackSymbolizer& symbolizer_;
  std::unordered_map<int32_t, std::string> site_by_stack_;
  double sites_cleared_s_ = 0;
};

}  // namespace

std::unique_ptr<Collector> make_collector(const std::string& name, const ServeConfig& config,
                                          symbols::StackSymbolizer& symbolizer) {
  if (name == "oomkill") return std::make_unique<OomKillCollector>(config, symbolizer);
  if (name == "reclaim") return std::make_unique<ReclaimCollector>();
  if (name == "faults") return std::make_unique<FaultsCollector>();
  if (name == "swapin") return std::make_unique<SwapinCollector>();
  if (name == "migrate") return std::make_unique<MigrateCollector>();
  if (name == "compact") return std::make_unique<CompactCollector>();
  if (name == "kmem") return std::make_unique<KmemCollector>(config, symbolizer);
  throw FatalError(fmt::format("internal: unknown collector {}", name));
}

}  // namespace memscope::serve
