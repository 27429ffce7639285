// swapin: swap-ins per process per interval, the book's swapin.bt. Needs fentry or a kprobe on
// the swap read function; no tracepoint fires on swap-in, so on kernels with neither the resolver
// refuses the tool and says what is missing (doctor shows the same).
#include "swapin.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "runtime/bpf_skeleton.hpp"
#include "runtime/event_loop.hpp"
#include "runtime/log.hpp"
#include "runtime/ring_buffer_reader.hpp"
#include "runtime/tool.hpp"
#include "runtime/tracing_session.hpp"
#include "swapin.skel.h"

namespace memscope {
namespace {

const output::Schema kSwapinSchema = {
    "swapin",
    {
        {"time", "TIME", output::FieldType::String, 8, true},
        {"comm", "COMM", output::FieldType::String, 16, true},
        {"pid", "PID", output::FieldType::UInt, 7, true},
        {"count", "COUNT", output::FieldType::UInt, 0},
    },
};

struct SwapinCount {
  swapin_key key;
  uint64_t count;
};

// Takes every entry out of the map, so each interval starts from zero (bpftrace's clear()).
std::vector<SwapinCount> drain_counts(int map_fd) {
  std::vector<swapin_key> keys;
  swapin_key key{}, next{};
  bool first = true;
  while (bpf_map_get_next_key(map_fd, first ? nullptr : &key, &next) == 0) {
    keys.push_back(next);
    key = next;
    first = false;
  }
  std::vector<SwapinCount> counts;
  for (const auto& each : keys) {
    uint64_t count = 0;
    // Atomic for hash maps since 5.14; older kernels fall back to lookup, then delete.
    if (bpf_map_lookup_and_delete_elem(map_fd, &each, &count) != 0) {
      if (bpf_map_lookup_elem(map_fd, &each, &count) != 0) continue;
      bpf_map_delete_elem(map_fd, &each);
    }
    if (count) counts.push_back({each, count});
  }
  std::sort(counts.begin(), counts.end(), [](const auto& a, const auto& b) { return a.count > b.count; });
  return counts;
}

class SwapinTool : public SkeletonTool<swapin> {
 public:
  SwapinTool() : SkeletonTool(MEMSCOPE_SKELETON_OPS(swapin)) {}

  CommonOptionSet common_options() const override {
    CommonOptionSet set;
    set.kernel_threads = true;  // khugepaged swaps pages in before it collapses them
    set.interval = true;
    set.default_interval = 1;
    set.timestamps = false;  // TIME is always the first column
    return set;
  }

  std::vector<ProbeSpec> probes(const KernelFeatures&) const override {
    // The event names the function so that the refusal on kernels without fentry and kprobes
    // says exactly what the tool needs (swap_readpage is its name before the folio conversion).
    const std::vector<std::string> functions = {"swap_read_folio", "swap_readpage"};
    return {{"swap-in (swap_read_folio)",
             {
                 {HookKind::Fentry, {{"swapin_fentry", functions}}},
                 {HookKind::Kprobe, {{"swapin_kprobe", functions}}},
             }}};
  }

  int run(ToolContext& context) override {
    int map_fd = -1;
    auto report = [&]() {
      std::string time = output::wall_clock_hms();
      for (const auto& entry : drain_counts(map_fd)) {
        std::string comm(entry.key.comm, strnlen(entry.key.comm, sizeof(entry.key.comm)));
        context.sink.record(kSwapinSchema, {time, comm, uint64_t{entry.key.pid}, entry.count});
      }
    };
    trace(context, {.what = "swap-ins",
                    .configure = [](swapin& skel) { shrink_unused_ring_buffer(skel.maps.events); },
                    .attached =
                        [&](Skeleton<swapin>& skel, EventLoop&) {
                          map_fd = bpf_map__fd(skel->maps.swapins);
                          context.sink.header(kSwapinSchema);
                        },
                    .on_interval = report,
                    .finish =
                        [&](const TracingOutcome& outcome) {
                          // Swap-ins since the last report (all of them without an interval) are not lost.
                          report();
                          report_drops(context.sink, outcome.drops);
                        }});
    return 0;
  }
};

}  // namespace
}  // namespace memscope

MEMSCOPE_TOOL(tool_swapin, "swapin", "Count swap-ins per process per interval (needs fentry or kprobes)",
              SwapinTool)
