#include "runtime/probe_resolver.hpp"

#include <fmt/format.h>

namespace memscope {

std::string ResolvedProbe::describe() const {
  if (!available) return "unavailable";
  std::string text(hook_kind_name(kind));
  std::string targets;
  for (const auto& program : programs) {
    if (program.target.empty()) continue;
    if (!targets.empty()) targets += ",";
    targets += program.target;
  }
  return targets.empty() ? text : text + " " + targets;
}

Result<ProbeResolver> ProbeResolver::create(const KernelFeatures& features,
                                            const std::string& forced) {
  if (forced.empty()) return ProbeResolver(features, {});
  // A comma-separated list ("kprobe,tracepoint") permits several kinds: a tool whose events have
  // different hook families (compact: zone compactions only as tracepoints, stalls also as kprobes)
  // can then be forced into one of each; every event takes the first permitted alternative.
  std::set<HookKind> kinds;
  size_t position = 0;
  while (position <= forced.size()) {
    size_t comma = forced.find(',', position);
    if (comma == std::string::npos) comma = forced.size();
    std::string name = forced.substr(position, comma - position);
    position = comma + 1;
    if (name == "tp") {
      kinds.insert({HookKind::TpBtf, HookKind::RawTp, HookKind::Tracepoint});
      continue;
    }
    auto kind = parse_hook_kind(name);
    if (!kind)
      return Error{fmt::format("unknown --probe mode '{}' (use fentry, kprobe, tp_btf, raw_tp, "
                               "tracepoint or tp, or several separated by commas)",
                               name)};
    kinds.insert(*kind);
  }
  return ProbeResolver(features, std::move(kinds));
}

bool ProbeResolver::permitted(const ProbeSpec& spec, HookKind kind) const {
  if (forced_.empty()) return true;
  // A forced kernel hook kind does not apply to events that only user-space hooks can see.
  bool spec_has_forced_kind = false;
  for (const auto& alternative : spec.alternatives)
    if (forced_.count(alternative.kind)) spec_has_forced_kind = true;
  if (!spec_has_forced_kind) {
    bool user_only = true;
    for (const auto& alternative : spec.alternatives)
      if (alternative.kind != HookKind::Uprobe && alternative.kind != HookKind::PerfEvent)
        user_only = false;
    if (user_only) return true;
  }
  return forced_.count(kind) > 0;
}

ResolvedProbe ProbeResolver::resolve(const ProbeSpec& spec) const {
  ResolvedProbe resolved;
  resolved.event = spec.event;
  resolved.optional = spec.optional;
  std::vector<std::string> rejections;
  for (const auto& alternative : spec.alternatives) {
    std::string kind_name(hook_kind_name(alternative.kind));
    if (!permitted(spec, alternative.kind)) continue;
    Support support = features_->hook_support(alternative.kind);
    if (!support.available) {
      rejections.push_back(fmt::format("{}: {}", kind_name, support.reason));
      continue;
    }
    std::vector<ResolvedProgram> programs;
    std::string missing;
    for (const auto& program : alternative.programs) {
      std::string found;
      for (const auto& target : program.targets) {
        if (features_->target_exists(alternative.kind, target)) {
          found = target;
          break;
        }
      }
      if (found.empty() && !program.targets.empty() && !program.optional) {
        // Perf events are missing from the machine (no PMU), not from the kernel.
        const char* why = alternative.kind == HookKind::PerfEvent ? "this machine does not count it (see pmu)"
                                                                  : "not in this kernel";
        missing = fmt::format("{} {}: {}", kind_name, fmt::join(program.targets, " | "), why);
        break;
      }
      programs.push_back({program.program, found, found.empty() && !program.targets.empty()});
    }
    if (!missing.empty()) {
      rejections.push_back(missing);
      continue;
    }
    resolved.available = true;
    resolved.kind = alternative.kind;
    resolved.programs = std::move(programs);
    return resolved;
  }
  if (rejections.empty()) {
    rejections.push_back(forced_.empty() ? "no hook alternatives declared"
                                         : "no alternative of the forced --probe kind");
  }
  resolved.why_unavailable = fmt::format("{}", fmt::join(rejections, "; "));
  return resolved;
}

Result<std::vector<ResolvedProbe>> ProbeResolver::resolve_all(
    const std::vector<ProbeSpec>& specs) const {
  std::vector<ResolvedProbe> all;
  for (const auto& spec : specs) {
    ResolvedProbe resolved = resolve(spec);
    if (!resolved.available && !spec.optional)
      return Error{fmt::format("no usable hook for {}: {}", spec.event, resolved.why_unavailable)};
    all.push_back(std::move(resolved));
  }
  return all;
}

std::set<std::string> chosen_programs(const std::vector<ResolvedProbe>& resolved) {
  std::set<std::string> chosen;
  for (const auto& probe : resolved)
    for (const auto& program : probe.programs)
      if (probe.available && !program.skipped) chosen.insert(program.program);
  return chosen;
}

}  // namespace memscope
