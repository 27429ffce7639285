// The one stack type: captured addresses, symbolized lazily by the shared symbolizer and rendered by
// the sinks. Tools never format frames themselves.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace memscope::output {

// Shown at the root end of a stack whose user part the unwinder cut off (Stack::user_truncated).
inline constexpr std::string_view kTruncatedStackMarker = "[truncated]";

struct Stack {
  pid_t pid = 0;
  std::vector<uint64_t> user;    // innermost first
  std::vector<uint64_t> kernel;  // innermost first
  // The stack could not be captured (stack map full or bucket taken; counted as a drop): sinks show
  // one "[stack lost]" frame rather than none.
  bool lost = false;
  // Bit i: user frame i (innermost = 0) was found by frame pointer, not CFI. Sinks mark every frame
  // of that address's inline chain.
  uint64_t user_frame_pointer_frames = 0;
  bool user_truncated = false;  // deeper than the unwinder's depth limit
};

// One aggregated stack and its counters, e.g. bytes and allocations outstanding.
struct StackEntry {
  Stack stack;
  std::string comm;
  std::vector<std::pair<std::string, uint64_t>> values;  // JSON fields, in order
  uint64_t weight = 0;     // the value folded output and sorting use
  std::string heading;     // text line above the frames, e.g. "4096 bytes in 1 allocations from stack"
  std::vector<std::pair<std::string, std::string>> labels;  // extra string fields (JSON)
  std::vector<std::pair<std::string, bool>> flags;           // extra boolean fields (JSON)
};

struct StackReport {
  std::string name;   // JSON "event": "outstanding_allocations", "brk_stacks", …
  // Text line before the entries, e.g. "[11:02:03] Top 10 stacks with outstanding allocations:"; a report
  // without entries ends it with " none", so an empty report reads the same in every tool.
  std::string title;
  std::vector<StackEntry> entries;
};

}  // namespace memscope::output
