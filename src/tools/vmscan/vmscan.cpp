// vmscan: page reclaim per interval, the book's vmscan.bt: time spent shrinking slab caches, in
// direct reclaim and in memory cgroup reclaim, kswapd wake-ups and pages written by reclaim, then
// latency histograms of the three timed phases at exit.
#include "vmscan.h"

#include "reclaim_maps.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>

#include "runtime/bpf_skeleton.hpp"
#include "runtime/event_loop.hpp"
#include "runtime/log.hpp"
#include "runtime/ring_buffer_reader.hpp"
#include "runtime/tool.hpp"
#include "runtime/tracing_session.hpp"
#include "vmscan.skel.h"

namespace memscope {
namespace {

// The book's columns, with milliseconds to two decimals instead of whole ones so that short
// memcg reclaims do not print as 0.
const output::Schema kTextSchema = {
    "vmscan",
    {
        {"time", "TIME", output::FieldType::String, 8, true},
        {"slab_shrink_ns", "S-SLABms", output::FieldType::DurationNs, 10},
        {"direct_reclaim_ns", "D-RECLAIMms", output::FieldType::DurationNs, 12},
        {"memcg_reclaim_ns", "M-RECLAIMms", output::FieldType::DurationNs, 12},
        {"kswapd_wakeups", "KSWAPD", output::FieldType::UInt, 6},
        {"writepage", "WRITEPAGE", output::FieldType::UInt, 9},
    },
};

struct PhaseDescription {
  const char* event;  // ProbeSpec event and warning text
  const char* name;   // JSON prefix and histogram name
  const char* title;  // histogram title
  const char* begin_program;
  const char* end_program;
  const char* begin_target;
  const char* end_target;
  bool optional;
};

// Indexed by enum vmscan_phase.
const std::array<PhaseDescription, VMSCAN_PHASES> kPhases = {{
    {"slab shrink", "slab_shrink", "Slab shrink latency", "vmscan_slab_start", "vmscan_slab_end",
     "mm_shrink_slab_start", "mm_shrink_slab_end", false},
    {"direct reclaim", "direct_reclaim", "Direct reclaim latency", "vmscan_direct_begin", "vmscan_direct_end",
     "mm_vmscan_direct_reclaim_begin", "mm_vmscan_direct_reclaim_end", false},
    // Kernels built without CONFIG_MEMCG have no memcg reclaim tracepoints.
    {"memcg reclaim", "memcg_reclaim", "Memory cgroup reclaim latency", "vmscan_memcg_begin",
     "vmscan_memcg_end", "mm_vmscan_memcg_reclaim_begin", "mm_vmscan_memcg_reclaim_end", true},
}};

const char* const kKswapdEvent = "kswapd wake-up";
const char* const kWriteEvent = "reclaim page write";

// The three tracepoint flavours of one event; `programs` pairs a program base name with the
// tracepoint names to try, newest first.
HookAlternative tracepoint_flavour(
    HookKind kind, const std::vector<std::pair<std::string, std::vector<std::string>>>& programs) {
  HookAlternative alternative{kind, {}};
  const char* suffix = kind == HookKind::TpBtf   ? "_tp_btf"
                       : kind == HookKind::RawTp ? "_raw_tp"
                                                 : "_tracepoint";
  for (const auto& [base, names] : programs) {
    std::vector<std::string> targets;
    for (const auto& name : names) targets.push_back(kind == HookKind::Tracepoint ? "vmscan:" + name : name);
    alternative.programs.push_back({base + suffix, targets});
  }
  return alternative;
}

ProbeSpec tracepoint_spec(const std::string& event,
                          const std::vector<std::pair<std::string, std::vector<std::string>>>& programs,
                          bool optional) {
  ProbeSpec spec{event, {}, optional};
  for (HookKind kind : {HookKind::RawTp, HookKind::TpBtf, HookKind::Tracepoint})
    spec.alternatives.push_back(tracepoint_flavour(kind, programs));
  return spec;
}

using reclaim_maps::ReclaimTotals;
using reclaim_maps::read_histogram;
using reclaim_maps::read_totals;

class VmscanTool : public SkeletonTool<vmscan> {
 public:
  VmscanTool() : SkeletonTool(MEMSCOPE_SKELETON_OPS(vmscan)) {}

  CommonOptionSet common_options() const override {
    CommonOptionSet set;
    set.kernel_threads = true;  // kswapd is a kernel thread
    set.interval = true;
    set.default_interval = 1;
    set.timestamps = false;  // TIME is always the first column, as in the book
    return set;
  }

  std::vector<ProbeSpec> probes(const KernelFeatures&) const override {
    std::vector<ProbeSpec> specs;
    for (const auto& phase : kPhases)
      specs.push_back(tracepoint_spec(
          phase.event, {{phase.begin_program, {phase.begin_target}}, {phase.end_program, {phase.end_target}}},
          phase.optional));
    specs.push_back(
        tracepoint_spec(kKswapdEvent, {{"vmscan_kswapd_wakeup", {"mm_vmscan_wakeup_kswapd"}}}, false));
    // The book's mm_vmscan_writepage became mm_vmscan_write_folio when pageout() moved to folios
    // (6.1 already has the new name); only counted, so the argument type is moot.
    specs.push_back(tracepoint_spec(
        kWriteEvent, {{"vmscan_write", {"mm_vmscan_write_folio", "mm_vmscan_writepage"}}}, true));
    return specs;
  }

  int run(ToolContext& context) override {
    for (const auto& probe : context.resolved) {
      if (probe.available) continue;
      if (probe.event == kPhases[VMSCAN_MEMCG_RECLAIM].event) memcg_traced_ = false;
      if (probe.event == kWriteEvent) writes_traced_ = false;
    }
    bpf_map* totals_map = nullptr;
    bpf_map* histograms_map = nullptr;
    ReclaimTotals previous;
    auto previous_time = std::chrono::steady_clock::now();
    auto report = [&]() {
      ReclaimTotals now = read_totals(totals_map);
      auto now_time = std::chrono::steady_clock::now();
      print_interval(context, now.since(previous),
                     std::chrono::duration<double>(now_time - previous_time).count());
      previous = now;
      previous_time = now_time;
    };
    trace(context, {.what = "page reclaim",
                    .configure = [](vmscan& skel) { shrink_unused_ring_buffer(skel.maps.events); },
                    .attached =
                        [&](Skeleton<vmscan>& skel, EventLoop&) {
                          for (const auto& probe : context.resolved)
                            if (!probe.available)
                              log::warning("{} not traced (its column shows -): {}", probe.event,
                                           probe.why_unavailable);
                          json_schema_ = make_json_schema();
                          totals_map = skel->maps.totals;
                          histograms_map = skel->maps.latency_hist;
                          previous = read_totals(totals_map);
                          previous_time = std::chrono::steady_clock::now();
                          context.sink.header(context.options.json ? json_schema_ : kTextSchema);
                        },
                    .on_interval = report,
                    .finish =
                        [&](const TracingOutcome& outcome) {
                          // The time since the last report is reported too (interval_s says how long it was),
                          // so that reclaim right before Ctrl-C or the -p process's exit is not lost; without
                          // an interval the whole run is this one report. Only an exhausted report count ends
                          // on a full interval.
                          if (outcome.reason != StopReason::Count) report();
                          for (int phase = 0; phase < VMSCAN_PHASES; phase++) {
                            if (phase == VMSCAN_MEMCG_RECLAIM && !memcg_traced_) continue;
                            output::Histogram histogram;
                            histogram.name = std::string(kPhases[phase].name) + "_latency";
                            histogram.title = kPhases[phase].title;
                            histogram.unit = "nsecs";
                            histogram.log2_buckets = read_histogram(histograms_map, phase);
                            context.sink.histogram(histogram);
                          }
                          report_drops(context.sink, outcome.drops);
                        }});
    return 0;
  }

 private:
  output::Schema make_json_schema() const {
    output::Schema schema{
        "vmscan",
        {{"time", "TIME", output::FieldType::String}, {"interval_s", "INTERVAL", output::FieldType::Float}}};
    for (int phase = 0; phase < VMSCAN_PHASES; phase++) {
      if (phase == VMSCAN_MEMCG_RECLAIM && !memcg_traced_) continue;
      std::string name = kPhases[phase].name;
      schema.fields.push_back({name + "_ns", name, output::FieldType::DurationNs});
      schema.fields.push_back({name + "s", name, output::FieldType::UInt});
    }
    schema.fields.push_back({"kswapd_wakeups", "KSWAPD", output::FieldType::UInt});
    if (writes_traced_) schema.fields.push_back({"writepage", "WRITEPAGE", output::FieldType::UInt});
    return schema;
  }

  void print_interval(ToolContext& context, const ReclaimTotals& delta, double seconds) {
    std::string time = output::wall_clock_hms();
    if (context.options.json) {
      std::vector<output::Value> values = {time, seconds};
      for (int phase = 0; phase < VMSCAN_PHASES; phase++) {
        if (phase == VMSCAN_MEMCG_RECLAIM && !memcg_traced_) continue;
        values.push_back(delta.phase_ns[phase]);
        values.push_back(delta.phase_count[phase]);
      }
      values.push_back(delta.kswapd_wakeups);
      if (writes_traced_) values.push_back(delta.reclaim_writes);
      context.sink.record(json_schema_, values);
      return;
    }
    // An event this kernel cannot trace shows "-", never a misleading 0.
    auto counted = [](bool traced, uint64_t value) {
      return traced ? output::Value(value) : output::Value(std::string("-"));
    };
    std::vector<output::Value> values;
    values.emplace_back(time);
    values.emplace_back(delta.phase_ns[VMSCAN_SLAB_SHRINK]);
    values.emplace_back(delta.phase_ns[VMSCAN_DIRECT_RECLAIM]);
    values.push_back(counted(memcg_traced_, delta.phase_ns[VMSCAN_MEMCG_RECLAIM]));
    values.emplace_back(delta.kswapd_wakeups);
    values.push_back(counted(writes_traced_, delta.reclaim_writes));
    context.sink.record(kTextSchema, values);
  }

  bool memcg_traced_ = true;
  bool writes_traced_ = true;
  output::Schema json_schema_;
};

}  // namespace
}  // namespace memscope

MEMSCOPE_TOOL(
    tool_vmscan, "vmscan",
    "Page reclaim per interval: slab shrink, direct and memcg reclaim time, kswapd wake-ups, writes",
    VmscanTool)
