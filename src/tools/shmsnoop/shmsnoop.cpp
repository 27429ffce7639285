// shmsnoop: System V shared memory syscalls — shmget, shmat, shmdt, shmctl — with decoded
// arguments and results, in BCC shmsnoop's columns (PID COMM SYS RET ARGs).
#include "shmsnoop.h"

#include <CLI/CLI.hpp>
#include <cstring>

#include "runtime/bpf_skeleton.hpp"
#include "runtime/syscall_hooks.hpp"
#include "runtime/tool.hpp"
#include "runtime/tracing_session.hpp"
#include "shm_decode.hpp"
#include "shmsnoop.skel.h"

namespace memscope {
namespace {

using output::FieldType;

const output::Schema kTextSchema = {"shm",
                                    {
                                        {"pid", "PID", FieldType::UInt, 7, true},
                                        {"comm", "COMM", FieldType::String, 16, true},
                                        {"syscall", "SYS", FieldType::String, 6},
                                        {"ret", "RET", FieldType::String, 16},
                                        {"args", "ARGs", FieldType::String, 0, true},
                                    }};

// JSON: one event kind per syscall, each argument as a number and decoded; "args" is the text line's.
const output::Schema kShmgetJson = {"shmget",
                                    {
                                        {"pid", "PID", FieldType::UInt},
                                        {"tid", "TID", FieldType::UInt},
                                        {"comm", "COMM", FieldType::String},
                                        {"ret", "RET", FieldType::Int},
                                        {"error", "ERROR", FieldType::String},
                                        {"key", "KEY", FieldType::Hex},
                                        {"key_text", "KEY", FieldType::String},
                                        {"size", "SIZE", FieldType::Bytes},
                                        {"shmflg", "SHMFLG", FieldType::Hex},
                                        {"shmflg_names", "SHMFLG", FieldType::String},
                                        {"args", "ARGs", FieldType::String},
                                    }};

const output::Schema kShmatJson = {"shmat",
                                   {
                                       {"pid", "PID", FieldType::UInt},
                                       {"tid", "TID", FieldType::UInt},
                                       {"comm", "COMM", FieldType::String},
                                       {"ret", "RET", FieldType::Int},
                                       {"error", "ERROR", FieldType::String},
                                       {"shmid", "SHMID", FieldType::Int},
                                       {"shmaddr", "SHMADDR", FieldType::Hex},
                                       {"shmflg", "SHMFLG", FieldType::Hex},
                                       {"shmflg_names", "SHMFLG", FieldType::String},
                                       {"args", "ARGs", FieldType::String},
                                   }};

const output::Schema kShmdtJson = {"shmdt",
                                   {
                                       {"pid", "PID", FieldType::UInt},
                                       {"tid", "TID", FieldType::UInt},
                                       {"comm", "COMM", FieldType::String},
                                       {"ret", "RET", FieldType::Int},
                                       {"error", "ERROR", FieldType::String},
                                       {"shmaddr", "SHMADDR", FieldType::Hex},
                                       {"args", "ARGs", FieldType::String},
                                   }};

const output::Schema kShmctlJson = {"shmctl",
                                    {
                                        {"pid", "PID", FieldType::UInt},
                                        {"tid", "TID", FieldType::UInt},
                                        {"comm", "COMM", FieldType::String},
                                        {"ret", "RET", FieldType::Int},
                                        {"error", "ERROR", FieldType::String},
                                        {"shmid", "SHMID", FieldType::Int},
                                        {"cmd", "CMD", FieldType::UInt},
                                        {"cmd_name", "CMD", FieldType::String},
                                        {"buf", "BUF", FieldType::Hex},
                                        {"args", "ARGs", FieldType::String},
                                    }};

std::string fixed_string(const char* text, size_t size) { return std::string(text, strnlen(text, size)); }

class ShmSnoopTool : public SkeletonTool<shmsnoop> {
 public:
  ShmSnoopTool() : SkeletonTool(MEMSCOPE_SKELETON_OPS(shmsnoop)) {}

  void add_options(CLI::App& app) override {
    app.add_flag("-x,--failed", failed_only_, "Only show failed calls");
  }

  std::vector<ProbeSpec> probes(const KernelFeatures&) const override {
    return {syscall_probe_spec("shm syscalls", "shmsnoop", {"shmget", "shmat", "shmdt", "shmctl"})};
  }

  int run(ToolContext& context) override {
    trace(context, {.what = "shmget(), shmat(), shmdt() and shmctl()",
                    .attached = [&](auto&, EventLoop&) { context.sink.header(kTextSchema); },
                    .on_record =
                        [&](const void* data, size_t size) {
                          if (size >= sizeof(shmsnoop_event))
                            handle(context, *static_cast<const shmsnoop_event*>(data));
                        }});
    return 0;
  }

 private:
  void handle(ToolContext& context, const shmsnoop_event& event) {
    std::string error = syscall_error(event.ret);
    if (failed_only_ && error.empty()) return;
    std::string comm = fixed_string(event.comm, sizeof(event.comm));
    uint64_t a0 = event.args[0], a1 = event.args[1], a2 = event.args[2];
    // shmids and keys are ints; the registers hold them sign- or zero-extended.
    int64_t shmid = static_cast<int32_t>(a0);
    std::string name, args;
    switch (event.syscall) {
      case SHMSNOOP_SHMGET:
        name = "SHMGET";
        args = fmt::format("key: {}, size: {}, shmflg: {:#x} ({})", shm_decode::key_text(a0), a1, a2,
                           shm_decode::shmget_flag_names(a2));
        break;
      case SHMSNOOP_SHMAT:
        name = "SHMAT";
        args = fmt::format("shmid: {:#x}, shmaddr: {:#x}, shmflg: {:#x} ({})", shmid, a1, a2,
                           shm_decode::shmat_flag_names(a2));
        break;
      case SHMSNOOP_SHMDT:
        name = "SHMDT";
        args = fmt::format("shmaddr: {:#x}", a0);
        break;
      default:
        name = "SHMCTL";
        args = fmt::format("shmid: {:#x}, cmd: {} ({}), buf: {:#x}", shmid, a1,
                           shm_decode::shmctl_cmd_name(a1), a2);
        break;
    }
    const CommonOptions& options = context.options;
    if (!options.json) {
      // BCC prints results in hex: shmids as it prints them in the arguments, addresses as addresses.
      std::string ret = error.empty() ? fmt::format("{:x}", event.ret) : "-" + error;
      context.sink.record(kTextSchema, {uint64_t{event.pid}, comm, name, ret, args});
      return;
    }
    uint64_t pid = event.pid, tid = event.tid;
    int64_t ret = event.ret;
    switch (event.syscall) {
      case SHMSNOOP_SHMGET:
        context.sink.record(kShmgetJson,
                            {pid, tid, comm, ret, error, uint64_t{static_cast<uint32_t>(a0)},
                             shm_decode::key_text(a0), a1, a2, shm_decode::shmget_flag_names(a2), args});
        break;
      case SHMSNOOP_SHMAT:
        context.sink.record(
            kShmatJson, {pid, tid, comm, ret, error, shmid, a1, a2, shm_decode::shmat_flag_names(a2), args});
        break;
      case SHMSNOOP_SHMDT:
        context.sink.record(kShmdtJson, {pid, tid, comm, ret, error, a0, args});
        break;
      default:
        context.sink.record(
            kShmctlJson, {pid, tid, comm, ret, error, shmid, a1, shm_decode::shmctl_cmd_name(a1), a2, args});
        break;
    }
  }

  bool failed_only_ = false;
};

}  // namespace
}  // namespace memscope

MEMSCOPE_TOOL(tool_shmsnoop, "shmsnoop",
              "Trace System V shared memory syscalls: shmget, shmat, shmdt, shmctl", ShmSnoopTool)
