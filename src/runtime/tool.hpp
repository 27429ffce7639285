// What a tool is to the runtime: options, the events it needs (with hook alternatives), and a run
// function. Tools register with one line in src/tools/CMakeLists.txt.
#pragma once

#include <fmt/format.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "output/sink.hpp"
#include "runtime/hook.hpp"
#include "runtime/kernel_features.hpp"
#include "runtime/options.hpp"
#include "runtime/probe_resolver.hpp"

struct bpf_object;
namespace CLI {
class App;
}
namespace memscope::symbols {
class StackSymbolizer;
}

namespace memscope {
class UserStacks;

struct ToolContext {
  CommonOptions& options;
  const KernelFeatures& features;
  const std::vector<ProbeSpec>& specs;
  const std::vector<ResolvedProbe>& resolved;
  output::Sink& sink;
  symbols::StackSymbolizer& symbolizer;
  // The stack service of the skeleton being traced: set by the runtime step from before the tool's
  // configure hook until its final report is made.
  UserStacks* user_stacks = nullptr;
};

class Tool {
 public:
  virtual ~Tool() = default;
  virtual CommonOptionSet common_options() const { return {}; }
  virtual void add_options(CLI::App& /*app*/) {}
  // Called after option parsing: tool-specific validation (throw FatalError).
  virtual void validate(const CommonOptions& /*options*/) {}
  // The events the tool needs on this kernel, each with its hook alternatives in order.
  virtual std::vector<ProbeSpec> probes(const KernelFeatures& features) const = 0;
  // Whether the tool loads BPF at all (doctor and usdt -l don't).
  virtual bool needs_bpf() const { return true; }
  // The BPF object run() loads with the options given, opened but not loaded (no privileges
  // needed), so that probes() can be checked against its programs; null when it loads none.
  virtual std::shared_ptr<bpf_object> open_bpf_object() const { return nullptr; }
  virtual int run(ToolContext& context) = 0;
};

struct ToolDescriptor {
  const char* name;
  const char* summary;
  std::unique_ptr<Tool> (*create)();
};

// Generated from src/tools/CMakeLists.txt.
const std::vector<const ToolDescriptor*>& tool_registry();
const ToolDescriptor* find_tool(const std::string& name);

// Prints "Tracing … Hit Ctrl-C to end." on stderr once everything is attached: the signal test
// harnesses and users wait for.
void announce_attached(const std::string& what, const CommonOptions& options);

// Writes the -p/-t/-u/--comm filters into a skeleton's .rodata (fields from bpf/memscope.bpf.h),
// and memscope's own PID, which is never traced.
template <typename Rodata>
void apply_filters(Rodata* rodata, const CommonOptions& options) {
  rodata->memscope_tgid = static_cast<unsigned>(getpid());
  rodata->filter_tgid = static_cast<unsigned>(options.pid);
  rodata->filter_tid = static_cast<unsigned>(options.tid);
  if (options.uid >= 0) rodata->filter_uid = static_cast<unsigned>(options.uid);
  if (!options.comm.empty()) {
    rodata->filter_comm_enabled = true;
    for (size_t i = 0; i < options.comm.size() && i < sizeof(rodata->filter_comm) - 1; i++)
      rodata->filter_comm[i] = options.comm[i];
  }
  rodata->filter_cgroup_enabled = !options.cgroup.empty();
}

// After load: put the --cgroup directory into the cgroup_filter map.
void apply_cgroup_filter(::bpf_object* object, const CommonOptions& options);

}  // namespace memscope

#define MEMSCOPE_TOOL(identifier, tool_name, tool_summary, Class)                   \
  namespace memscope {                                                             \
  extern const ToolDescriptor identifier;                                          \
  const ToolDescriptor identifier = {tool_name, tool_summary,                    \
                                     []() -> std::unique_ptr<Tool> { return std::make_unique<Class>(); }}; \
  }
