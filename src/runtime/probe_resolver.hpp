// Picks, for each event a tool needs, the first alternative the kernel offers (or the one the
// user forced with --probe), and explains every rejected alternative.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "runtime/hook.hpp"
#include "runtime/kernel_features.hpp"
#include "runtime/result.hpp"

namespace memscope {

struct ResolvedProgram {
  std::string program;
  std::string target;    // empty for hooks whose target the tool sets itself (uprobes)
  bool skipped = false;  // an optional program none of whose targets exist
};

struct ResolvedProbe {
  std::string event;
  bool available = false;
  bool optional = false;
  HookKind kind = HookKind::Tracepoint;
  std::vector<ResolvedProgram> programs;
  std::string why_unavailable;  // one line per rejected alternative, "; "-separated

  std::string describe() const;  // "tp_btf mark_victim"
};

class ProbeResolver {
 public:
  // forced: the --probe value ("fentry", "kprobe", "tp_btf", "raw_tp", "tracepoint", or "tp" for
  // any tracepoint flavour); empty for automatic choice.
  static Result<ProbeResolver> create(const KernelFeatures& features, const std::string& forced);

  ResolvedProbe resolve(const ProbeSpec& spec) const;
  // All specs resolved; an Error names the first required event with no usable hook.
  Result<std::vector<ResolvedProbe>> resolve_all(const std::vector<ProbeSpec>& specs) const;

 private:
  ProbeResolver(const KernelFeatures& features, std::set<HookKind> forced)
      : features_(&features), forced_(std::move(forced)) {}
  bool permitted(const ProbeSpec& spec, HookKind kind) const;

  const KernelFeatures* features_;
  std::set<HookKind> forced_;
};

// The names of the programs the resolution chose (available probes, programs not skipped): the
// only ones loaded, every other program of the object is switched off before load.
std::set<std::string> chosen_programs(const std::vector<ResolvedProbe>& resolved);

}  // namespace memscope
