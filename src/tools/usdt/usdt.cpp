// usdt: list the USDT probes of a binary or a process (`-l`, like `bpftrace -l 'usdt:…'`), or trace
// any probe with its arguments.
#include "tools/usdt/usdt.h"

#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

#include "output/sink.hpp"
#include "runtime/bpf_skeleton.hpp"
#include "runtime/tool.hpp"
#include "runtime/tracing_session.hpp"
#include "runtime/usdt_notes.hpp"
#include "tools/usdt/usdt_attach.hpp"
#include "usdt_trace.skel.h"

namespace memscope {
namespace {

const output::Schema kListSchema = {
    "usdt_probe",
    {
        {"probe", "PROBE", output::FieldType::String},
        {"path", "PATH", output::FieldType::String},
        {"provider", "PROVIDER", output::FieldType::String},
        {"name", "NAME", output::FieldType::String},
        {"sites", "SITES", output::FieldType::UInt},
        {"address", "ADDRESS", output::FieldType::Hex},
        {"file_offset", "OFFSET", output::FieldType::Hex},
        {"semaphore", "SEMAPHORE", output::FieldType::Hex},
        {"semaphore_file_offset", "SEMAPHORE_OFFSET", output::FieldType::Hex},
        {"arguments", "ARGUMENTS", output::FieldType::String},
    },
    "{0}",
};

// -v adds where the probe is and how its arguments are passed, as `bpftrace -lv` does.
const output::Schema kListVerboseSchema = {
    kListSchema.name,
    kListSchema.fields,
    "{0}  address {5} offset {6} semaphore {7}  args: {9}",
};

const output::Schema kEventTextSchema = {
    "usdt",
    {
        {"time", "TIME", output::FieldType::String, 8, true},
        {"pid", "PID", output::FieldType::UInt, 7},
        {"comm", "COMM", output::FieldType::String, 16, true},
        {"probe", "PROBE", output::FieldType::String, 24, true},
        {"args", "ARGS", output::FieldType::String, 0, true},
    },
};

std::string fixed_string(const char* text, size_t size) { return std::string(text, strnlen(text, size)); }

bool is_file(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

class UsdtTool : public SkeletonTool<usdt_trace> {
 public:
  UsdtTool() : SkeletonTool(MEMSCOPE_SKELETON_OPS(usdt_trace)) {}

  CommonOptionSet common_options() const override {
    CommonOptionSet set;
    set.timestamps = false;  // TIME is always the first column
    set.reserved_letters = {'l'};
    return set;
  }

  void add_options(CLI::App& app) override {
    app.add_flag("-l,--list", list_, "List the probes of BINARY, or of every object -p PID maps");
    app.add_option("target", targets_,
                   "PROVIDER:NAME [BINARY] to trace (wildcards allowed); with -l: [BINARY] [PROVIDER:NAME]");
  }

  void validate(const CommonOptions& options) override {
    for (const auto& target : targets_) {
      if (binary_.empty() && (target.find('/') != std::string::npos || is_file(target)))
        binary_ = target;
      else if (pattern_.empty())
        pattern_ = target;
      else
        throw FatalError(
            fmt::format("unexpected argument '{}' (usage: usdt [-l] PROVIDER:NAME [BINARY])", target));
    }
    if (!binary_.empty() && !is_file(binary_)) throw FatalError(fmt::format("{}: no such file", binary_));
    // Probes are named by absolute path, as bpftrace names them.
    if (char* absolute = binary_.empty() ? nullptr : realpath(binary_.c_str(), nullptr)) {
      binary_ = absolute;
      free(absolute);
    }
    if (binary_.empty() && options.pid <= 0)
      throw FatalError(list_ ? "give a BINARY or -p PID to list the probes of"
                             : "give a BINARY or -p PID whose probes to trace");
    if (!list_ && pattern_.empty())
      throw FatalError("give the probe to trace as PROVIDER:NAME (usdt -l lists them)");
  }

  bool needs_bpf() const override { return !list_; }

  std::vector<ProbeSpec> probes(const KernelFeatures&) const override {
    if (list_) return {};
    return {{"USDT probe", {{HookKind::Uprobe, {{"usdt_probe", {}}}}}}};
  }

  int run(ToolContext& context) override { return list_ ? list(context) : trace_probes(context); }

 private:
  int list(ToolContext& context) {
    const CommonOptions& options = context.options;
    std::vector<usdt::Probe> probes = usdt::probes_of_target(options.pid, binary_);
    // One line per probe name in each file, as bpftrace lists them; `sites` counts its locations.
    std::map<std::tuple<std::string, std::string, std::string>, std::pair<usdt::Probe, uint64_t>> unique;
    std::vector<std::tuple<std::string, std::string, std::string>> order;
    for (const auto& probe : probes) {
      if (!pattern_.empty() && !usdt::probe_matches(probe, pattern_)) continue;
      auto key = std::make_tuple(probe.path, probe.provider, probe.name);
      auto [it, inserted] = unique.emplace(key, std::make_pair(probe, 0));
      if (inserted) order.push_back(key);
      it->second.second++;
    }
    const output::Schema& schema = options.verbose > 0 ? kListVerboseSchema : kListSchema;
    for (const auto& key : order) {
      const auto& [probe, sites] = unique[key];
      context.sink.record(schema, {
                                      fmt::format("usdt:{}:{}:{}", probe.path, probe.provider, probe.name),
                                      probe.path,
                                      probe.provider,
                                      probe.name,
                                      sites,
                                      probe.address,
                                      probe.file_offset,
                                      probe.semaphore,
                                      probe.semaphore_file_offset,
                                      probe.argument_text,
                                  });
    }
    if (order.empty()) {
      std::string where = binary_.empty() ? fmt::format("the objects PID {} maps", options.pid) : binary_;
      fmt::print(stderr, "memscope usdt: no USDT probes{} in {}\n",
                 pattern_.empty() ? "" : " matching " + pattern_, where);
    }
    return 0;
  }

  int trace_probes(ToolContext& context) {
    const CommonOptions& options = context.options;
    std::vector<usdt::Probe> matching;
    for (auto& probe : usdt::probes_of_target(options.pid, binary_))
      if (usdt::probe_matches(probe, pattern_)) matching.push_back(std::move(probe));
    if (matching.empty()) {
      std::string where = binary_.empty() ? fmt::format("the objects PID {} maps", options.pid) : binary_;
      throw FatalError(fmt::format("no USDT probe matches {} in {} (memscope usdt -l {} lists them)",
                                   pattern_, where,
                                   binary_.empty() ? fmt::format("-p {}", options.pid) : binary_));
    }

    attached_ = usdt::group_probe_sites(matching);
    std::string what = attached_.size() == 1 ? "usdt:" + attached_.front().probe.path + ":" +
                                                   attached_.front().probe.full_name()
                                             : fmt::format("{} USDT probes", attached_.size());
    trace(context, {.what = what,
                    .attached =
                        [&](Skeleton<usdt_trace>& skel, EventLoop&) {
                          usdt::attach_probes(skel->progs.usdt_probe, skel.links(), options.pid, attached_);
                          if (!options.json) context.sink.header(kEventTextSchema);
                        },
                    .on_record =
                        [&](const void* data, size_t size) {
                          if (size >= sizeof(usdt_event))
                            handle(context, *static_cast<const usdt_event*>(data));
                        }});
    return 0;
  }

  void handle(ToolContext& context, const usdt_event& event) {
    if (event.cookie >= attached_.size()) return;
    const usdt::AttachedProbe& attached = attached_[event.cookie];
    const usdt::Probe& probe = attached.probe;
    size_t count = std::min<size_t>(event.arg_count, USDT_MAX_ARGS);
    std::string time = output::wall_clock_hms();
    std::string comm = fixed_string(event.comm, sizeof(event.comm));
    if (!context.options.json) {
      std::string args;
      for (size_t i = 0; i < count; i++) {
        if (i) args += ' ';
        usdt::ProbeArgument argument =
            i < probe.arguments.size() ? probe.arguments[i] : usdt::ProbeArgument{};
        args += usdt::format_argument(argument, event.args[i]);
      }
      context.sink.record(kEventTextSchema, {time, uint64_t{event.pid}, comm, probe.full_name(), args});
      return;
    }
    const output::Schema& schema = json_schema(event.cookie, count);
    std::vector<output::Value> values = {time,       uint64_t{event.pid}, uint64_t{event.tid},
                                         comm,       probe.provider,      probe.name,
                                         probe.path, uint64_t{count}};
    for (size_t i = 0; i < count; i++) {
      usdt::ProbeArgument argument = i < probe.arguments.size() ? probe.arguments[i] : usdt::ProbeArgument{};
      std::string text = usdt::format_argument(argument, event.args[i]);
      if (argument.is_signed)
        values.emplace_back(static_cast<int64_t>(std::stoll(text)));
      else
        values.emplace_back(static_cast<uint64_t>(std::stoull(text)));
    }
    context.sink.record(schema, values);
  }

  // JSON: one field per argument (arg0, arg1, …), numbers typed by the probe's declaration.
  const output::Schema& json_schema(uint64_t cookie, size_t count) {
    auto key = std::make_pair(cookie, count);
    auto found = json_schemas_.find(key);
    if (found != json_schemas_.end()) return found->second;
    output::Schema schema{"usdt",
                          {
                              {"time", "TIME", output::FieldType::String},
                              {"pid", "PID", output::FieldType::UInt},
                              {"tid", "TID", output::FieldType::UInt},
                              {"comm", "COMM", output::FieldType::String},
                              {"provider", "PROVIDER", output::FieldType::String},
                              {"name", "NAME", output::FieldType::String},
                              {"path", "PATH", output::FieldType::String},
                              {"arg_count", "ARGC", output::FieldType::UInt},
                          }};
    for (size_t i = 0; i < count; i++)
      schema.fields.push_back({fmt::format("arg{}", i), fmt::format("ARG{}", i), output::FieldType::Int});
    return json_schemas_.emplace(key, std::move(schema)).first->second;
  }

  bool list_ = false;
  std::vector<std::string> targets_;
  std::string binary_;
  std::string pattern_;
  std::vector<usdt::AttachedProbe> attached_;
  std::map<std::pair<uint64_t, size_t>, output::Schema> json_schemas_;
};

}  // namespace
}  // namespace memscope

MEMSCOPE_TOOL(tool_usdt, "usdt",
              "List USDT probes of a binary or process (-l), or trace one with its arguments", UsdtTool)
