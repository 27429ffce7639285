// hfaults: hugetlb page faults per process, the book's hfaults.bt
// (kprobe:hugetlb_fault { @[pid, comm] = count(); }).
#include "hfaults.h"

#include <bpf/bpf.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "hfaults.skel.h"
#include "runtime/bpf_skeleton.hpp"
#include "runtime/event_loop.hpp"
#include "runtime/log.hpp"
#include "runtime/map_reading.hpp"
#include "runtime/ring_buffer_reader.hpp"
#include "runtime/tool.hpp"
#include "runtime/tracing_session.hpp"
#include "tools/faults/page_fault_hooks.hpp"

namespace memscope {
namespace {

const output::Schema kHugetlbSchema = {
    "hugetlb_faults",
    {
        {"pid", "PID", output::FieldType::UInt, 7, true},
        {"comm", "COMM", output::FieldType::String, 16, true},
        {"faults", "HUGETLB_FAULTS", output::FieldType::UInt, 14},
    },
};

class HugetlbFaultsTool : public SkeletonTool<hfaults> {
 public:
  HugetlbFaultsTool() : SkeletonTool(MEMSCOPE_SKELETON_OPS(hfaults)) {}

  CommonOptionSet common_options() const override {
    CommonOptionSet set;
    set.interval = true;
    return set;
  }

  std::vector<ProbeSpec> probes(const KernelFeatures&) const override {
    // hugetlb_fault first, as in the book; the exception tracepoints with a VMA lookup (VM_HUGETLB)
    // where kprobes and fentry are missing.
    return {function_then_fault_tracepoints("hugetlb page fault", "hfaults", "hugetlb_fault")};
  }

  int run(ToolContext& context) override {
    const CommonOptions& options = context.options;
    const ResolvedProbe& probe = context.resolved.front();
    int lookups_fd = -1;
    trace(context, {.what = "hugetlb page faults",
                    .attached =
                        [&](Skeleton<hfaults>& skel, EventLoop&) {
                          counts_fd_ = bpf_map__fd(skel->maps.hugetlb_faults);
                          lookups_fd = bpf_map__fd(skel->maps.vma_lookups);
                        },
                    // Counts are read from the map at each report: nothing travels through the ring buffer.
                    .on_interval = [&] { report(context, true); },
                    .finish =
                        [&](const TracingOutcome& outcome) {
                          // In interval mode the last report shows what came since the one before.
                          if (options.interval <= 0 || outcome.reason != StopReason::Count)
                            report(context, options.interval > 0);
                          // A fault whose mapping could not be looked up may have been a hugetlb one: it is
                          // lost.
                          std::string unresolved;
                          if (looks_up_mappings(probe.kind)) {
                            VmaLookupCounts lookups = VmaLookupCounts::read(lookups_fd);
                            log::verbose("{}", lookups.describe());
                            if (lookups.unresolved)
                              unresolved =
                                  fmt::format("{} faults not checked for hugetlb (mapping lookup busy)",
                                              lookups.unresolved);
                          }
                          report_drops_and_unresolved(context.sink, outcome.drops, unresolved);
                          log::verbose("hook: {}", probe.describe());
                        }});
    return 0;
  }

 private:
  void report(ToolContext& context, bool interval_report) {
    // An interval report shows what each count added since the previous one (CounterDeltas).
    auto processes = interval_report ? interval_counts_.take(counts_fd_)
                                     : read_hash_map<uint32_t, hfaults_counts>(counts_fd_);
    std::sort(processes.begin(), processes.end(), [](const auto& a, const auto& b) {
      return a.second.faults != b.second.faults ? a.second.faults > b.second.faults : a.first < b.first;
    });
    if (context.options.interval > 0 && !context.options.json) context.sink.message("");
    context.sink.header(kHugetlbSchema);
    for (const auto& [pid, counts] : processes)
      context.sink.record(kHugetlbSchema,
                          {uint64_t{pid}, std::string(counts.comm, strnlen(counts.comm, sizeof(counts.comm))),
                           uint64_t{counts.faults}});
  }

  int counts_fd_ = -1;
  CounterDeltas<uint32_t, hfaults_counts> interval_counts_{{&hfaults_counts::faults}};
};

}  // namespace
}  // namespace memscope

MEMSCOPE_TOOL(tool_hfaults, "hfaults", "Count hugetlb page faults by process", HugetlbFaultsTool)
