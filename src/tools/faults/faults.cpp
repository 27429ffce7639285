// faults: page faults by process (user-mode and kernel-mode faults apart) and by stack, the book's
// faults.bt (software:page-faults:1 { @[ustack, comm] = count(); }) with a per-process table.
#include "faults.h"

#include <bpf/bpf.h>
#include <fmt/format.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "faults.skel.h"
#include "runtime/bpf_skeleton.hpp"
#include "runtime/event_loop.hpp"
#include "runtime/log.hpp"
#include "runtime/map_reading.hpp"
#include "runtime/ring_buffer_reader.hpp"
#include "runtime/stack_map.hpp"
#include "runtime/tool.hpp"
#include "runtime/user_stacks.hpp"
#include "runtime/tracing_session.hpp"
#include "symbols/symbolizer.hpp"
#include "tools/faults/page_fault_hooks.hpp"

namespace memscope {
namespace {

const output::Schema kProcessSchema = {
    "page_faults",
    {
        {"pid", "PID", output::FieldType::UInt, 7, true},
        {"comm", "COMM", output::FieldType::String, 16, true},
        {"user", "USER", output::FieldType::UInt, 10},
        {"kernel", "KERNEL", output::FieldType::UInt, 10},
        {"total", "TOTAL", output::FieldType::UInt, 10},
    },
};

std::string fixed_string(const char* text, size_t size) { return std::string(text, strnlen(text, size)); }

class FaultsTool : public SkeletonTool<faults> {
 public:
  FaultsTool() : SkeletonTool(MEMSCOPE_SKELETON_OPS(faults)) {}

  CommonOptionSet common_options() const override {
    CommonOptionSet set;
    set.interval = true;
    set.folded = true;
    set.user_stacks = true;
    set.reserved_letters = {'U', 'K'};
    return set;
  }

  void add_options(CLI::App& app) override {
    app.add_flag("-U,--user-mode", user_mode_only_, "Count only faults taken in user mode");
    app.add_flag("-K,--kernel-mode", kernel_mode_only_,
                 "Count only faults taken in kernel mode (e.g. copy_to_user into untouched memory)");
    app.add_flag("--no-stacks", no_stacks_, "Per-process counts only: do not capture stacks (less overhead)");
    app.add_option("--top", top_,
                   "Stacks shown per report, most faults first; 0 = all (default 10, all with --folded)")
        ->check(non_negative_number());
    app.add_option("--stack-storage-size", stack_storage_size_,
                   "Distinct stacks the kernel can keep (default 16384)")
        ->check(positive_number());
  }

  void validate(const CommonOptions& options) override {
    if (user_mode_only_ && kernel_mode_only_) throw FatalError("-U and -K exclude each other");
    if (no_stacks_ && options.folded) throw FatalError("--folded needs stacks; drop --no-stacks");
    if (top_ < 0) top_ = options.folded ? 0 : 10;
  }

  std::vector<ProbeSpec> probes(const KernelFeatures&) const override {
    // The exception tracepoints first: they are the fault itself, on every x86 kernel with BTF.
    // handle_mm_fault comes last because it also runs for get_user_pages() and for retries.
    ProbeSpec spec{"page fault", page_fault_tracepoint_alternatives("faults")};
    spec.alternatives.push_back({HookKind::PerfEvent, {{"faults_perf_event", {}}}});
    spec.alternatives.push_back({HookKind::Fentry, {{"faults_fentry", {"handle_mm_fault"}}}});
    spec.alternatives.push_back({HookKind::Kprobe, {{"faults_kprobe", {"handle_mm_fault"}}}});
    return {spec};
  }

  int run(ToolContext& context) override {
    const CommonOptions& options = context.options;
    const ResolvedProbe& probe = context.resolved.front();
    uint64_t perf_total = 0;
    trace(context, {.what = user_mode_only_     ? "user-mode page faults"
                            : kernel_mode_only_ ? "kernel-mode page faults"
                                                : "page faults",
                    .configure =
                        [&](faults& skel) {
                          skel.rodata->count_user_mode = !kernel_mode_only_;
                          skel.rodata->count_kernel_mode = !user_mode_only_;
                          skel.rodata->capture_stacks = !no_stacks_;
                          bpf_map__set_max_entries(skel.maps.stacks, no_stacks_ ? 1 : stack_storage_size_);
                          bpf_map__set_max_entries(skel.maps.unwound_stacks, no_stacks_ ? 1 : stack_storage_size_);
                        },
                    .attached =
                        [&](Skeleton<faults>& skel, EventLoop&) {
                          if (probe.kind == HookKind::PerfEvent) attach_perf_events(skel.get(), skel.links());
                          process_map_fd_ = bpf_map__fd(skel->maps.process_faults);
                          stack_counts_fd_ = bpf_map__fd(skel->maps.stack_faults);
                          stacks_fd_ = bpf_map__fd(skel->maps.stacks);
                          user_stacks_ = context.user_stacks;
                          perf_samples_fd_ = bpf_map__fd(skel->maps.perf_samples);
                        },
                    .on_record =
                        [&](const void* data, size_t size) {
                          if (size < sizeof(faults_new_process)) return;
                          // Open the process's mappings while it runs, so its frames resolve after it exits.
                          // A known PID with another command has exec()ed (or the PID was reused): its
                          // mappings are new.
                          const auto& notice = *static_cast<const faults_new_process*>(data);
                          auto pid = static_cast<pid_t>(notice.pid);
                          // Keyed by address space, not by name: a program that execs itself keeps it.
                          auto known = prepared_.find(pid);
                          if (known != prepared_.end() && known->second == notice.mm) return;
                          if (known != prepared_.end()) context.symbolizer.forget(pid);
                          prepared_[pid] = notice.mm;
                          context.symbolizer.prepare(pid);
                        },
                    .on_interval = [&] { report(context, true); },
                    // The links own the perf event descriptors: read them before detaching.
                    .stopped = [&](StopReason) { perf_total = perf_event_total(); },
                    .finish =
                        [&](const TracingOutcome& outcome) {
                          // In interval mode the last report shows what came since the one before.
                          if (options.interval <= 0 || outcome.reason != StopReason::Count)
                            report(context, options.interval > 0);
                          report_drops(context.sink, outcome.drops);
                          if (probe.kind == HookKind::PerfEvent) report_perf_throttling(context, perf_total);
                          log::verbose("hook: {}", probe.describe());
                        }});
    return 0;
  }

 private:
  struct StackCount {
    faults_stack_key key;
    uint64_t count;
  };

  void report(ToolContext& context, bool interval_report) {
    const CommonOptions& options = context.options;
    // An interval report shows what each counter added since the previous one (CounterDeltas):
    // events keep counting while it symbolizes and prints, and no increment is lost to a delete.
    auto processes = interval_report ? process_deltas_.take(process_map_fd_)
                                     : read_hash_map<uint32_t, faults_process_counts>(process_map_fd_);
    std::map<uint32_t, std::string> comms;
    for (const auto& [pid, counts] : processes) comms[pid] = fixed_string(counts.comm, sizeof(counts.comm));

    if (!options.folded) {
      std::sort(processes.begin(), processes.end(), [](const auto& a, const auto& b) {
        uint64_t total_a = a.second.user + a.second.kernel, total_b = b.second.user + b.second.kernel;
        return total_a != total_b ? total_a > total_b : a.first < b.first;
      });
      if (options.interval > 0 && !options.json) context.sink.message("");
      context.sink.header(kProcessSchema);
      for (const auto& [pid, counts] : processes)
        context.sink.record(kProcessSchema, {uint64_t{pid}, comms[pid], uint64_t{counts.user},
                                             uint64_t{counts.kernel}, uint64_t{counts.user + counts.kernel}});
    }
    std::vector<std::pair<faults_stack_key, uint64_t>> counted;
    if (!no_stacks_)
      counted = interval_report ? stack_deltas_.take(stack_counts_fd_)
                                : read_hash_map<faults_stack_key, uint64_t>(stack_counts_fd_);
    if (!no_stacks_) report_stacks(context, comms, counted);
    if (interval_report) {
      forget_stacks(stack_deltas_.removed());
      forget_exited_processes(context);
    }
  }

  void report_stacks(ToolContext& context, std::map<uint32_t, std::string>& comms,
                     std::vector<std::pair<faults_stack_key, uint64_t>> counted) {
    std::sort(counted.begin(), counted.end(),
              [](const auto& a, const auto& b) { return a.second > b.second; });
    size_t shown = top_ > 0 ? std::min<size_t>(static_cast<size_t>(top_), counted.size()) : counted.size();

    output::StackReport report;
    report.name = "fault_stacks";
    report.title = fmt::format("{}{} by page faults:",
                               context.options.timestamps ? "[" + output::wall_clock_hms() + "] " : "",
                               shown > 0 ? fmt::format("Top {} stacks", shown) : "Stacks");
    for (size_t i = 0; i < shown; i++) {
      const auto& [key, count] = counted[i];
      output::StackEntry entry;
      entry.stack.pid = static_cast<pid_t>(key.pid);
      user_stacks_->read_into(entry.stack, stacks_fd_, key.user_stack_id);
      entry.stack.kernel = fault_site_stack(context, key.kernel_stack_id);
      auto comm = comms.find(key.pid);
      entry.comm = comm != comms.end() ? comm->second : "";
      entry.values = {{"faults", count}};
      entry.weight = count;
      const char* mode = key.kernel_mode ? "kernel" : "user";
      entry.labels = {{"mode", mode}};
      entry.heading = fmt::format("{} page faults in {} mode, PID {} ({})", count, mode, key.pid, entry.comm);
      if (key.user_stack_id < 0 && entry.stack.kernel.empty()) entry.heading += " [stack not captured]";
      report.entries.push_back(std::move(entry));
    }
    context.sink.stacks(report);
  }

  // Kernel stacks captured in the tracepoint (or at handle_mm_fault) begin with the tracing and
  // fault-handling frames; the fault happened in the frame after asm_exc_page_fault, which is
  // where the perf event's stacks begin. Cut there so every hook shows the same stack.
  std::vector<uint64_t> fault_site_stack(ToolContext& context, int32_t stack_id) {
    if (stack_id < 0) return {};
    auto cached = kernel_stacks_.find(stack_id);
    if (cached != kernel_stacks_.end()) return cached->second;
    std::vector<uint64_t> addresses = read_stack(stacks_fd_, stack_id);
    // Matched by address: the symbolizer may leave frames out (the tracing machinery on top).
    for (const symbols::Frame& frame : context.symbolizer.kernel_frames(addresses)) {
      if (frame.function != "asm_exc_page_fault") continue;
      auto fault_entry = std::find(addresses.begin(), addresses.end(), frame.address);
      if (fault_entry != addresses.end()) addresses.erase(addresses.begin(), fault_entry + 1);
      break;
    }
    kernel_stacks_[stack_id] = addresses;
    return addresses;
  }

  // The stack ids of the counts an interval report deleted (idle ones), unless another count still
  // refers to them.
  void forget_stacks(const std::vector<faults_stack_key>& deleted) {
    std::set<int32_t> stack_ids;
    for (const auto& key : deleted) {
      if (key.user_stack_id >= 0) stack_ids.insert(key.user_stack_id);
      if (key.kernel_stack_id >= 0) stack_ids.insert(key.kernel_stack_id);
    }
    for (const auto& [key, count] : read_hash_map<faults_stack_key, uint64_t>(stack_counts_fd_)) {
      stack_ids.erase(key.user_stack_id);
      stack_ids.erase(key.kernel_stack_id);
    }
    for (int32_t id : stack_ids) user_stacks_->forget(stacks_fd_, id);
    // Stack ids are reused once deleted.
    kernel_stacks_.clear();
  }

  // Machine-wide, every short-lived process leaves its mappings in the symbolizer: forget those of
  // processes that have exited once an interval report has shown their last counts (a process still
  // counted in the maps keeps them for the next report).
  void forget_exited_processes(ToolContext& context) {
    std::set<uint32_t> still_counted;
    for (const auto& [pid, counts] : read_hash_map<uint32_t, faults_process_counts>(process_map_fd_))
      still_counted.insert(pid);
    for (auto it = prepared_.begin(); it != prepared_.end();) {
      bool exited = kill(it->first, 0) != 0 && errno == ESRCH;
      if (exited && !still_counted.count(static_cast<uint32_t>(it->first))) {
        context.symbolizer.forget(it->first);
        it = prepared_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // PERF_COUNT_SW_PAGE_FAULTS on every CPU, sample period 1: the BPF program runs on each fault.
  void attach_perf_events(faults* skel, BpfObjectLinks& links) {
    int cpus = libbpf_num_possible_cpus();
    for (int cpu = 0; cpu < cpus; cpu++) {
      perf_event_attr attr{};
      attr.size = sizeof(attr);
      attr.type = PERF_TYPE_SOFTWARE;
      attr.config = PERF_COUNT_SW_PAGE_FAULTS;
      attr.sample_period = 1;
      int fd = static_cast<int>(syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC));
      if (fd < 0) {
        if (errno == ENODEV) continue;  // CPU offline
        throw FatalError(
            fmt::format("perf_event_open(page-faults) on CPU {} failed: {}", cpu, strerror(errno)));
      }
      bpf_link* link = bpf_program__attach_perf_event(skel->progs.faults_perf_event, fd);
      if (!link) {
        int err = errno;
        close(fd);
        throw FatalError(
            fmt::format("attaching perf_event page-faults on CPU {} failed: {}", cpu, strerror(err)));
      }
      links.adopt(link);  // the link closes the perf event fd when destroyed
      perf_fds_.push_back(fd);
    }
    log::verbose("page fault: attached perf_event page-faults on {} CPUs", perf_fds_.size());
  }

  // Every fault the perf events counted, sampled or not.
  uint64_t perf_event_total() const {
    uint64_t total = 0;
    for (int fd : perf_fds_) {
      uint64_t value = 0;
      if (read(fd, &value, sizeof(value)) == sizeof(value)) total += value;
    }
    return total;
  }

  // The kernel throttles sampling software events above kernel.perf_event_max_sample_rate per
  // CPU, and a throttled fault never reaches the BPF program: say so rather than under-count.
  void report_perf_throttling(ToolContext& context, uint64_t perf_total) {
    uint64_t seen = sum_percpu_counter(perf_samples_fd_, 0);
    if (perf_total > seen)
      context.sink.message(
          fmt::format("Lost: {} of {} page faults system-wide not sampled (perf throttling, see "
                      "kernel.perf_event_max_sample_rate)",
                      perf_total - seen, perf_total));
  }

  bool user_mode_only_ = false;
  bool kernel_mode_only_ = false;
  bool no_stacks_ = false;
  int top_ = -1;  // -1: not given
  unsigned stack_storage_size_ = 16384;

  int process_map_fd_ = -1;
  int stack_counts_fd_ = -1;
  CounterDeltas<uint32_t, faults_process_counts> process_deltas_{
      {&faults_process_counts::user, &faults_process_counts::kernel}};
  CounterDeltas<faults_stack_key> stack_deltas_;
  int stacks_fd_ = -1;
  const UserStacks* user_stacks_ = nullptr;  // the runtime step's, while run() traces
  int perf_samples_fd_ = -1;
  std::vector<int> perf_fds_;
  std::map<pid_t, uint64_t> prepared_;  // PIDs whose mappings were read, with their address space
  std::map<int32_t, std::vector<uint64_t>> kernel_stacks_;
};

}  // namespace
}  // namespace memscope

MEMSCOPE_TOOL(tool_faults, "faults", "Count page faults by process and by stack (user and kernel mode)",
              FaultsTool)
