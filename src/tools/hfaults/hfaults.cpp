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

class HugetlbFaultsTool : public Tool {
 public:
  CommonOptionSet common_options() const override {
    CommonOptionSet set;
    set.interval = true;
    return set;
  }

  std::vector<ProbeSpec> probes(const KernelFeatures&) const override {
    // hugetlb_fault first, as in the book; the exception tracepoints with a VMA lookup (VM_HUGETLB)
    // where kprobes and fentry are missing (bpf_find_vma needs 5.17).
    return {{"hugetlb page fault",
             {
                 {HookKind::Fentry, {{"hfaults_fentry", {"hugetlb_fault"}}}},
                 {HookKind::Kprobe, {{"hfaults_kprobe", {"hugetlb_fault"}}}},
                 {HookKind::TpBtf,
                  {{"hfaults_user_tp_btf", {"page_fault_user"}},
                   {"hfaults_kernel_tp_btf", {"page_fault_kernel"}}}},
                 {HookKind::RawTp,
                  {{"hfaults_user_raw_tp", {"page_fault_user"}},
                   {"hfaults_kernel_raw_tp", {"page_fault_kernel"}}}},
                 {HookKind::Tracepoint,
                  {{"hfaults_user_tracepoint", {"exceptions:page_fault_user"}},
                   {"hfaults_kernel_tracepoint", {"exceptions:page_fault_kernel"}}}},
             }}};
  }

  int run(ToolContext& context) override {
    const CommonOptions& options = context.options;
    auto skel = Skeleton<hfaults>::open(MEMSCOPE_SKELETON_OPS(hfaults));
    const ResolvedProbe& probe = context.resolved.front();
    apply_filters(skel->rodata, options);
    skel.load(context.specs, context.resolved);
    apply_cgroup_filter(skel.object(), options);
    skel.attach(context.resolved);
    counts_fd_ = bpf_map__fd(skel->maps.hugetlb_faults);

    // Counts are read from the map at each report: nothing travels through the ring buffer.
    TracingOutcome outcome = trace_until_stopped(skel.object(), skel.links(), options, "hugetlb page faults",
                                                 nullptr, [&] { report(context, true); });
    if (options.interval <= 0 || outcome.reason != StopReason::Count) report(context, false);
    report_drops(context.sink, outcome.drops);
    if (probe.kind != HookKind::Fentry && probe.kind != HookKind::Kprobe) {
      int lookups_fd = bpf_map__fd(skel->maps.vma_lookups);
      log::verbose("VMA lookups: {} answered from the cache, {} by bpf_find_vma",
                   sum_percpu_counter(lookups_fd, 0), sum_percpu_counter(lookups_fd, 1));
    }
    log::verbose("hook: {}", probe.describe());
    return 0;
  }

 private:
  void report(ToolContext& context, bool interval_report) {
    auto processes = read_hash_map<uint32_t, hfaults_counts>(counts_fd_);
    std::sort(processes.begin(), processes.end(), [](const auto& a, const auto& b) {
      return a.second.faults != b.second.faults ? a.second.faults > b.second.faults : a.first < b.first;
    });
    if (context.options.interval > 0 && !context.options.json) context.sink.message("");
    context.sink.header(kHugetlbSchema);
    for (const auto& [pid, counts] : processes)
      context.sink.record(kHugetlbSchema,
                          {uint64_t{pid}, std::string(counts.comm, strnlen(counts.comm, sizeof(counts.comm))),
                           uint64_t{counts.faults}});
    if (interval_report) clear_hash_map<uint32_t>(counts_fd_);
  }

  int counts_fd_ = -1;
};

}  // namespace
}  // namespace memscope

MEMSCOPE_TOOL(tool_hfaults, "hfaults", "Count hugetlb page faults by process", HugetlbFaultsTool)
