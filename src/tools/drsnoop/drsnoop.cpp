// drsnoop: each direct reclaim with the task that stalled in it, its latency and the pages it
// freed (BCC's drsnoop); with -m also memory cgroup reclaim, which on cgroup hosts is usually what a
// task stalls in; with -e the system's free memory when the reclaim began.
#include "drsnoop.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "drsnoop.skel.h"
#include "runtime/bpf_skeleton.hpp"
#include "runtime/event_loop.hpp"
#include "runtime/kernel_introspection.hpp"
#include "runtime/log.hpp"
#include "runtime/ring_buffer_reader.hpp"
#include "runtime/tool.hpp"
#include "runtime/tracing_session.hpp"

namespace memscope {
namespace {

std::string fixed_string(const char* text, size_t size) { return std::string(text, strnlen(text, size)); }

// The address /proc/kallsyms gives a data symbol, if it lists it (0 when not, or hidden).
uint64_t kallsyms_data_symbol_address(const std::string& name) {
  std::ifstream in("/proc/kallsyms");
  std::string line;
  while (std::getline(in, line)) {
    // "ffffffff82a1b2c0 D vm_zone_stat"
    std::istringstream fields(line);
    std::string address, type, symbol;
    if (fields >> address >> type >> symbol && symbol == name) return std::strtoull(address.c_str(), nullptr, 16);
  }
  return 0;
}

std::optional<uint64_t> meminfo_free_kb() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t value;
  std::string unit;
  while (in >> key >> value) {
    std::getline(in, unit);
    if (key == "MemFree:") return value;
  }
  return std::nullopt;
}

ProbeSpec reclaim_spec(const std::string& event, const std::string& kind, const std::string& begin,
                       const std::string& end) {
  auto alternative = [&](HookKind hook, const char* suffix, const std::string& prefix) {
    return HookAlternative{hook,
                           {{"drsnoop_" + kind + "_begin" + suffix, {prefix + begin}},
                            {"drsnoop_" + kind + "_end" + suffix, {prefix + end}}}};
  };
  return {event,
          {alternative(HookKind::RawTp, "_raw_tp", ""), alternative(HookKind::TpBtf, "_tp_btf", ""),
           alternative(HookKind::Tracepoint, "_tracepoint", "vmscan:")}};
}

class DrsnoopTool : public SkeletonTool<drsnoop> {
 public:
  DrsnoopTool() : SkeletonTool(MEMSCOPE_SKELETON_OPS(drsnoop)) {}

  CommonOptionSet common_options() const override {
    CommonOptionSet set;
    set.kernel_threads = true;  // a kernel thread that allocates reclaims directly too
    set.reserved_letters = {'e', 'm', 'U', 'n'};
    return set;
  }

  void add_options(CLI::App& app) override {
    app.add_flag("-e,--extended", extended_,
                 "Show the system's free memory (FREE(KB)) when each reclaim began");
    app.add_flag("-m,--memcg", memcg_,
                 "Also trace memory cgroup reclaim (a cgroup at its limit); adds KIND and MEMCG columns");
    app.add_flag("-U,--print-uid", print_uid_, "Print a UID column");
    app.add_option("-n,--name", name_substring_, "Only print tasks whose command name contains this text");
  }

  std::vector<ProbeSpec> probes(const KernelFeatures&) const override {
    std::vector<ProbeSpec> specs = {reclaim_spec("direct reclaim", "direct", "mm_vmscan_direct_reclaim_begin",
                                                 "mm_vmscan_direct_reclaim_end")};
    if (memcg_)
      specs.push_back(reclaim_spec("memcg reclaim", "memcg", "mm_vmscan_memcg_reclaim_begin",
                                   "mm_vmscan_memcg_reclaim_end"));
    return specs;
  }

  int run(ToolContext& context) override {
    trace(context, {.what = memcg_ ? "direct and memory cgroup reclaim" : "direct reclaim",
                    .configure =
                        [&](drsnoop& skel) {
                          if (!extended_) return;
                          skel.rodata->vm_zone_stat_address = kallsyms_data_symbol_address("vm_zone_stat");
                          free_from_kernel_ = skel.rodata->vm_zone_stat_address != 0;
                          log::verbose("free memory: {}",
                                       free_from_kernel_
                                           ? "vm_zone_stat[NR_FREE_PAGES], read in BPF at reclaim begin"
                                           : "/proc/meminfo MemFree when the event is printed "
                                             "(vm_zone_stat is not in /proc/kallsyms)");
                        },
                    .attached =
                        [&](auto&, EventLoop&) {
                          schema_ = make_schema(context.options);
                          context.sink.header(schema_);
                        },
                    .on_record =
                        [&](const void* data, size_t size) {
                          if (size >= sizeof(drsnoop_event))
                            handle(context, *static_cast<const drsnoop_event*>(data));
                        }});
    return 0;
  }

 private:
  output::Schema make_schema(const CommonOptions& options) const {
    using output::FieldType;
    output::Schema schema{"reclaim", {}};
    if (options.json) {
      schema.fields = {
          {"comm", "COMM", FieldType::String}, {"pid", "PID", FieldType::UInt},
          {"tid", "TID", FieldType::UInt},     {"uid", "UID", FieldType::UInt},
          {"kind", "KIND", FieldType::String}, {"latency_ns", "LAT(ms)", FieldType::DurationNs},
          {"pages", "PAGES", FieldType::UInt}, {"memcg", "MEMCG", FieldType::String},
      };
      if (extended_) {
        schema.fields.push_back({"free_kb", "FREE(KB)", FieldType::UInt});
        schema.fields.push_back({"free_source", "SOURCE", FieldType::String});
      }
      return schema;
    }
    // BCC's columns: COMM, PID (the TID with -t), LAT(ms), PAGES, then FREE(KB) with -e.
    if (print_uid_) schema.fields.push_back({"uid", "UID", FieldType::UInt, 6, true});
    schema.fields.push_back({"comm", "COMM", FieldType::String, 16, true});
    schema.fields.push_back({"pid", options.tid ? "TID" : "PID", FieldType::UInt, 7, true});
    schema.fields.push_back({"latency_ns", "LAT(ms)", FieldType::DurationNs, 8});
    schema.fields.push_back({"pages", "PAGES", FieldType::UInt, 6});
    if (extended_) schema.fields.push_back({"free_kb", "FREE(KB)", FieldType::UInt, 10});
    if (memcg_) {
      schema.fields.push_back({"kind", "KIND", FieldType::String, 6, true});
      schema.fields.push_back({"memcg", "MEMCG", FieldType::String, 0, true});
    }
    return schema;
  }

  std::string memcg_path(uint64_t id) {
    if (id == 0) return "";
    auto cached = memcg_paths_.find(id);
    if (cached != memcg_paths_.end()) return cached->second;
    std::string path = cgroup_path_from_id(id, true).value_or(fmt::format("cgroup id {}", id));
    memcg_paths_.emplace(id, path);
    return path;
  }

  void handle(ToolContext& context, const drsnoop_event& event) {
    std::string comm = fixed_string(event.comm, sizeof(event.comm));
    if (!name_substring_.empty() && comm.find(name_substring_) == std::string::npos) return;
    const char* kind = event.kind == DRSNOOP_MEMCG ? "memcg" : "direct";
    uint64_t free_kb = 0;
    std::string free_source;
    if (extended_) {
      if (event.free_pages_known) {
        free_kb = event.free_pages * (static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) / 1024);
        free_source = "vm_zone_stat";
      } else if (auto meminfo = meminfo_free_kb()) {
        free_kb = *meminfo;
        free_source = "meminfo";
      }
    }
    // Every field either schema may hold; each schema picks its own, in its own order.
    const std::map<std::string, output::Value> by_name = {
        {"comm", comm},
        // BCC prints the TID in the PID column when tracing one thread.
        {"pid", uint64_t{context.options.tid && !context.options.json ? event.tid : event.pid}},
        {"tid", uint64_t{event.tid}},
        {"uid", uint64_t{event.uid}},
        {"kind", std::string(kind)},
        {"latency_ns", uint64_t{event.latency_ns}},
        {"pages", uint64_t{event.nr_reclaimed}},
        {"memcg", memcg_path(event.memcg_id)},
        {"free_kb", free_kb},
        {"free_source", free_source},
    };
    std::vector<output::Value> values;
    for (const auto& field : schema_.fields) values.push_back(by_name.at(field.name));
    context.sink.record(schema_, values);
  }

  bool extended_ = false;
  bool memcg_ = false;
  bool print_uid_ = false;
  std::string name_substring_;
  bool free_from_kernel_ = false;
  output::Schema schema_;
  std::map<uint64_t, std::string> memcg_paths_;
};

}  // namespace
}  // namespace memscope

MEMSCOPE_TOOL(tool_drsnoop, "drsnoop",
              "Trace direct reclaim (and memcg reclaim with -m): task, latency, pages freed", DrsnoopTool)
