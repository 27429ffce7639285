// Probe specs for tools that trace syscalls as enter/exit pairs, matching the BPF programs that
// MEMSCOPE_SYSCALL_HOOKS and MEMSCOPE_SYSCALL_DISPATCH (bpf/memscope_syscalls.bpf.h) define.
#pragma once

#include <string>
#include <vector>

#include "runtime/hook.hpp"

namespace memscope {

// One event covering entry and exit of every syscall in `syscalls` ("mmap", "brk", …), for
// programs named `prefix`_…. Alternatives, in order:
//   tracepoint syscalls:sys_enter_NAME/sys_exit_NAME  only the traced syscalls fire; stable ABI;
//                                                     needs tracefs (memscope mounts it)
//   fentry/fexit __x64_sys_NAME                       as cheap, but refused by some kernels
//   kprobe/kretprobe __x64_sys_NAME                   kernels with kprobes but no fentry
//   tp_btf, raw_tp sys_enter/sys_exit                 every syscall of every task fires, filtered
//                                                     by number in BPF: works everywhere, costs more
// All programs of one alternative attach together, so an entry is never paired with another
// flavour's exit.
ProbeSpec syscall_probe_spec(const std::string& event, const std::string& prefix,
                             const std::vector<std::string>& syscalls);

// BPF program names of one traced syscall's per-syscall hooks (tracepoint, fentry, kprobe pairs).
std::vector<std::string> syscall_program_names(const std::string& prefix, const std::string& syscall);

// "ENOMEM" for 12; "E123" when the C library does not know the number.
std::string errno_name(int error);

// The error a syscall's return value encodes ("ENOENT" for -2), or "" when it is not an error
// (Linux returns -1 … -4095 for errors).
std::string syscall_error(long ret);

}  // namespace memscope
