// memscope: one binary, many tools. `memscope TOOL [options]`, or a symlink named after a tool.
#include <bpf/libbpf.h>
#include <libgen.h>

#include <CLI/CLI.hpp>
#include <cstdarg>
#include <cstdio>
#include <fmt/format.h>
#include <string>
#include <vector>

#include "output/pprof.hpp"
#include "output/sink.hpp"
#include "runtime/kernel_features.hpp"
#include "runtime/log.hpp"
#include "runtime/privileges.hpp"
#include "runtime/probe_resolver.hpp"
#include "runtime/tool.hpp"
#include "symbols/symbolizer.hpp"

namespace memscope {
namespace {

int print_libbpf(enum libbpf_print_level level, const char* format, va_list args) {
  // libbpf's own warnings are noise when an alternative we already ruled out fails; show them
  // with -v, and debug output with -vv.
  if (log::verbosity() == 0 || (level == LIBBPF_DEBUG && log::verbosity() < 2)) return 0;
  return std::vfprintf(stderr, format, args);
}

void print_overview() {
  fmt::print("memscope {} — where a Linux machine's memory goes, with eBPF\n\n", MEMSCOPE_VERSION);
  fmt::print("Usage: memscope TOOL [options]   (or run a symlink named after the tool)\n\nTools:\n");
  for (const auto* tool : tool_registry()) fmt::print("  {:<12} {}\n", tool->name, tool->summary);
  fmt::print("\n`memscope TOOL --help` documents every option of a tool.\n");
}

int run_tool(const ToolDescriptor& descriptor, std::vector<std::string> args) {
  std::unique_ptr<Tool> tool = descriptor.create();
  CLI::App app{descriptor.summary, descriptor.name};
  CommonOptions options;
  add_common_options(app, options, tool->common_options());
  tool->add_options(app);
  std::reverse(args.begin(), args.end());  // CLI11 takes the arguments in reverse order
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp&) {
    fmt::print("{}", app.help());
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    fmt::print("{}", app.help("", CLI::AppFormatMode::All));
    return 0;
  } catch (const CLI::ParseError& error) {
    fmt::print(stderr, "memscope {}: {} (see --help)\n", descriptor.name, error.what());
    return 2;
  }
  log::verbosity() = options.verbose;
  libbpf_set_print(print_libbpf);

  try {
    validate_common_options(options, tool->common_options());
    tool->validate(options);
    const KernelFeatures& features = system_kernel_features();
    if (tool->needs_bpf()) {
      if (std::string missing = missing_bpf_privileges(); !missing.empty()) throw FatalError(missing);
      if (!features.has_btf())
        throw FatalError("this kernel has no BTF (/sys/kernel/btf/vmlinux is missing; CONFIG_DEBUG_INFO_BTF=y is needed)");
    }
    std::vector<ProbeSpec> specs = tool->probes(features);
    auto resolver = ProbeResolver::create(features, options.probe_mode);
    if (!resolver) throw FatalError(resolver.error().message);
    auto resolved = resolver->resolve_all(specs);
    if (!resolved) throw FatalError(resolved.error().message);
    for (const auto& probe : *resolved) {
      if (probe.available) log::verbose("{}: using {}", probe.event, probe.describe());
      else log::verbose("{}: unavailable ({})", probe.event, probe.why_unavailable);
    }
    symbols::StackSymbolizer symbolizer;
    output::SinkOptions sink_options;
    sink_options.format = options.json ? output::Format::Json
                          : options.folded ? output::Format::Folded
                                           : output::Format::Text;
    sink_options.timestamps = options.timestamps;
    auto sink = output::make_sink(sink_options, symbolizer);
    if (!options.pprof_path.empty()) sink = output::with_pprof_file(std::move(sink), options.pprof_path, symbolizer);
    ToolContext context{options, features, specs, *resolved, *sink, symbolizer};
    return tool->run(context);
  } catch (const FatalError& error) {
    fmt::print(stderr, "memscope {}: {}\n", descriptor.name, error.what());
    return 1;
  } catch (const std::exception& error) {
    fmt::print(stderr, "memscope {}: internal error: {}\n", descriptor.name, error.what());
    return 1;
  }
}

}  // namespace
}  // namespace memscope

int main(int argc, char** argv) {
  using namespace memscope;
  // Line by line even into a pipe (| grep, | jq).
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string invoked = basename(argv[0]);
  const ToolDescriptor* descriptor = invoked == "memscope" ? nullptr : find_tool(invoked);
  if (!descriptor) {
    if (args.empty()) {
      print_overview();
      return 2;
    }
    if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
      print_overview();
      return 0;
    }
    if (args[0] == "--version") {
      fmt::print("memscope {}\n", MEMSCOPE_VERSION);
      return 0;
    }
    descriptor = find_tool(args[0]);
    if (!descriptor) {
      fmt::print(stderr, "memscope: unknown tool '{}' (memscope --help lists the tools)\n", args[0]);
      return 2;
    }
    args.erase(args.begin());
  }
  return run_tool(*descriptor, args);
}
