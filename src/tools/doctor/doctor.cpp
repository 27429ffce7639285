// doctor: for every tool, the hook each of its events will use on this kernel, or exactly what the
// kernel lacks. Runs the same resolver the tools run, so its answer is the tools' answer.
#include <sys/utsname.h>

#include <CLI/CLI.hpp>
#include <algorithm>

#include "runtime/kernel_features.hpp"
#include "runtime/privileges.hpp"
#include "runtime/probe_resolver.hpp"
#include "runtime/tool.hpp"
#include "runtime/tracefs.hpp"
#include "runtime/user_stacks.hpp"

namespace memscope {
namespace {

const output::Schema kKernelSchema = {
    "kernel_feature",
    {
        {"feature", "FEATURE", output::FieldType::String, 12, true},
        {"status", "STATUS", output::FieldType::String, 13, true},
        {"detail", "DETAIL", output::FieldType::String, 0, true},
    },
};

const output::Schema kModeSchema = {
    "tool_probe_mode",
    {
        {"tool", "TOOL", output::FieldType::String, 11, true},
        {"traced_event", "EVENT", output::FieldType::String, 26, true},
        {"mode", "MODE", output::FieldType::String, 10, true},
        {"status", "STATUS", output::FieldType::String, 11, true},
        {"hook", "HOOK / WHY NOT", output::FieldType::String, 0, true},
    },
};

const output::Schema kUserStackSchema = {
    "tool_user_stacks",
    {
        {"tool", "TOOL", output::FieldType::String, 11, true},
        {"stack_mode", "USER STACKS", output::FieldType::String, 12, true},
        {"detail", "HOW", output::FieldType::String, 0, true},
    },
};

const output::Schema kProbeSchema = {
    "tool_probe",
    {
        {"tool", "TOOL", output::FieldType::String, 11, true},
        {"traced_event", "EVENT", output::FieldType::String, 26, true},
        {"status", "STATUS", output::FieldType::String, 11, true},
        {"hook", "HOOK / WHAT THE KERNEL LACKS", output::FieldType::String, 0, true},
    },
};

class DoctorTool : public Tool {
 public:
  CommonOptionSet common_options() const override {
    CommonOptionSet set;
    set.pid = set.tid = set.comm = set.cgroup = set.uid = set.duration = set.timestamps = false;
    return set;
  }
  bool needs_bpf() const override { return false; }
  void add_options(CLI::App& app) override {
    app.add_flag("--all-modes", all_modes_,
                 "For every event, show each hook kind it could use and whether this kernel offers it");
  }
  std::vector<ProbeSpec> probes(const KernelFeatures&) const override { return {}; }

  int run(ToolContext& context) override {
    output::Sink& sink = context.sink;
    const KernelFeatures& features = context.features;
    utsname name{};
    uname(&name);
    sink.message(fmt::format("Kernel {} {}", name.release, name.machine));
    sink.header(kKernelSchema);
    std::string privileges = missing_bpf_privileges();
    sink.record(kKernelSchema, {std::string("privileges"), std::string(privileges.empty() ? "ok" : "missing"),
                                privileges.empty() ? std::string("may load BPF programs") : privileges});
    sink.record(kKernelSchema, {std::string("btf"), std::string(features.has_btf() ? "available" : "missing"),
                                std::string("/sys/kernel/btf/vmlinux")});
    for (HookKind kind : {HookKind::Fentry, HookKind::Kprobe, HookKind::TpBtf, HookKind::RawTp,
                          HookKind::Tracepoint, HookKind::Uprobe, HookKind::PerfEvent}) {
      Support support = features.hook_support(kind);
      std::string detail = support.reason;
      if (kind == HookKind::Tracepoint && support.available)
        detail = tracefs::mounted_by_us() ? "tracefs was not mounted; memscope mounted it at " + *tracefs::root()
                                          : "tracefs at " + *tracefs::root();
      sink.record(kKernelSchema, {std::string(hook_kind_name(kind)),
                                  std::string(support.available ? "available" : "unavailable"), detail});
    }
    Support pmu = hardware_pmu_support();
    sink.record(kKernelSchema, {std::string("pmu"), std::string(pmu.available ? "available" : "unavailable"),
                                pmu.reason});
    Support unwinding = cfi_unwinding_support();
    sink.record(kKernelSchema, {std::string("dwarf_stacks"),
                                std::string(unwinding.available ? "available" : "unavailable"), unwinding.reason});
    sink.message("");
    sink.header(kProbeSchema);
    auto resolver = ProbeResolver::create(features, context.options.probe_mode);
    if (!resolver) throw FatalError(resolver.error().message);
    for (const auto* descriptor : tool_registry()) {
      auto tool = descriptor->create();
      if (!tool->needs_bpf()) continue;
      for (const auto& spec : tool->probes(features)) {
        ResolvedProbe probe = resolver->resolve(spec);
        std::string status = probe.available ? "ok" : spec.optional ? "degraded" : "unavailable";
        sink.record(kProbeSchema, {std::string(descriptor->name), spec.event, status,
                                   probe.available ? probe.describe() : probe.why_unavailable});
      }

    }
    // The stack service's choice for the tools that take user stacks (--stack-mode dwarf, the default).
    sink.message("");
    sink.header(kUserStackSchema);
    for (const auto* descriptor : tool_registry()) {
      if (!descriptor->create()->common_options().user_stacks) continue;
      sink.record(kUserStackSchema, {std::string(descriptor->name),
                                     std::string(unwinding.available ? "dwarf" : "fp"), unwinding.reason});
    }
    if (all_modes_) print_all_modes(context);
    return 0;
  }

 private:
  // Tool × event × hook kind: what forcing each kind (--probe) would give on this kernel.
  void print_all_modes(ToolContext& context) {
    context.sink.message("");
    context.sink.header(kModeSchema);
    for (const auto* descriptor : tool_registry()) {
      auto tool = descriptor->create();
      if (!tool->needs_bpf()) continue;
      for (const auto& spec : tool->probes(context.features)) {
        std::vector<HookKind> kinds;
        for (const auto& alternative : spec.alternatives)
          if (std::find(kinds.begin(), kinds.end(), alternative.kind) == kinds.end()) kinds.push_back(alternative.kind);
        for (HookKind kind : kinds) {
          auto forced = ProbeResolver::create(context.features, std::string(hook_kind_name(kind)));
          ResolvedProbe probe = forced->resolve(spec);
          context.sink.record(kModeSchema, {std::string(descriptor->name), spec.event, std::string(hook_kind_name(kind)),
                                            std::string(probe.available ? "works" : "unavailable"),
                                            probe.available ? probe.describe() : probe.why_unavailable});
        }
      }
    }
  }

  bool all_modes_ = false;
};

}  // namespace
}  // namespace memscope

MEMSCOPE_TOOL(tool_doctor, "doctor", "Show which hook each tool uses on this kernel, or what is missing", DoctorTool)
