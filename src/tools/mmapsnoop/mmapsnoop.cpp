// mmapsnoop: every mmap() with protection, flags, offset, size and the file mapped (the book's
// columns), plus the address returned or the error; with --all, munmap() and mremap() too.
#include "mmapsnoop.h"

#include <CLI/CLI.hpp>
#include <cstddef>
#include <cstring>

#include "mmap_decode.hpp"
#include "mmapsnoop.skel.h"
#include "runtime/bpf_skeleton.hpp"
#include "runtime/syscall_hooks.hpp"
#include "runtime/tool.hpp"
#include "runtime/tracing_session.hpp"

namespace memscope {
namespace {

using output::FieldType;

// Text keeps the book's columns (BPF Performance Tools, mmapsnoop); JSON carries every argument,
// the result and the decoded flags, one event kind per syscall.
const output::Schema kTextSchema = {"mmap",
                                    {
                                        {"pid", "PID", FieldType::UInt, 7, true},
                                        {"comm", "COMM", FieldType::String, 16, true},
                                        {"prot", "PROT", FieldType::String, 4, true},
                                        {"map", "MAP", FieldType::String, 5, true},
                                        {"offset_kb", "OFFS(KB)", FieldType::String, 8, true},
                                        {"size_kb", "SIZE(KB)", FieldType::String, 8, true},
                                        {"file", "FILE", FieldType::String, 0, true},
                                    }};

// --all: which call each line is.
const output::Schema kTextAllSchema = {"mmap",
                                       {
                                           {"pid", "PID", FieldType::UInt, 7, true},
                                           {"comm", "COMM", FieldType::String, 16, true},
                                           {"syscall", "CALL", FieldType::String, 6, true},
                                           {"prot", "PROT", FieldType::String, 4, true},
                                           {"map", "MAP", FieldType::String, 5, true},
                                           {"offset_kb", "OFFS(KB)", FieldType::String, 8, true},
                                           {"size_kb", "SIZE(KB)", FieldType::String, 8, true},
                                           {"file", "FILE", FieldType::String, 0, true},
                                       }};

const output::Schema kMmapJson = {"mmap",
                                  {
                                      {"pid", "PID", FieldType::UInt},
                                      {"tid", "TID", FieldType::UInt},
                                      {"comm", "COMM", FieldType::String},
                                      {"ret", "RET", FieldType::Int},
                                      {"addr", "ADDR", FieldType::Hex},
                                      {"error", "ERROR", FieldType::String},
                                      {"len", "LEN", FieldType::Bytes},
                                      {"prot", "PROT", FieldType::Hex},
                                      {"prot_names", "PROT", FieldType::String},
                                      {"flags", "FLAGS", FieldType::Hex},
                                      {"flags_names", "FLAGS", FieldType::String},
                                      {"fd", "FD", FieldType::Int},
                                      {"offset", "OFFSET", FieldType::UInt},
                                      {"addr_hint", "HINT", FieldType::Hex},
                                      {"file", "FILE", FieldType::String},
                                  }};

const output::Schema kMunmapJson = {"munmap",
                                    {
                                        {"pid", "PID", FieldType::UInt},
                                        {"tid", "TID", FieldType::UInt},
                                        {"comm", "COMM", FieldType::String},
                                        {"ret", "RET", FieldType::Int},
                                        {"error", "ERROR", FieldType::String},
                                        {"addr", "ADDR", FieldType::Hex},
                                        {"len", "LEN", FieldType::Bytes},
                                        {"file", "FILE", FieldType::String},
                                    }};

const output::Schema kMremapJson = {"mremap",
                                    {
                                        {"pid", "PID", FieldType::UInt},
                                        {"tid", "TID", FieldType::UInt},
                                        {"comm", "COMM", FieldType::String},
                                        {"ret", "RET", FieldType::Int},
                                        {"addr", "ADDR", FieldType::Hex},
                                        {"error", "ERROR", FieldType::String},
                                        {"old_addr", "OLD", FieldType::Hex},
                                        {"old_len", "OLDLEN", FieldType::Bytes},
                                        {"new_len", "NEWLEN", FieldType::Bytes},
                                        {"flags", "FLAGS", FieldType::Hex},
                                        {"flags_names", "FLAGS", FieldType::String},
                                        {"new_addr_hint", "HINT", FieldType::Hex},
                                        {"file", "FILE", FieldType::String},
                                    }};

// include/uapi/linux/magic.h
constexpr uint64_t kAnonInodeFsMagic = 0x09041934;

constexpr size_t kHeaderSize = offsetof(mmapsnoop_event, path);

std::string fixed_string(const char* text, size_t size) { return std::string(text, strnlen(text, size)); }

class MmapSnoopTool : public SkeletonTool<mmapsnoop> {
 public:
  MmapSnoopTool() : SkeletonTool(MEMSCOPE_SKELETON_OPS(mmapsnoop)) {}

  void add_options(CLI::App& app) override {
    app.add_flag("-a,--all", all_, "Also trace munmap() and mremap()");
    app.add_option("--buffer-mib", buffer_mib_,
                   "Ring buffer size in MiB, a power of two (default 2: 13,797 events of a typical path such as "
                   "/usr/lib/x86_64-linux-gnu/libc.so.6 unread; events beyond it are counted as lost)")
        ->check(CLI::IsMember({1, 2, 4, 8, 16, 32, 64, 128, 256, 512}));
  }

  std::vector<ProbeSpec> probes(const KernelFeatures&) const override {
    if (all_) return {syscall_probe_spec("mmap/munmap/mremap", "mmapsnoop", {"mmap", "munmap", "mremap"})};
    return {syscall_probe_spec("mmap", "mmapsnoop", {"mmap"})};
  }

  int run(ToolContext& context) override {
    trace(context,
          {.what = all_ ? "mmap(), munmap() and mremap()" : "mmap()",
           .configure =
               [&](mmapsnoop& skel) {
                 skel.rodata->trace_unmaps = all_;
                 // Records are as long as their path: a program mapping its libraries at start
                 // sends thousands before user space reads (BCC's 1 MiB held ~700 of its events).
                 bpf_map__set_max_entries(skel.maps.events, buffer_mib_ << 20);
               },
           .attached = [&](auto&, EventLoop&) { context.sink.header(all_ ? kTextAllSchema : kTextSchema); },
           .on_record = [&](const void* data, size_t size) { on_record(context, data, size); }});
    return 0;
  }

 private:
  // A record is the event's fixed fields, then path_len bytes of names; one whose parts do not add
  // up to its size exactly is dropped, never read past its end.
  void on_record(ToolContext& context, const void* data, size_t size) {
    if (size < kHeaderSize) return;
    mmapsnoop_event header;
    std::memcpy(&header, data, kHeaderSize);
    if (header.path_len != size - kHeaderSize) return;
    auto names = mmap_decode::split_names({static_cast<const char*>(data) + kHeaderSize, header.path_len});
    if (!names) return;
    handle(context, header, *names);
  }

  static std::string file_of(const mmapsnoop_event& event, const std::vector<std::string>& names) {
    switch (event.file_state) {
      case MMAPSNOOP_FILE_NONE:
        return "[anon]";
      case MMAPSNOOP_FILE_UNMAPPED:
        return "[unmapped]";
      case MMAPSNOOP_FILE_UNKNOWN:
        return "[?]";
      case MMAPSNOOP_FILE_BAD_FD:
        return fmt::format("[fd {}]", static_cast<int32_t>(event.args[4]));
      default: {
        std::string path =
            mmap_decode::assemble_path(names, event.file_state == MMAPSNOOP_FILE_PATH, event.path_truncated);
        // As /proc/PID/maps shows them (fs/anon_inodes.c names its dentries this way).
        if (event.fs_magic == kAnonInodeFsMagic) return "anon_inode:" + path;
        return path;
      }
    }
  }

  // `event`'s path[] is not filled: the names come from the record.
  void handle(ToolContext& context, const mmapsnoop_event& event, const std::vector<std::string>& names) {
    std::string comm = fixed_string(event.comm, sizeof(event.comm));
    std::string error = syscall_error(event.ret);
    uint64_t result_address = error.empty() ? static_cast<uint64_t>(event.ret) : 0;
    std::string file = file_of(event, names);
    uint64_t args[6];
    for (int i = 0; i < 6; i++) args[i] = event.args[i];
    if (context.options.json) {
      switch (event.syscall) {
        case MMAPSNOOP_MMAP:
          context.sink.record(
              kMmapJson, {uint64_t{event.pid}, uint64_t{event.tid}, comm, int64_t{event.ret}, result_address,
                          error, args[1], args[2], mmap_decode::prot_names(args[2]), args[3],
                          mmap_decode::map_flag_names(args[3]), int64_t{static_cast<int32_t>(args[4])},
                          args[5], args[0], file});
          break;
        case MMAPSNOOP_MUNMAP:
          context.sink.record(kMunmapJson, {uint64_t{event.pid}, uint64_t{event.tid}, comm,
                                            int64_t{event.ret}, error, args[0], args[1], file});
          break;
        default:
          context.sink.record(
              kMremapJson,
              {uint64_t{event.pid}, uint64_t{event.tid}, comm, int64_t{event.ret}, result_address, error,
               args[0], args[1], args[2], args[3], mmap_decode::mremap_flag_names(args[3]), args[4], file});
          break;
      }
      return;
    }
    std::string call, prot, map, offset_kb, size_kb;
    switch (event.syscall) {
      case MMAPSNOOP_MMAP:
        call = "mmap";
        prot = mmap_decode::prot_letters(args[2]);
        map = mmap_decode::map_letters(args[3]);
        offset_kb = std::to_string(args[5] / 1024);
        size_kb = std::to_string(args[1] / 1024);
        break;
      case MMAPSNOOP_MUNMAP:
        call = "munmap";
        size_kb = std::to_string(args[1] / 1024);
        break;
      default:
        call = "mremap";
        size_kb = fmt::format("{}>{}", args[1] / 1024, args[2] / 1024);
        break;
    }
    if (!error.empty()) file += (file.empty() ? "" : " ") + std::string("(failed: ") + error + ")";
    if (all_)
      context.sink.record(kTextAllSchema,
                          {uint64_t{event.pid}, comm, call, prot, map, offset_kb, size_kb, file});
    else
      context.sink.record(kTextSchema, {uint64_t{event.pid}, comm, prot, map, offset_kb, size_kb, file});
  }

  uint32_t buffer_mib_ = 2;
  bool all_ = false;
};

}  // namespace
}  // namespace memscope

MEMSCOPE_TOOL(tool_mmapsnoop, "mmapsnoop",
              "Trace mmap() calls: protection, flags, size, file (--all: munmap, mremap)", MmapSnoopTool)
