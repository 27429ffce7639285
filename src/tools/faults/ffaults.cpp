// ffaults: page faults by file, the book's ffaults.bt (kprobe:filemap_fault counted by
// vmf->vma->vm_file's name), with full paths and, on the tracepoint hook, anonymous memory apart.
#include "ffaults.h"

#include <bpf/bpf.h>
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstring>
#include <map>
#include <tuple>

#include "ffaults.skel.h"
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

const output::Schema kFileSchema = {
    "file_faults",
    {
        {"faults", "FAULTS", output::FieldType::UInt, 10},
        {"kind", "KIND", output::FieldType::String, 6, true},
        {"file", "FILE", output::FieldType::String, 0, true},
    },
};

const char* kind_name(uint32_t kind) {
  switch (kind) {
    case FFAULTS_FILE:
      return "file";
    case FFAULTS_ANON:
      return "anon";
    case FFAULTS_HEAP:
      return "heap";
    case FFAULTS_STACK:
      return "stack";
    case FFAULTS_UNMAPPED:
      return "none";
    case FFAULTS_UNKNOWN:
      return "?";
  }
  return "?";
}

// The names /proc/PID/maps uses, so that they read the same.
std::string anonymous_label(uint32_t kind) {
  switch (kind) {
    case FFAULTS_ANON:
      return "[anon]";
    case FFAULTS_HEAP:
      return "[heap]";
    case FFAULTS_STACK:
      return "[stack]";
    case FFAULTS_UNMAPPED:
      return "[unmapped]";
    default:
      return "[unknown]";
  }
}

std::string path_of(const ffaults_file_name& name) {
  std::string path;
  uint32_t depth = std::min<uint32_t>(name.depth, FFAULTS_PATH_DEPTH);
  for (uint32_t i = depth; i-- > 0;) {
    std::string component(name.names[i], strnlen(name.names[i], FFAULTS_NAME_LEN));
    if (component.empty() || component == "/") continue;  // a file system's root dentry is named "/"
    path += "/" + component;
  }
  if (path.empty()) path = "/";
  return name.truncated ? "..." + path : path;
}

class FileFaultsTool : public SkeletonTool<ffaults> {
 public:
  FileFaultsTool() : SkeletonTool(MEMSCOPE_SKELETON_OPS(ffaults)) {}

  CommonOptionSet common_options() const override {
    CommonOptionSet set;
    set.interval = true;
    set.reserved_letters = {'r'};
    return set;
  }

  void add_options(CLI::App& app) override {
    app.add_option("-r,--maxrows", max_rows_, "Rows shown per report, most faults first; 0 = all (default)")
        ->check(non_negative_number());
  }

  std::vector<ProbeSpec> probes(const KernelFeatures&) const override {
    // filemap_fault first, as in the book; the exception tracepoints with a VMA lookup where
    // kprobes and fentry are missing.
    return {function_then_fault_tracepoints("page fault by file", "ffaults", "filemap_fault")};
  }

  int run(ToolContext& context) override {
    const CommonOptions& options = context.options;
    const ResolvedProbe& probe = context.resolved.front();
    // filemap_fault only runs for page-cache files: anonymous memory is not seen there.
    bool files_only = !looks_up_mappings(probe.kind);
    int lookups_fd = -1;
    trace(context,
          {.what = files_only ? "page faults by file (filemap_fault: files only)" : "page faults by file",
           .attached =
               [&](Skeleton<ffaults>& skel, EventLoop&) {
                 counts_fd_ = bpf_map__fd(skel->maps.file_faults);
                 lookups_fd = bpf_map__fd(skel->maps.vma_lookups);
               },
           .on_record =
               [&](const void* data, size_t size) {
                 if (size < sizeof(ffaults_file_name)) return;
                 const auto& name = *static_cast<const ffaults_file_name*>(data);
                 names_[file_id(name.file)] = path_of(name);
               },
           .on_interval = [&] { report(context, true); },
           .finish =
               [&](const TracingOutcome& outcome) {
                 // With intervals, the last (partial) interval's increments, as the others.
                 if (options.interval <= 0 || outcome.reason != StopReason::Count)
                   report(context, options.interval > 0);
                 // Faults whose mapping could not be looked up are shown as [unknown] rows, not lost.
                 report_drops(context.sink, outcome.drops);
                 if (!files_only) log::verbose("{}", VmaLookupCounts::read(lookups_fd).describe());
                 log::verbose("hook: {}", probe.describe());
               }});
    return 0;
  }

 private:
  struct Row {
    std::string file;
    std::string kind;
    uint64_t faults;
  };

  void report(ToolContext& context, bool interval_report) {
    // Rows by name: a file replaced under the same path (a new inode) still reads as one file.
    std::map<std::pair<std::string, std::string>, uint64_t> by_name;
    // An interval report shows what each counter added since the previous one (CounterDeltas).
    auto counts = interval_report ? interval_counts_.take(counts_fd_) : read_hash_map<ffaults_key, uint64_t>(counts_fd_);
    for (const auto& [key, faults] : counts) {
      std::string name;
      if (key.kind == FFAULTS_FILE) {
        auto known = names_.find(file_id(key.file));
        name = known != names_.end() ? known->second
                                     : fmt::format("[inode {} on {}:{}]", key.file.ino, key.file.dev >> 20,
                                                   key.file.dev & 0xfffff);
      } else {
        name = anonymous_label(key.kind);
      }
      by_name[{name, kind_name(key.kind)}] += faults;
    }
    std::vector<Row> rows;
    for (const auto& [name_kind, faults] : by_name)
      rows.push_back({name_kind.first, name_kind.second, faults});
    std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
      return a.faults != b.faults ? a.faults > b.faults : a.file < b.file;
    });
    if (max_rows_ > 0 && rows.size() > max_rows_) rows.resize(max_rows_);

    if (context.options.interval > 0 && !context.options.json) context.sink.message("");
    context.sink.header(kFileSchema);
    for (const auto& row : rows) context.sink.record(kFileSchema, {uint64_t{row.faults}, row.kind, row.file});
  }

  size_t max_rows_ = 0;
  int counts_fd_ = -1;
  CounterDeltas<ffaults_key> interval_counts_;
  using FileId = std::tuple<uint64_t, uint32_t, uint32_t>;
  static FileId file_id(const ffaults_file_id& file) { return {file.ino, file.dev, file.generation}; }
  std::map<FileId, std::string> names_;
};

}  // namespace
}  // namespace memscope

MEMSCOPE_TOOL(tool_ffaults, "ffaults",
              "Count page faults by file (anonymous memory as [anon], [heap], [stack])", FileFaultsTool)
