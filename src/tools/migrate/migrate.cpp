// migrate: page migrations per process and per reason (compaction, NUMA balancing, mbind,
// memory hotplug, demotion, …) from the migrate:mm_migrate_pages tracepoint, per interval.
#include "migrate.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "migrate.skel.h"
#include "output/sink.hpp"
#include "runtime/bpf_skeleton.hpp"
#include "runtime/log.hpp"
#include "runtime/map_reading.hpp"
#include "runtime/tool.hpp"
#include "runtime/tracing_session.hpp"
#include "tools/migrate/kernel_enum.hpp"

namespace memscope {
namespace {

const output::Schema kProcessSchema = {
    "migrate",
    {
        {"time", "TIME", output::FieldType::String, 8, true},
        {"pid", "PID", output::FieldType::UInt, 7},
        {"comm", "COMM", output::FieldType::String, 16, true},
        {"reason", "REASON", output::FieldType::String, 17, true},
        {"mode", "MODE", output::FieldType::String, 11, true},
        {"calls", "CALLS", output::FieldType::UInt, 7},
        {"succeeded", "PAGES", output::FieldType::UInt, 9},
        {"failed", "FAILED", output::FieldType::UInt, 7},
        {"thp_succeeded", "THP", output::FieldType::UInt, 6},
        {"thp_failed", "THP_FAIL", output::FieldType::UInt, 8},
        {"thp_split", "THP_SPLIT", output::FieldType::UInt, 9},
    },
};

const output::Schema kReasonSchema = {
    "migrate_reason",
    {
        {"time", "TIME", output::FieldType::String, 8, true},
        {"reason", "REASON", output::FieldType::String, 17, true},
        {"processes", "PROCS", output::FieldType::UInt, 5},
        {"calls", "CALLS", output::FieldType::UInt, 7},
        {"succeeded", "PAGES", output::FieldType::UInt, 9},
        {"failed", "FAILED", output::FieldType::UInt, 7},
        {"thp_succeeded", "THP", output::FieldType::UInt, 6},
        {"thp_failed", "THP_FAIL", output::FieldType::UInt, 8},
    },
};

std::string fixed_string(const char* text, size_t size) { return std::string(text, strnlen(text, size)); }

// The labels the tracepoint itself prints (include/trace/events/migrate.h MIGRATE_REASON), so the
// names match `perf trace` and /sys/kernel/tracing output.
std::string reason_label(const std::string& enumerator) {
  if (enumerator == "MR_SYSCALL") return "syscall_or_cpuset";
  return kernel_enum::lowercase_without_prefix(enumerator, "MR_");
}

class MigrateTool : public SkeletonTool<migrate> {
 public:
  MigrateTool() : SkeletonTool(MEMSCOPE_SKELETON_OPS(migrate)) {}

  CommonOptionSet common_options() const override {
    CommonOptionSet set;
    set.kernel_threads = true;  // kcompactd and kthreads of NUMA balancing migrate pages
    set.interval = true;
    set.timestamps = false;  // TIME is always the first column
    return set;
  }

  std::vector<ProbeSpec> probes(const KernelFeatures&) const override {
    std::string suffix = seven_arguments() ? "_7args" : "";
    return {{"page migration",
             {
                 {HookKind::RawTp, {{"migrate_raw_tp" + suffix, {"mm_migrate_pages"}}}},
                 {HookKind::TpBtf, {{"migrate_tp_btf" + suffix, {"mm_migrate_pages"}}}},
                 {HookKind::Tracepoint, {{"migrate_tracepoint", {"migrate:mm_migrate_pages"}}}},
             }}};
  }

  int run(ToolContext& context) override {
    load_names();
    trace(context, {.what = "page migrations",
                    .attached = [&](Skeleton<migrate>& skel,
                                    EventLoop&) { map_fd_ = bpf_map__fd(skel->maps.migrations); },
                    .on_interval = [&] { report(context); },
                    .finish =
                        [&](const TracingOutcome& outcome) {
                          if (outcome.reason != StopReason::Count) report(context);
                          report_drops(context.sink, outcome.drops);
                          log::verbose("hook: {}", context.resolved.front().describe());
                        }});
    return 0;
  }

 private:
  // mm_migrate_pages had 7 arguments in 6.1; large_folio_split (before mode and reason) made 8.
  static bool seven_arguments() { return kernel_enum::tracepoint_arg_count("mm_migrate_pages") == 7; }

  void load_names() {
    for (const auto& [value, name] : kernel_enum::values_of("migrate_reason"))
      if (name != "MR_TYPES") reasons_[value] = reason_label(name);
    if (reasons_.empty()) {
      // Kernel without BTF: the order every kernel since 5.x has used (6.1's list).
      const char* labels[] = {"compaction",        "memory_failure",  "memory_hotplug",
                              "syscall_or_cpuset", "mempolicy_mbind", "numa_misplaced",
                              "contig_range",      "longterm_pin",    "demotion"};
      for (int64_t i = 0; i < 9; i++) reasons_[i] = labels[i];
    }
    for (const auto& [value, name] : kernel_enum::values_of("migrate_mode"))
      modes_[value] = kernel_enum::lowercase_without_prefix(name, "MIGRATE_");
    if (modes_.empty()) modes_ = {{0, "async"}, {1, "sync_light"}, {2, "sync"}};
  }

  std::string name_of(const std::map<int64_t, std::string>& names, uint32_t value) const {
    auto found = names.find(value);
    return found != names.end() ? found->second : std::to_string(value);
  }

  void report(ToolContext& context) {
    // What each entry added since the previous report, so that each report covers its interval.
    auto entries = interval_counts_.take(map_fd_);
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
      return a.second.succeeded != b.second.succeeded ? a.second.succeeded > b.second.succeeded
                                                      : a.first.pid < b.first.pid;
    });
    std::string time = output::wall_clock_hms();
    bool text = !context.options.json;
    if (text && reports_++ > 0) context.sink.message("");
    if (text) context.sink.header(kProcessSchema);
    struct ReasonTotal {
      migrate_counts counts{};
      std::map<uint32_t, bool> processes;
    };
    std::map<std::string, ReasonTotal> by_reason;
    for (const auto& [key, counts] : entries) {
      std::string reason = name_of(reasons_, key.reason);
      context.sink.record(kProcessSchema,
                          {time, uint64_t{key.pid}, fixed_string(key.comm, sizeof(key.comm)), reason,
                           name_of(modes_, key.mode), counts.calls, counts.succeeded, counts.failed,
                           counts.thp_succeeded, counts.thp_failed, counts.thp_split});
      ReasonTotal& total = by_reason[reason];
      total.counts.calls += counts.calls;
      total.counts.succeeded += counts.succeeded;
      total.counts.failed += counts.failed;
      total.counts.thp_succeeded += counts.thp_succeeded;
      total.counts.thp_failed += counts.thp_failed;
      total.processes[key.pid] = true;
    }
    if (by_reason.empty()) return;
    if (text) {
      context.sink.message("");
      context.sink.header(kReasonSchema);
    }
    for (const auto& [reason, total] : by_reason)
      context.sink.record(kReasonSchema, {time, reason, uint64_t{total.processes.size()}, total.counts.calls,
                                          total.counts.succeeded, total.counts.failed,
                                          total.counts.thp_succeeded, total.counts.thp_failed});
  }

  int map_fd_ = -1;
  int reports_ = 0;
  CounterDeltas<migrate_key, migrate_counts> interval_counts_{
      {&migrate_counts::calls, &migrate_counts::succeeded, &migrate_counts::failed, &migrate_counts::thp_succeeded,
       &migrate_counts::thp_failed, &migrate_counts::thp_split}};
  std::map<int64_t, std::string> reasons_;
  std::map<int64_t, std::string> modes_;
};

}  // namespace
}  // namespace memscope

MEMSCOPE_TOOL(tool_migrate, "migrate",
              "Count page migrations per process and reason (compaction, NUMA, mbind, …)", MigrateTool)
