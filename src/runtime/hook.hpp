// The kinds of kernel and user hooks a probe can use, and how a probe lists its alternatives.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace memscope {

enum class HookKind { Fentry, Kprobe, TpBtf, RawTp, Tracepoint, Uprobe, PerfEvent };

std::string_view hook_kind_name(HookKind kind);
std::optional<HookKind> parse_hook_kind(std::string_view name);

// One BPF program of an alternative and the kernel names it may attach to, tried in order
// (new name first, then the names older kernels use).
struct HookProgram {
  std::string program;               // BPF program name in the object
  std::vector<std::string> targets;  // function, "category:event" or raw tracepoint names
  bool optional = false;             // the alternative still works without this program
};

// One way of observing an event: all programs of one alternative attach together (e.g. an
// enter/exit pair), so a tool never mixes a kprobe entry with a tracepoint exit.
struct HookAlternative {
  HookKind kind;
  std::vector<HookProgram> programs;
};

// An event a tool needs, with its alternatives in order of preference.
struct ProbeSpec {
  std::string event;  // what is observed, for messages: "OOM kill", "swap-in"
  std::vector<HookAlternative> alternatives;
  bool optional = false;  // the tool runs (with less output) when no alternative is available
};

}  // namespace memscope
