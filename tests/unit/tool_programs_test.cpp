// Every program a tool's probes() names is in the skeleton its run() loads, with a section of the
// hook kind it is listed under: a misspelt or misfiled program would otherwise only fail on the
// kernel that picks its alternative. No root needed: skeletons are opened, never loaded. Every tool
// of the registry is checked with each of its flags (and -p, which switches memleak to uprobes),
// on fake kernels offering every hook and lacking kprobes and fentry.
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/kernel_features.hpp"
#include "runtime/options.hpp"
#include "runtime/result.hpp"
#include "runtime/tool.hpp"

namespace memscope {
namespace {

// A kernel where every hook kind works and every target exists; `missing` kinds are refused.
class KernelWith : public KernelFeatures {
 public:
  explicit KernelWith(std::vector<HookKind> missing) : missing_(std::move(missing)) {}
  bool has_btf() const override { return true; }
  Support hook_support(HookKind kind) const override {
    bool refused = std::find(missing_.begin(), missing_.end(), kind) != missing_.end();
    return refused ? Support{false, "not in this fake kernel"} : Support{true, ""};
  }
  bool target_exists(HookKind, const std::string&) const override { return true; }

 private:
  std::vector<HookKind> missing_;
};

// Section names libbpf gives each hook kind (SEC("fentry"), SEC("kretprobe/…"), …).
bool section_fits(HookKind kind, std::string_view section) {
  auto is = [&](std::initializer_list<std::string_view> prefixes) {
    for (std::string_view prefix : prefixes) {
      if (section == prefix) return true;
      if (section.substr(0, prefix.size()) == prefix && section.size() > prefix.size() &&
          (section[prefix.size()] == '/' || section[prefix.size()] == '.'))
        return true;
    }
    return false;
  };
  switch (kind) {
    case HookKind::Fentry:
      return is({"fentry", "fexit"});
    case HookKind::Kprobe:
      return is({"kprobe", "kretprobe"});
    case HookKind::TpBtf:
      return is({"tp_btf"});
    case HookKind::RawTp:
      return is({"raw_tp", "raw_tracepoint"});
    case HookKind::Tracepoint:
      return is({"tracepoint", "tp"});
    case HookKind::Uprobe:
      return is({"uprobe", "uretprobe", "usdt"});
    case HookKind::PerfEvent:
      return is({"perf_event"});
  }
  return false;
}

// A tool with its options parsed from `args` (as `memscope TOOL args…` would), or null when they
// do not parse.
std::unique_ptr<Tool> tool_with_options(const ToolDescriptor& descriptor,
                                        const std::vector<std::string>& args, CommonOptions& options) {
  std::unique_ptr<Tool> tool = descriptor.create();
  CLI::App app{descriptor.summary, descriptor.name};
  add_common_options(app, options, tool->common_options());
  tool->add_options(app);
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError&) {
    return nullptr;
  }
  try {
    tool->validate(options);
  } catch (const FatalError&) {
    // Refusals of this machine (no PMU, a libc without probes) or of the combination: the specs
    // the options chose are checked all the same.
  }
  return tool;
}

// The argument lists to check a tool with: none, each flag alone, and both with -p (this process).
std::vector<std::vector<std::string>> argument_variants(const ToolDescriptor& descriptor) {
  std::unique_ptr<Tool> tool = descriptor.create();
  CLI::App app{descriptor.summary, descriptor.name};
  CommonOptions options;
  add_common_options(app, options, tool->common_options());
  tool->add_options(app);
  std::vector<std::vector<std::string>> bases = {{}};
  if (app.get_option_no_throw("-p")) bases.push_back({"-p", std::to_string(getpid())});
  std::vector<std::vector<std::string>> variants;
  for (const auto& base : bases) {
    variants.push_back(base);
    for (const CLI::Option* option : app.get_options()) {
      std::string name = option->get_name();
      if (option->get_positional() || option->get_items_expected_max() != 0 || name.rfind("--help", 0) == 0)
        continue;
      std::vector<std::string> with_flag = base;
      with_flag.push_back(name);
      variants.push_back(with_flag);
    }
  }
  return variants;
}

std::string describe(const ToolDescriptor& descriptor, const std::vector<std::string>& args) {
  std::string text = descriptor.name;
  for (const auto& arg : args) text += " " + arg;
  return text;
}

TEST(ToolPrograms, EveryNamedProgramIsInTheSkeletonUnderItsHookKind) {
  const KernelWith every_hook({});
  const KernelWith no_kprobes_or_fentry({HookKind::Kprobe, HookKind::Fentry});
  const KernelFeatures* kernels[] = {&every_hook, &no_kprobes_or_fentry};
  libbpf_set_print(nullptr);
  size_t checked_programs = 0;
  for (const ToolDescriptor* descriptor : tool_registry()) {
    for (const auto& args : argument_variants(*descriptor)) {
      SCOPED_TRACE(describe(*descriptor, args));
      CommonOptions options;
      std::unique_ptr<Tool> tool = tool_with_options(*descriptor, args, options);
      if (!tool || !tool->needs_bpf()) continue;
      std::shared_ptr<bpf_object> object = tool->open_bpf_object();
      for (const KernelFeatures* kernel : kernels) {
        std::vector<ProbeSpec> specs = tool->probes(*kernel);
        if (!specs.empty()) {
          ASSERT_TRUE(object) << "probes named, but no BPF object to load them from";
        }
        for (const auto& spec : specs) {
          for (const auto& alternative : spec.alternatives) {
            for (const auto& named : alternative.programs) {
              SCOPED_TRACE(spec.event + ": " + named.program);
              bpf_program* program = bpf_object__find_program_by_name(object.get(), named.program.c_str());
              ASSERT_TRUE(program) << "no such program in " << bpf_object__name(object.get());
              EXPECT_TRUE(section_fits(alternative.kind, bpf_program__section_name(program)))
                  << "section " << bpf_program__section_name(program) << " is no "
                  << hook_kind_name(alternative.kind) << " hook";
              checked_programs++;
            }
          }
        }
      }
    }
  }
  EXPECT_GT(checked_programs, 0u);
}

}  // namespace
}  // namespace memscope
