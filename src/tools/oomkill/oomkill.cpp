// oomkill: print each OOM kill with the triggering and victim tasks, the pages involved,
// /proc/loadavg, and the memory cgroup when the OOM is a cgroup's.
#include "oomkill.h"

#include "oom_kill_decoding.hpp"

#include <algorithm>
#include <cstring>

#include "oomkill.skel.h"
#include "runtime/bpf_skeleton.hpp"
#include "runtime/event_loop.hpp"
#include "runtime/kernel_introspection.hpp"
#include "runtime/log.hpp"
#include "runtime/ring_buffer_reader.hpp"
#include "runtime/tool.hpp"
#include "runtime/tracing_session.hpp"
#include "symbols/symbolizer.hpp"

namespace memscope {
namespace {

const output::Schema kOomKillSchema = {
    "oom_kill",
    {
        {"triggered_pid", "TPID", output::FieldType::UInt},
        {"triggered_comm", "TCOMM", output::FieldType::String},
        {"victim_pid", "VPID", output::FieldType::UInt},
        {"victim_comm", "VCOMM", output::FieldType::String},
        {"pages", "PAGES", output::FieldType::UInt},
        {"pages_source", "SOURCE", output::FieldType::String},
        {"loadavg", "LOADAVG", output::FieldType::String},
        {"memcg", "MEMCG", output::FieldType::String},
        {"hook", "HOOK", output::FieldType::String},
    },
    // BCC's line, so habits carry over; the memcg and the pages' meaning are appended.
    "Triggered by PID {0} (\"{1}\"), OOM kill of PID {2} (\"{3}\"), {4} pages{5}, loadavg: {6}{7}",
};

class OomKillTool : public SkeletonTool<oomkill> {
 public:
  OomKillTool() : SkeletonTool(MEMSCOPE_SKELETON_OPS(oomkill)) {}

  CommonOptionSet common_options() const override {
    CommonOptionSet set;
    set.kernel_threads = true;  // an allocation of a kernel thread can set off the OOM killer
    // The subject of an OOM kill is the victim as much as the trigger: -p and --comm match either,
    // in user space (OOM kills are rare). Thread, user and cgroup filters on the trigger alone would
    // hide the kills people look for, so they are not offered.
    set.tid = set.uid = set.cgroup = false;
    return set;
  }

  std::vector<ProbeSpec> probes(const KernelFeatures&) const override {
    return {{"OOM kill",
             {
                 {HookKind::Fentry, {{"oomkill_fentry", {"oom_kill_process"}}}},
                 {HookKind::Kprobe, {{"oomkill_kprobe", {"oom_kill_process"}}}},
                 {HookKind::RawTp, {{"oomkill_raw_tp", {"mark_victim"}}}},
                 {HookKind::TpBtf, {{"oomkill_tp_btf", {"mark_victim"}}}},
                 {HookKind::Tracepoint, {{"oomkill_tracepoint", {"oom:mark_victim"}}}},
             }}};
  }

  int run(ToolContext& context) override {
    hook_ = context.resolved.front().describe();
    trace(context, {.what = "OOM kills",
                    // -p and --comm match the victim too: they are applied in handle().
                    .kernel_filters = false,
                    .configure = [](oomkill& skel) { oomkill_decoding::configure(skel); },
                    .attached = [&](auto&, EventLoop&) { context.sink.header(kOomKillSchema); },
                    .on_record =
                        [&](const void* data, size_t size) {
                          if (size >= sizeof(oomkill_event))
                            handle(context, *static_cast<const oomkill_event*>(data));
                        }});
    return 0;
  }

 private:
  void handle(ToolContext& context, const oomkill_event& event) {
    const CommonOptions& options = context.options;
    if (options.pid > 0 && event.triggered_pid != static_cast<unsigned>(options.pid) &&
        event.victim_pid != static_cast<unsigned>(options.pid))
      return;
    oomkill_decoding::OomKill kill = oomkill_decoding::decode(event, context.symbolizer);
    const std::string& victim_comm = kill.victim_comm;
    const std::string& triggered_comm = kill.triggered_comm;
    if (!options.comm.empty() && triggered_comm != options.comm && victim_comm != options.comm) return;
    const std::string& memcg = kill.memcg;
    const char* pages_source = event.pages_source == OOMKILL_PAGES_TOTALPAGES ? "totalpages" : "victim_rss";
    std::vector<output::Value> values = {
        uint64_t{event.triggered_pid},
        triggered_comm,
        uint64_t{event.victim_pid},
        victim_comm,
        uint64_t{event.pages},
        std::string(pages_source),
        read_loadavg(),
        memcg,
        hook_,
    };
    if (context.options.json) {
      context.sink.record(kOomKillSchema, values);
      return;
    }
    // Text: the pages' meaning and the memcg read as part of the sentence.
    values[5] = std::string(event.pages_source == OOMKILL_PAGES_TOTALPAGES ? "" : " (victim RSS)");
    values[7] = memcg.empty() ? std::string() : ", memcg: " + memcg;
    context.sink.record(kOomKillSchema, values);
  }

  std::string hook_;
};

}  // namespace
}  // namespace memscope

MEMSCOPE_TOOL(tool_oomkill, "oomkill", "Show OOM kills: trigger, victim, pages, loadavg, memcg", OomKillTool)
