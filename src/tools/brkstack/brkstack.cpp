// brkstack: heap growth through brk(), by process and user stack (the book's brkstack: the
// syscalls:sys_enter_brk tracepoint with ustack), with the bytes each stack grew the heap by.
#include "brkstack.h"

#include <bpf/bpf.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstring>
#include <set>

#include "brkstack.skel.h"
#include "output/sink.hpp"
#include "runtime/bpf_skeleton.hpp"
#include "runtime/map_reading.hpp"
#include "runtime/syscall_hooks.hpp"
#include "runtime/tool.hpp"
#include "runtime/tracing_session.hpp"
#include "runtime/user_stacks.hpp"
#include "symbols/symbolizer.hpp"

namespace memscope {
namespace {

std::string fixed_string(const char* text, size_t size) { return std::string(text, strnlen(text, size)); }

struct CountedStack {
  brkstack_key key;
  brkstack_value value;
};

class BrkStackTool : public SkeletonTool<brkstack> {
 public:
  BrkStackTool() : SkeletonTool(MEMSCOPE_SKELETON_OPS(brkstack)) {}

  CommonOptionSet common_options() const override {
    CommonOptionSet set;
    set.interval = true;
    set.folded = true;
    set.user_stacks = true;
    return set;
  }

  void add_options(CLI::App& app) override {
    app.add_option("-s,--sort", sort_, "Order stacks by brk() calls (as the book) or by bytes grown")
        ->check(CLI::IsMember({"calls", "bytes"}));
    app.add_option("--top", top_, "Show only this many stacks per report (0: all)")
        ->check(non_negative_number());
  }

  std::vector<ProbeSpec> probes(const KernelFeatures&) const override {
    return {syscall_probe_spec("brk", "brkstack", {"brk"})};
  }

  int run(ToolContext& context) override {
    int counts_fd = -1, stacks_fd = -1;
    trace(context, {.what = "brk() growth by user stack",
                    .configure =
                        [&](brkstack& skel) { context.user_stacks->fit_user_only_stack_map(skel.maps.stacks); },
                    .attached =
                        [&](Skeleton<brkstack>& skel, EventLoop&) {
                          counts_fd = bpf_map__fd(skel->maps.brk_counts);
                          stacks_fd = bpf_map__fd(skel->maps.stacks);
                        },
                    .on_record =
                        [&](const void* data, size_t size) {
                          if (size < sizeof(brkstack_new_stack_event)) return;
                          // A process's mappings can only be read while it lives, and the first brk() of a
                          // process comes from ld.so before libc is mapped: resolve each new stack now,
                          // which makes the symbolizer re-read the mappings when an address is new to it,
                          // so the report still symbolizes after the process has exited.
                          const auto& event = *static_cast<const brkstack_new_stack_event*>(data);
                          pid_t pid = static_cast<pid_t>(event.pid);
                          context.symbolizer.prepare(pid);
                          context.symbolizer.user_frames(pid, context.user_stacks->read(stacks_fd, event.user_stack_id));
                        },
                    .on_interval = [&] { report(context, counts_fd, stacks_fd, true, false); },
                    .finish =
                        [&](const TracingOutcome& outcome) {
                          // In interval mode the last report shows what came since the one before.
                          if (outcome.reason != StopReason::Count)
                            report(context, counts_fd, stacks_fd, context.options.interval > 0, true);
                          report_drops(context.sink, outcome.drops);
                        }});
    return 0;
  }

 private:
  // Reads the in-kernel counts (between intervals, what each added since the previous report) and
  // hands them to the sink; `last`: the report at the end, printed even when nothing came.
  void report(ToolContext& context, int counts_fd, int stacks_fd, bool clear, bool last) {
    // Between intervals each count shows what it added since the previous report (CounterDeltas):
    // calls counted meanwhile are in the next one, none lost to a delete.
    std::vector<CountedStack> counted;
    for (const auto& [key, value] : clear ? interval_counts_.take(counts_fd)
                                          : read_hash_map<brkstack_key, brkstack_value>(counts_fd))
      counted.push_back({key, value});
    // The stacks of the counts deleted as idle, unless another count still refers to them.
    std::set<int32_t> stack_ids;
    if (clear) {
      for (const auto& key : interval_counts_.removed())
        if (key.user_stack_id >= 0) stack_ids.insert(key.user_stack_id);
      for (const auto& [key, value] : read_hash_map<brkstack_key, brkstack_value>(counts_fd))
        stack_ids.erase(key.user_stack_id);
    }
    bool by_bytes = sort_ == "bytes";
    std::sort(counted.begin(), counted.end(), [&](const CountedStack& a, const CountedStack& b) {
      uint64_t wa = by_bytes ? a.value.bytes : a.value.calls, wb = by_bytes ? b.value.bytes : b.value.calls;
      if (wa != wb) return wa > wb;
      return by_bytes ? a.value.calls > b.value.calls : a.value.bytes > b.value.bytes;
    });
    if (top_ > 0 && counted.size() > static_cast<size_t>(top_)) counted.resize(top_);

    output::StackReport stack_report;
    stack_report.name = "brk_stacks";
    std::string when =
        context.options.timestamps || clear ? fmt::format("[{}] ", output::wall_clock_hms()) : "";
    stack_report.title =
        fmt::format("{}brk() calls by user stack, most {} first:", when, by_bytes ? "bytes" : "calls");
    for (const auto& entry : counted) {
      output::StackEntry item;
      item.stack.pid = static_cast<pid_t>(entry.key.pid);
      context.user_stacks->read_into(item.stack, stacks_fd, entry.key.user_stack_id);
      item.comm = fixed_string(entry.value.comm, sizeof(entry.value.comm));
      item.values = {{"calls", entry.value.calls},
                     {"growths", entry.value.growths},
                     {"bytes", entry.value.bytes},
                     {"failed", entry.value.failed}};
      item.weight = by_bytes ? entry.value.bytes : entry.value.calls;
      item.heading = fmt::format("{} [{}]: {} calls, {} growths, {} bytes{}{}", item.comm, entry.key.pid,
                                 entry.value.calls, entry.value.growths, entry.value.bytes,
                                 entry.value.failed ? fmt::format(", {} failed", entry.value.failed) : "",
                                 entry.key.user_stack_id < 0 ? " (user stack not captured)" : "");
      if (entry.key.user_stack_id < 0) item.labels = {{"stack_error", "not captured"}};
      stack_report.entries.push_back(std::move(item));
    }
    if (!stack_report.entries.empty() || !clear || last) context.sink.stacks(stack_report);
    for (int32_t id : stack_ids) context.user_stacks->forget(stacks_fd, id);
  }

  std::string sort_ = "calls";
  int top_ = 0;
  CounterDeltas<brkstack_key, brkstack_value> interval_counts_{{&brkstack_value::calls, &brkstack_value::growths,
                                                                &brkstack_value::bytes, &brkstack_value::failed}};
};

}  // namespace
}  // namespace memscope

MEMSCOPE_TOOL(tool_brkstack, "brkstack",
              "Count brk() heap growth by user stack and process, with bytes grown", BrkStackTool)
