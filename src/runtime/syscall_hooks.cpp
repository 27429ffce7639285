#include "runtime/syscall_hooks.hpp"

#include <fmt/format.h>

#include <cstring>

namespace memscope {

ProbeSpec syscall_probe_spec(const std::string& event, const std::string& prefix,
                             const std::vector<std::string>& syscalls) {
  HookAlternative tracepoint{HookKind::Tracepoint, {}};
  HookAlternative fentry{HookKind::Fentry, {}};
  HookAlternative kprobe{HookKind::Kprobe, {}};
  for (const auto& name : syscalls) {
    tracepoint.programs.push_back({prefix + "_tp_enter_" + name, {"syscalls:sys_enter_" + name}});
    tracepoint.programs.push_back({prefix + "_tp_exit_" + name, {"syscalls:sys_exit_" + name}});
    // x86-64 syscall wrappers, taking the user's pt_regs (CONFIG_ARCH_HAS_SYSCALL_WRAPPER, 4.17+).
    fentry.programs.push_back({prefix + "_fentry_" + name, {"__x64_sys_" + name}});
    fentry.programs.push_back({prefix + "_fexit_" + name, {"__x64_sys_" + name}});
    kprobe.programs.push_back({prefix + "_kprobe_" + name, {"__x64_sys_" + name}});
    kprobe.programs.push_back({prefix + "_kretprobe_" + name, {"__x64_sys_" + name}});
  }
  HookAlternative tp_btf{
      HookKind::TpBtf, {{prefix + "_tp_btf_enter", {"sys_enter"}}, {prefix + "_tp_btf_exit", {"sys_exit"}}}};
  HookAlternative raw_tp{
      HookKind::RawTp, {{prefix + "_raw_tp_enter", {"sys_enter"}}, {prefix + "_raw_tp_exit", {"sys_exit"}}}};
  return {event, {tracepoint, fentry, kprobe, tp_btf, raw_tp}};
}

std::vector<std::string> syscall_program_names(const std::string& prefix, const std::string& syscall) {
  std::vector<std::string> names;
  for (const char* flavour : {"_tp_enter_", "_tp_exit_", "_fentry_", "_fexit_", "_kprobe_", "_kretprobe_"})
    names.push_back(prefix + flavour + syscall);
  return names;
}

std::string errno_name(int error) {
  const char* name = strerrorname_np(error);
  return name ? std::string(name) : fmt::format("E{}", error);
}

std::string syscall_error(long ret) {
  if (ret >= 0 || ret < -4095) return "";
  return errno_name(static_cast<int>(-ret));
}

}  // namespace memscope
