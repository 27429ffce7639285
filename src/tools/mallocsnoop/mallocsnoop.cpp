// mallocsnoop: glibc's allocator events from its memory_* USDT probes (heap growth with sbrk and
// mmapped heaps, arenas, retries, mallopt and tunables, the tcache double-free check), decoded by
// name; per-interval counts with an interval. Refuses in one line when the libc has no probes.
#include "mallocsnoop.h"

#include <fnmatch.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <tuple>

#include "mallocsnoop.skel.h"
#include "output/sink.hpp"
#include "runtime/bpf_skeleton.hpp"
#include "runtime/tool.hpp"
#include "runtime/user_stacks.hpp"
#include "runtime/tracing_session.hpp"
#include "runtime/usdt_notes.hpp"
#include "symbols/process_maps.hpp"
#include "symbols/symbolizer.hpp"
#include "tools/mallocsnoop/glibc_memory_probes.hpp"
#include "tools/usdt/usdt_attach.hpp"

namespace memscope {
namespace {

using glibc::ArgumentKind;
using glibc::ProbeMeaning;

const output::Schema kEventTextSchema = {
    "malloc_probe",
    {
        {"time", "TIME", output::FieldType::String, 8, true},
        {"pid", "PID", output::FieldType::UInt, 7},
        {"comm", "COMM", output::FieldType::String, 16, true},
        {"probe", "PROBE", output::FieldType::String, 30, true},
        {"details", "DETAILS", output::FieldType::String, 0, true},
    },
};

const output::Schema kCountSchema = {
    "malloc_probe_count",
    {
        {"time", "TIME", output::FieldType::String, 8, true},
        {"pid", "PID", output::FieldType::UInt, 7},
        {"comm", "COMM", output::FieldType::String, 16, true},
        {"probe", "PROBE", output::FieldType::String, 30, true},
        {"count", "COUNT", output::FieldType::UInt, 8},
    },
};

constexpr const char* kDoubleFreeProbe = "memory_tcache_double_free";

std::string fixed_string(const char* text, size_t size) { return std::string(text, strnlen(text, size)); }

std::string basename_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// libc.so.6, libc-2.31.so, libc.so (musl): the C library a process maps.
bool is_libc(const std::string& path) {
  std::string name = basename_of(path);
  return fnmatch("libc.so*", name.c_str(), 0) == 0 || fnmatch("libc-[0-9]*.so", name.c_str(), 0) == 0;
}

// The libc memscope itself runs with: the system's, for tracing every process.
std::string own_libc() {
  for (const auto& object : usdt::mapped_objects(getpid()))
    if (is_libc(object)) return object;
  return "/lib/x86_64-linux-gnu/libc.so.6";
}

class MallocSnoopTool : public SkeletonTool<mallocsnoop> {
 public:
  MallocSnoopTool() : SkeletonTool(MEMSCOPE_SKELETON_OPS(mallocsnoop)) {}

  CommonOptionSet common_options() const override {
    CommonOptionSet set;
    set.interval = true;     // with an interval: counts per interval instead of events
    set.timestamps = false;  // TIME is always the first column
    set.user_stacks = true;  // the double-free probe takes a stack
    return set;
  }

  void add_options(CLI::App& app) override {
    app.add_option("-O,--lib", library_,
                   "The library whose libc:memory_* probes to trace (default: the object of -p PID "
                   "that has them, its libc or its own executable; or the system's libc)");
  }

  // Runs before any BPF: a libc without probes is refused the same way for every user.
  void validate(const CommonOptions& options) override {
    if (char* absolute = library_.empty() ? nullptr : realpath(library_.c_str(), nullptr)) {
      library_ = absolute;
      free(absolute);
    }
    if (library_.empty() && options.pid > 0) {
      validate_process_objects(options.pid);
      return;
    }
    std::string display = library_.empty() ? own_libc() : library_;
    auto found = usdt::read_file_probes(display, display);
    if (!found) throw FatalError(found.error().message);
    take_memory_probes(std::move(*found), display);
  }

  std::vector<ProbeSpec> probes(const KernelFeatures&) const override {
    return {{"glibc memory probes", {{HookKind::Uprobe, {{"mallocsnoop_probe", {}}}}}}};
  }

  int run(ToolContext& context) override {
    const CommonOptions& options = context.options;
    attached_ = usdt::group_probe_sites(probes_);
    counting_ = options.interval > 0;
    trace(context, {.what = fmt::format("{} glibc memory probes in {}", attached_.size(), library_display_),
                    .attached =
                        [&](Skeleton<mallocsnoop>& skel, EventLoop&) {
                          usdt::attach_probes(
                              skel->progs.mallocsnoop_probe, skel.links(), options.pid, attached_,
                              [](const usdt::Probe& probe) -> uint64_t {
                                return probe.name == kDoubleFreeProbe ? MALLOCSNOOP_COOKIE_STACK : 0;
                              });
                          stacks_fd_ = bpf_map__fd(skel->maps.stacks);
                          user_stacks_ = context.user_stacks;
                          if (options.pid > 0) context.symbolizer.prepare(options.pid);
                          if (!options.json) context.sink.header(counting_ ? kCountSchema : kEventTextSchema);
                        },
                    .on_record =
                        [&](const void* data, size_t size) {
                          if (size >= sizeof(mallocsnoop_event))
                            handle(context, *static_cast<const mallocsnoop_event*>(data));
                        },
                    .on_interval = [&] { report_counts(context); },
                    .finish =
                        [&](const TracingOutcome& outcome) {
                          if (outcome.reason != StopReason::Count) report_counts(context);
                          report_drops(context.sink, outcome.drops);
                        }});
    return 0;
  }

 private:
  static constexpr const char* kSubstitutes =
      "nearest substitutes: `memscope brkstack` (brk growth by stack), `memscope mmapsnoop` (mmap "
      "growth), `memscope memleak` (outstanding allocations)";

  // Keeps the libc:memory_* probes of `found`, or refuses the object in one line.
  void take_memory_probes(usdt::FileProbes found, const std::string& display) {
    if (!found.has_notes_section)
      throw FatalError(
          fmt::format("{} has no USDT notes (no .note.stapsdt section): this glibc was built "
                      "without SystemTap probes, as Debian's is; {}",
                      display, kSubstitutes));
    for (auto& probe : found.probes)
      if (probe.provider == "libc" && probe.name.rfind("memory_", 0) == 0) probes_.push_back(std::move(probe));
    if (probes_.empty())
      throw FatalError(fmt::format("{} has no libc:memory_* USDT probes ({} other probes in .note.stapsdt); {}",
                                   display, found.probes.size(), kSubstitutes));
    library_display_ = display;
  }

  // -p without -O: the probes may be in any object the process maps — its libc, or its own
  // executable when it carries a probe-enabled C library statically. The first object with them
  // wins; without any, the refusal names the process's libc, as that is where they belong.
  void validate_process_objects(pid_t pid) {
    std::string libc;
    for (const auto& object : usdt::mapped_objects(pid)) {
      if (is_libc(object)) libc = object;
      auto found = usdt::read_file_probes(usdt::path_in_process(pid, object), object);
      if (!found) continue;
      bool has_memory_probes = std::any_of(found->probes.begin(), found->probes.end(), [](const usdt::Probe& probe) {
        return probe.provider == "libc" && probe.name.rfind("memory_", 0) == 0;
      });
      if (has_memory_probes) {
        take_memory_probes(std::move(*found), object);
        return;
      }
    }
    if (libc.empty())
      throw FatalError(fmt::format(
          "PID {} maps no libc and no object with libc:memory_* probes (statically linked?); name the "
          "library with -O PATH",
          pid));
    auto found = usdt::read_file_probes(usdt::path_in_process(pid, libc), libc);
    if (!found) throw FatalError(found.error().message);
    take_memory_probes(std::move(*found), libc);
  }

  struct DecodedArgument {
    const char* name;
    ArgumentKind kind;
    uint64_t raw;
    int64_t as_signed;
  };

  std::vector<DecodedArgument> decode(const usdt::Probe& probe, const ProbeMeaning* meaning,
                                      const mallocsnoop_event& event) {
    std::vector<DecodedArgument> decoded;
    size_t count = std::min<size_t>(event.arg_count, MALLOCSNOOP_MAX_ARGS);
    static const char* kNumbered[] = {"arg0", "arg1", "arg2", "arg3", "arg4", "arg5"};
    for (size_t i = 0; i < count; i++) {
      usdt::ProbeArgument declared = i < probe.arguments.size() ? probe.arguments[i] : usdt::ProbeArgument{};
      // Sign-extend from the declared width: an int argument is -1, not 4294967295.
      int64_t as_signed = static_cast<int64_t>(event.args[i]);
      if (declared.size < 8) {
        unsigned shift = 64 - 8 * static_cast<unsigned>(declared.size);
        as_signed = static_cast<int64_t>(event.args[i] << shift) >> shift;
      }
      bool known = meaning && i < meaning->arguments.size();
      decoded.push_back({known ? meaning->arguments[i].name : kNumbered[i],
                         known ? meaning->arguments[i].kind
                               : (declared.is_signed ? ArgumentKind::Int : ArgumentKind::Bytes),
                         event.args[i], as_signed});
    }
    return decoded;
  }

  void handle(ToolContext& context, const mallocsnoop_event& event) {
    uint64_t index = event.cookie & MALLOCSNOOP_COOKIE_INDEX_MASK;
    if (index >= attached_.size()) return;
    const usdt::Probe& probe = attached_[index].probe;
    const ProbeMeaning* meaning = glibc::find_probe_meaning(probe.name);
    std::string comm = fixed_string(event.comm, sizeof(event.comm));
    if (seen_pids_.insert(event.pid).second) context.symbolizer.prepare(static_cast<pid_t>(event.pid));
    std::vector<DecodedArgument> arguments = decode(probe, meaning, event);
    bool double_free = probe.name == kDoubleFreeProbe;

    if (counting_) {
      counts_[std::make_tuple(event.pid, comm, probe.name)]++;
    } else if (context.options.json) {
      context.sink.record(json_schema(probe.name, arguments, double_free),
                          json_values(event, comm, probe, arguments));
    } else {
      std::string details;
      for (const auto& argument : arguments) {
        if (!details.empty()) details += ' ';
        details += fmt::format("{}={}", argument.name, text_value(argument));
      }
      if (double_free) details += " [double free]";
      context.sink.record(kEventTextSchema,
                          {output::wall_clock_hms(), uint64_t{event.pid}, comm, probe.name, details});
    }
    if (double_free) report_double_free(context, event, comm, arguments);
  }

  static std::string text_value(const DecodedArgument& argument) {
    switch (argument.kind) {
      case ArgumentKind::Pointer:
        return fmt::format("{:#x}", argument.raw);
      case ArgumentKind::Bytes:
        return std::to_string(argument.raw);
      case ArgumentKind::Int:
        return std::to_string(argument.as_signed);
      case ArgumentKind::MalloptParam:
        return glibc::mallopt_param_name(argument.as_signed);
    }
    return "";
  }

  // JSON: one field per argument, named by its meaning, typed by its kind.
  const output::Schema& json_schema(const std::string& probe_name,
                                    const std::vector<DecodedArgument>& arguments, bool double_free) {
    auto key = std::make_pair(probe_name, arguments.size());
    auto found = json_schemas_.find(key);
    if (found != json_schemas_.end()) return found->second;
    output::Schema schema{"malloc_probe",
                          {
                              {"time", "TIME", output::FieldType::String},
                              {"pid", "PID", output::FieldType::UInt},
                              {"tid", "TID", output::FieldType::UInt},
                              {"comm", "COMM", output::FieldType::String},
                              {"probe", "PROBE", output::FieldType::String},
                          }};
    for (const auto& argument : arguments) {
      switch (argument.kind) {
        case ArgumentKind::Pointer:
          schema.fields.push_back({argument.name, argument.name, output::FieldType::Hex});
          break;
        case ArgumentKind::Bytes:
          schema.fields.push_back({argument.name, argument.name, output::FieldType::Bytes});
          break;
        case ArgumentKind::Int:
          schema.fields.push_back({argument.name, argument.name, output::FieldType::Int});
          break;
        case ArgumentKind::MalloptParam:
          schema.fields.push_back({argument.name, argument.name, output::FieldType::Int});
          schema.fields.push_back({"param_name", "PARAM", output::FieldType::String});
          break;
      }
    }
    if (double_free) schema.fields.push_back({"error", "ERROR", output::FieldType::String});
    return json_schemas_.emplace(key, std::move(schema)).first->second;
  }

  std::vector<output::Value> json_values(const mallocsnoop_event& event, const std::string& comm,
                                         const usdt::Probe& probe,
                                         const std::vector<DecodedArgument>& arguments) {
    std::vector<output::Value> values = {output::wall_clock_hms(), uint64_t{event.pid}, uint64_t{event.tid},
                                         comm, probe.name};
    for (const auto& argument : arguments) {
      switch (argument.kind) {
        case ArgumentKind::Pointer:
        case ArgumentKind::Bytes:
          values.emplace_back(argument.raw);
          break;
        case ArgumentKind::Int:
          values.emplace_back(argument.as_signed);
          break;
        case ArgumentKind::MalloptParam:
          values.emplace_back(argument.as_signed);
          values.emplace_back(glibc::mallopt_param_name(argument.as_signed));
          break;
      }
    }
    if (probe.name == kDoubleFreeProbe) values.emplace_back(std::string("double free"));
    return values;
  }

  // The "double free" error class: glibc's tcache found the chunk already freed. The user stack of
  // the free() call says who freed it twice.
  void report_double_free(ToolContext& context, const mallocsnoop_event& event, const std::string& comm,
                          const std::vector<DecodedArgument>& arguments) {
    uint64_t pointer = arguments.size() > 0 ? arguments[0].raw : 0;
    int64_t bin = arguments.size() > 1 ? arguments[1].as_signed : -1;
    output::StackReport report;
    report.name = "double_free";
    output::StackEntry entry;
    entry.stack.pid = static_cast<pid_t>(event.pid);
    user_stacks_->read_into(entry.stack, stacks_fd_, event.user_stack_id);
    entry.comm = comm;
    entry.values = {{"pointer", pointer}, {"tid", event.tid}};
    entry.labels = {{"error", "double free"}, {"probe", kDoubleFreeProbe}};
    entry.weight = 1;
    entry.heading =
        fmt::format("double free of {:#x} (tcache bin {}) in PID {} ({}), TID {}{}", pointer, bin, event.pid,
                    comm, event.tid, event.user_stack_id < 0 ? " [stack not captured]" : ", freed at:");
    report.entries.push_back(std::move(entry));
    context.sink.stacks(report);
  }

  void report_counts(ToolContext& context) {
    if (!counting_) return;
    std::vector<std::pair<std::tuple<uint32_t, std::string, std::string>, uint64_t>> rows(counts_.begin(),
                                                                                          counts_.end());
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    std::string time = output::wall_clock_hms();
    for (const auto& [key, count] : rows) {
      const auto& [pid, comm, name] = key;
      context.sink.record(kCountSchema, {time, uint64_t{pid}, comm, name, count});
    }
    counts_.clear();
  }

  std::string library_;
  std::string library_display_;
  std::vector<usdt::Probe> probes_;
  std::vector<usdt::AttachedProbe> attached_;
  int stacks_fd_ = -1;
  const UserStacks* user_stacks_ = nullptr;  // the runtime step's, while run() traces
  bool counting_ = false;
  std::set<uint32_t> seen_pids_;
  std::map<std::tuple<uint32_t, std::string, std::string>, uint64_t> counts_;
  std::map<std::pair<std::string, size_t>, output::Schema> json_schemas_;
};

}  // namespace
}  // namespace memscope

MEMSCOPE_TOOL(tool_mallocsnoop, "mallocsnoop",
              "Trace glibc's allocator events (memory_* USDT probes): heap growth, arenas, double frees",
              MallocSnoopTool)
