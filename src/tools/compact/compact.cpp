// compact: each memory compaction of a zone (node, zone, order, sync/async, latency, result) like
// BCC's compactsnoop, the direct-compaction stalls of allocating tasks, and at exit log2 histograms
// of both and the stalls per process.
#include "compact.h"

#include <bpf/bpf.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "compact.skel.h"
#include "output/histogram.hpp"
#include "output/sink.hpp"
#include "runtime/bpf_skeleton.hpp"
#include "runtime/event_loop.hpp"
#include "runtime/log.hpp"
#include "runtime/ring_buffer_reader.hpp"
#include "runtime/tool.hpp"
#include "runtime/tracing_session.hpp"
#include "tools/migrate/kernel_enum.hpp"

namespace memscope {
namespace {

// BCC compactsnoop's columns, with TYPE (direct, kcompactd, proactive, manual) added.
const output::Schema kZoneSchema = {
    "compaction",
    {
        {"comm", "COMM", output::FieldType::String, 16, true},
        {"pid", "PID", output::FieldType::UInt, 7},
        {"node", "NODE", output::FieldType::Int, 4},
        {"zone", "ZONE", output::FieldType::String, 8, true},
        {"order", "ORDER", output::FieldType::Int, 5},
        {"type", "TYPE", output::FieldType::String, 9, true},
        {"mode", "MODE", output::FieldType::String, 5, true},
        {"latency_ns", "LAT(ms)", output::FieldType::DurationNs, 9, false, 3},
        {"status", "STATUS", output::FieldType::String, 0, true},
    },
};

// Stalls interleave with the zone lines, so in text they read as a sentence.
const output::Schema kStallSchema = {
    "compaction_stall",
    {
        {"comm", "COMM", output::FieldType::String},
        {"pid", "PID", output::FieldType::UInt},
        {"tid", "TID", output::FieldType::UInt},
        {"order", "ORDER", output::FieldType::Int},
        {"gfp_mask", "GFP", output::FieldType::Hex},
        {"priority", "PRIORITY", output::FieldType::String},
        {"zones", "ZONES", output::FieldType::UInt},
        {"latency_ns", "LAT(ms)", output::FieldType::DurationNs, 0, false, 3},
        {"result", "RESULT", output::FieldType::String},
        {"end", "END", output::FieldType::String},
    },
    "{0:<16} {1:>7} direct compaction stall: order {3}, gfp {4}, priority {5}, {6} zone(s), {7} ms, "
    "result {8}",
};

const output::Schema kStallProcessSchema = {
    "compaction_stall_process",
    {
        {"pid", "PID", output::FieldType::UInt, 7},
        {"comm", "COMM", output::FieldType::String, 16, true},
        {"stalls", "STALLS", output::FieldType::UInt, 7},
        {"total_ns", "TOTAL(ms)", output::FieldType::DurationNs, 10, false, 3},
        {"max_ns", "MAX(ms)", output::FieldType::DurationNs, 10, false, 3},
    },
};

std::string fixed_string(const char* text, size_t size) { return std::string(text, strnlen(text, size)); }

uint64_t monotonic_ns() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1000000000ull + static_cast<uint64_t>(now.tv_nsec);
}

// Zone names by index, as /proc/zoneinfo lists a node's zones (every zone type, populated or not).
std::vector<std::string> zone_names() {
  std::vector<std::string> names;
  std::ifstream zoneinfo("/proc/zoneinfo");
  std::string line;
  std::string first_node;
  while (std::getline(zoneinfo, line)) {
    if (line.rfind("Node ", 0) != 0) continue;
    std::istringstream fields(line);
    std::string node_word, node, zone_word, name;
    fields >> node_word >> node >> zone_word >> name;
    if (first_node.empty()) first_node = node;
    if (node != first_node) break;
    names.push_back(name);
  }
  return names;
}

void add_to_histogram(output::Histogram& histogram, uint64_t value) {
  unsigned bucket = output::log2_bucket(value);
  if (histogram.log2_buckets.size() <= bucket) histogram.log2_buckets.resize(bucket + 1);
  histogram.log2_buckets[bucket]++;
}

class CompactTool : public SkeletonTool<compact> {
 public:
  CompactTool() : SkeletonTool(MEMSCOPE_SKELETON_OPS(compact)) {}

  CommonOptionSet common_options() const override {
    CommonOptionSet set;
    set.kernel_threads = true;  // kcompactd is a kernel thread
    return set;
  }

  std::vector<ProbeSpec> probes(const KernelFeatures&) const override {
    return {
        {"zone compaction",
         {
             {HookKind::RawTp,
              {{"compact_begin_raw_tp", {"mm_compaction_begin"}},
               {"compact_end_raw_tp", {"mm_compaction_end"}}}},
             {HookKind::TpBtf,
              {{"compact_begin_tp_btf", {"mm_compaction_begin"}},
               {"compact_end_tp_btf", {"mm_compaction_end"}}}},
             {HookKind::Tracepoint,
              {{"compact_begin_tracepoint", {"compaction:mm_compaction_begin"}},
               {"compact_finished_tracepoint", {"compaction:mm_compaction_finished"}, true},
               {"compact_end_tracepoint", {"compaction:mm_compaction_end"}}}},
         }},
        {"direct compaction stall",
         {
             {HookKind::Fentry,
              {{"stall_fentry", {"try_to_compact_pages"}}, {"stall_fexit", {"try_to_compact_pages"}}}},
             {HookKind::Kprobe,
              {{"stall_kprobe", {"try_to_compact_pages"}}, {"stall_kretprobe", {"try_to_compact_pages"}}}},
             {HookKind::RawTp,
              {{"stall_raw_tp", {"mm_compaction_try_to_compact_pages"}},
               {"deferred_raw_tp", {"mm_compaction_deferred"}, true}}},
             {HookKind::TpBtf,
              {{"stall_tp_btf", {"mm_compaction_try_to_compact_pages"}},
               {"deferred_tp_btf", {"mm_compaction_deferred"}, true}}},
             {HookKind::Tracepoint,
              {{"stall_tracepoint", {"compaction:mm_compaction_try_to_compact_pages"}},
               {"deferred_tracepoint", {"compaction:mm_compaction_deferred"}, true}}},
         },
         /*optional=*/true},
    };
  }

  int run(ToolContext& context) override {
    load_names();
    const ResolvedProbe& stall_probe = context.resolved[1];
    exact_stalls_ = stall_probe.available &&
                    (stall_probe.kind == HookKind::Fentry || stall_probe.kind == HookKind::Kprobe);
    int timer_fd = -1;
    trace(context, {.what = "memory compaction",
                    .attached =
                        [&](Skeleton<compact>& skel, EventLoop& loop) {
                          zone_starts_fd_ = bpf_map__fd(skel->maps.zone_starts);
                          timer_fd = watch_quiet_stalls(context, loop);
                          context.sink.header(kZoneSchema);
                          if (!stall_probe.available)
                            log::warning("direct compaction stalls not traced: {}",
                                         stall_probe.why_unavailable);
                        },
                    .on_record =
                        [&](const void* data, size_t size) {
                          if (size >= sizeof(compact_event))
                            handle(context, *static_cast<const compact_event*>(data));
                        },
                    .finish =
                        [&](const TracingOutcome& outcome) {
                          if (timer_fd >= 0) close(timer_fd);
                          close_quiet_stalls(context, UINT64_MAX);
                          final_report(context);
                          report_drops(context.sink, outcome.drops);
                        }});
    return 0;
  }

 private:
  // With tracepoint hooks a stall has no end event: close the ones that went quiet, checked every
  // second. Returns the timer's descriptor (-1 when there is none).
  int watch_quiet_stalls(ToolContext& context, EventLoop& loop) {
    int timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (timer_fd < 0) return -1;
    itimerspec every_second = {{1, 0}, {1, 0}};
    timerfd_settime(timer_fd, 0, &every_second, nullptr);
    loop.watch_fd(timer_fd, [this, &context, timer_fd]() {
      uint64_t expirations;
      (void)!read(timer_fd, &expirations, sizeof(expirations));
      close_quiet_stalls(context, monotonic_ns() - 1000000000ull);
      return false;
    });
    return timer_fd;
  }

  struct PendingStall {
    compact_event begin{};
    uint64_t last_ns = 0;
    uint64_t zones = 0;
    int32_t result = 0;
  };

  struct ProcessStalls {
    std::string comm;
    uint64_t stalls = 0;
    uint64_t total_ns = 0;
    uint64_t max_ns = 0;
  };

  void load_names() {
    zones_ = zone_names();
    for (const auto& [value, name] : kernel_enum::values_of("compact_result")) {
      results_[value] = kernel_enum::lowercase_without_prefix(name, "COMPACT_");
      if (name == "COMPACT_SKIPPED") skipped_ = static_cast<int32_t>(value);
      if (name == "COMPACT_DEFERRED") deferred_ = static_cast<int32_t>(value);
    }
    if (results_.empty())
      results_ = {{0, "not_suitable_zone"}, {1, "skipped"},   {2, "deferred"},
                  {3, "no_suitable_page"},  {4, "continue"},  {5, "complete"},
                  {6, "partial_skipped"},   {7, "contended"}, {8, "success"}};
    // enum compact_priority has aliases (MIN_COMPACT_PRIORITY, …); the COMPACT_PRIO_ names are the real ones.
    for (const auto& [value, name] : kernel_enum::values_of("compact_priority"))
      if (name.rfind("COMPACT_PRIO_", 0) == 0)
        priorities_[value] = kernel_enum::lowercase_without_prefix(name, "COMPACT_PRIO_");
    if (priorities_.empty()) priorities_ = {{0, "sync_full"}, {1, "sync_light"}, {2, "async"}};
  }

  std::string result_name(int32_t value) const {
    auto found = results_.find(value);
    return found != results_.end() ? found->second : std::to_string(value);
  }

  std::string zone_name(int32_t index) const {
    if (index >= 0 && static_cast<size_t>(index) < zones_.size()) return zones_[index];
    return index < 0 ? "?" : std::to_string(index);
  }

  void handle(ToolContext& context, const compact_event& event) {
    switch (event.kind) {
      case COMPACT_EVENT_ZONE:
        return zone_compaction(context, event);
      case COMPACT_EVENT_STALL_BEGIN: {
        auto previous = pending_.find(event.tid);
        if (previous != pending_.end())
          finish_stall(context, previous->second, previous->second.last_ns, -1, "next_stall");
        PendingStall& stall = pending_[event.tid];
        stall = PendingStall{};
        stall.begin = event;
        stall.last_ns = event.timestamp_ns;
        stall.result = skipped_;
        return;
      }
      case COMPACT_EVENT_DEFERRED: {
        auto pending = pending_.find(event.tid);
        if (pending == pending_.end()) return;
        pending->second.last_ns = event.timestamp_ns;
        pending->second.result = std::max(pending->second.result, deferred_);
        return;
      }
      case COMPACT_EVENT_STALL_END: {
        auto pending = pending_.find(event.tid);
        PendingStall stall;
        if (pending != pending_.end()) {
          stall = pending->second;
          pending_.erase(pending);
        } else {
          stall.begin = event;  // entered before tracing started
          stall.begin.timestamp_ns = event.timestamp_ns - event.duration_ns;
        }
        emit_stall(context, stall, event.duration_ns, event.status, "return");
        return;
      }
    }
  }

  void zone_compaction(ToolContext& context, const compact_event& event) {
    std::string comm = fixed_string(event.comm, sizeof(event.comm));
    std::string type = event.direct                      ? "direct"
                       : event.proactive                 ? "proactive"
                       : comm.rfind("kcompactd", 0) == 0 ? "kcompactd"
                       : event.order < 0                 ? "manual"
                                                         : "other";
    context.sink.record(
        kZoneSchema,
        {comm, uint64_t{event.pid}, int64_t{event.nid}, zone_name(event.zone_idx), int64_t{event.order}, type,
         std::string(event.sync ? "sync" : "async"), event.duration_ns, result_name(event.status)});
    add_to_histogram(zone_latency_, event.duration_ns / 1000);
    auto pending = pending_.find(event.tid);
    if (event.direct && pending != pending_.end()) {
      pending->second.last_ns = event.timestamp_ns;
      pending->second.zones++;
      pending->second.result = std::max(pending->second.result, event.status);
    }
  }

  // Tracepoint hooks: a stall is over once its task runs no zone compaction and fired nothing for
  // a while (before `quiet_since`); it lasted until its last event.
  void close_quiet_stalls(ToolContext& context, uint64_t quiet_since) {
    for (auto it = pending_.begin(); it != pending_.end();) {
      uint32_t tid = it->first;
      bool compacting = false;
      if (quiet_since != UINT64_MAX && zone_starts_fd_ >= 0) {
        unsigned char value[64];
        compacting = bpf_map_lookup_elem(zone_starts_fd_, &tid, value) == 0;
      }
      bool quiet = quiet_since == UINT64_MAX || (!compacting && it->second.last_ns < quiet_since);
      // With fexit/kretprobe the return event ends the stall; only the end of tracing cuts it short.
      if (quiet && (!exact_stalls_ || quiet_since == UINT64_MAX)) {
        finish_stall(context, it->second, it->second.last_ns, -1,
                     exact_stalls_ ? "tracing_stopped" : "last_zone");
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void finish_stall(ToolContext& context, const PendingStall& stall, uint64_t end_ns, int32_t result,
                    const char* end) {
    emit_stall(context, stall, end_ns - stall.begin.timestamp_ns, result >= 0 ? result : stall.result, end);
  }

  void emit_stall(ToolContext& context, const PendingStall& stall, uint64_t duration_ns, int32_t result,
                  const char* end) {
    const compact_event& begin = stall.begin;
    std::string comm = fixed_string(begin.comm, sizeof(begin.comm));
    auto priority = priorities_.find(begin.priority);
    context.sink.record(kStallSchema,
                        {comm, uint64_t{begin.pid}, uint64_t{begin.tid}, int64_t{begin.order}, begin.gfp_mask,
                         priority != priorities_.end() ? priority->second : std::to_string(begin.priority),
                         stall.zones, duration_ns, result_name(result), std::string(end)});
    add_to_histogram(stall_latency_, duration_ns / 1000);
    ProcessStalls& process = stall_processes_[begin.pid];
    process.comm = comm;
    process.stalls++;
    process.total_ns += duration_ns;
    process.max_ns = std::max(process.max_ns, duration_ns);
  }

  void final_report(ToolContext& context) {
    bool text = !context.options.json;
    if (zone_latency_.total()) {
      if (text) context.sink.message("");
      context.sink.histogram(zone_latency_);
    }
    if (stall_latency_.total()) {
      if (text) context.sink.message("");
      context.sink.histogram(stall_latency_);
    }
    if (stall_processes_.empty()) return;
    std::vector<std::pair<uint32_t, ProcessStalls>> rows(stall_processes_.begin(), stall_processes_.end());
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a.second.total_ns > b.second.total_ns; });
    if (text) {
      context.sink.message("");
      context.sink.message("Direct compaction stalls per process:");
      context.sink.header(kStallProcessSchema);
    }
    for (const auto& [pid, process] : rows)
      context.sink.record(kStallProcessSchema,
                          {uint64_t{pid}, process.comm, process.stalls, process.total_ns, process.max_ns});
  }

  std::vector<std::string> zones_;
  std::map<int64_t, std::string> results_;
  std::map<int64_t, std::string> priorities_;
  int32_t skipped_ = 1;
  int32_t deferred_ = 2;
  bool exact_stalls_ = false;
  int zone_starts_fd_ = -1;
  std::map<uint32_t, PendingStall> pending_;
  std::map<uint32_t, ProcessStalls> stall_processes_;
  output::Histogram zone_latency_{"compaction_latency", "Zone compaction latency", "usecs", {}};
  output::Histogram stall_latency_{"direct_compaction_stall", "Direct compaction stall", "usecs", {}};
};

}  // namespace
}  // namespace memscope

MEMSCOPE_TOOL(tool_compact, "compact",
              "Trace memory compactions (zone, order, latency, result) and direct-compaction stalls",
              CompactTool)
