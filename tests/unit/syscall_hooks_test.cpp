// The enter/exit probe specs of the syscall tools resolve to the right pair of programs on the
// kernels memscope meets: per-syscall tracepoints where tracefs is, fentry or kprobes (6.1) where it
// is not, and the generic sys_enter/sys_exit tracepoints on kernels with neither (6.18 hosts).
#include "runtime/syscall_hooks.hpp"

#include <gtest/gtest.h>

#include "runtime/probe_resolver.hpp"

namespace memscope {
namespace {

FakeKernelFeatures kernel_with(std::set<HookKind> supported) {
  FakeKernelFeatures kernel;
  for (HookKind kind :
       {HookKind::Fentry, HookKind::Kprobe, HookKind::TpBtf, HookKind::RawTp, HookKind::Tracepoint})
    kernel.support[kind] = {false, std::string(hook_kind_name(kind)) + " missing"};
  for (HookKind kind : supported) kernel.support[kind] = {true, ""};
  kernel.support[HookKind::Kprobe].reason = "kprobes are not built into this kernel (CONFIG_KPROBE_EVENTS)";
  for (const char* name : {"mmap", "munmap", "mremap", "brk", "shmget", "shmat", "shmdt", "shmctl"}) {
    kernel.targets[HookKind::Tracepoint].insert(std::string("syscalls:sys_enter_") + name);
    kernel.targets[HookKind::Tracepoint].insert(std::string("syscalls:sys_exit_") + name);
    kernel.targets[HookKind::Fentry].insert(std::string("__x64_sys_") + name);
    kernel.targets[HookKind::Kprobe].insert(std::string("__x64_sys_") + name);
  }
  kernel.targets[HookKind::TpBtf] = {"sys_enter", "sys_exit"};
  kernel.targets[HookKind::RawTp] = {"sys_enter", "sys_exit"};
  return kernel;
}

ResolvedProbe resolve(const KernelFeatures& kernel, const ProbeSpec& spec, const std::string& forced = "") {
  auto resolver = ProbeResolver::create(kernel, forced);
  EXPECT_TRUE(resolver);
  return resolver->resolve(spec);
}

TEST(SyscallHooks, PerSyscallTracepointsComeFirst) {
  auto kernel = kernel_with(
      {HookKind::Fentry, HookKind::Kprobe, HookKind::TpBtf, HookKind::RawTp, HookKind::Tracepoint});
  ResolvedProbe probe = resolve(kernel, syscall_probe_spec("mmap", "mmapsnoop", {"mmap", "munmap"}));
  ASSERT_TRUE(probe.available);
  EXPECT_EQ(probe.kind, HookKind::Tracepoint);
  ASSERT_EQ(probe.programs.size(), 4u);
  EXPECT_EQ(probe.programs[0].program, "mmapsnoop_tp_enter_mmap");
  EXPECT_EQ(probe.programs[0].target, "syscalls:sys_enter_mmap");
  EXPECT_EQ(probe.programs[1].program, "mmapsnoop_tp_exit_mmap");
  EXPECT_EQ(probe.programs[3].target, "syscalls:sys_exit_munmap");
}

TEST(SyscallHooks, Debian61WithoutTracefsUsesFentryPairs) {
  auto kernel = kernel_with({HookKind::Fentry, HookKind::Kprobe, HookKind::TpBtf, HookKind::RawTp});
  ResolvedProbe probe = resolve(kernel, syscall_probe_spec("brk", "brkstack", {"brk"}));
  ASSERT_TRUE(probe.available);
  EXPECT_EQ(probe.kind, HookKind::Fentry);
  EXPECT_EQ(probe.describe(), "fentry __x64_sys_brk,__x64_sys_brk");
  EXPECT_EQ(probe.programs[0].program, "brkstack_fentry_brk");
  EXPECT_EQ(probe.programs[1].program, "brkstack_fexit_brk");
}

TEST(SyscallHooks, KprobePairsWhenFentryIsRefused) {
  auto kernel = kernel_with({HookKind::Kprobe, HookKind::TpBtf, HookKind::RawTp});
  ResolvedProbe probe = resolve(kernel, syscall_probe_spec("shm", "shmsnoop", {"shmget"}));
  ASSERT_TRUE(probe.available);
  EXPECT_EQ(probe.kind, HookKind::Kprobe);
  EXPECT_EQ(probe.programs[0].program, "shmsnoop_kprobe_shmget");
  EXPECT_EQ(probe.programs[1].program, "shmsnoop_kretprobe_shmget");
}

TEST(SyscallHooks, HostWithoutTracefsKprobesOrFentryUsesGenericTracepoints) {
  auto kernel = kernel_with({HookKind::TpBtf, HookKind::RawTp});
  ResolvedProbe probe =
      resolve(kernel, syscall_probe_spec("shm", "shmsnoop", {"shmget", "shmat", "shmdt", "shmctl"}));
  ASSERT_TRUE(probe.available);
  EXPECT_EQ(probe.kind, HookKind::TpBtf);
  EXPECT_EQ(probe.describe(), "tp_btf sys_enter,sys_exit");
  ASSERT_EQ(probe.programs.size(), 2u);
  EXPECT_EQ(probe.programs[0].program, "shmsnoop_tp_btf_enter");
}

TEST(SyscallHooks, ForcedKprobeOnAKernelWithoutThemSaysKprobes) {
  auto kernel = kernel_with({HookKind::TpBtf, HookKind::RawTp, HookKind::Tracepoint});
  auto resolver = ProbeResolver::create(kernel, "kprobe");
  ASSERT_TRUE(resolver);
  auto all = resolver->resolve_all({syscall_probe_spec("mmap", "mmapsnoop", {"mmap"})});
  ASSERT_FALSE(all);
  EXPECT_NE(all.error().message.find("kprobes are not built into this kernel"), std::string::npos)
      << all.error().message;
}

TEST(SyscallHooks, ProgramNamesMatchTheSpec) {
  ProbeSpec spec = syscall_probe_spec("brk", "brkstack", {"brk"});
  std::set<std::string> in_spec;
  for (const auto& alternative : spec.alternatives)
    for (const auto& program : alternative.programs) in_spec.insert(program.program);
  for (const auto& name : syscall_program_names("brkstack", "brk")) EXPECT_TRUE(in_spec.count(name)) << name;
  EXPECT_EQ(in_spec.size(), syscall_program_names("brkstack", "brk").size() + 4);
}

TEST(SyscallHooks, ErrorNames) {
  EXPECT_EQ(syscall_error(-12), "ENOMEM");
  EXPECT_EQ(syscall_error(-9), "EBADF");
  EXPECT_EQ(syscall_error(0), "");
  EXPECT_EQ(syscall_error(0x7f0000000000), "");
  EXPECT_EQ(syscall_error(-5000), "");  // not an errno range: a value, not an error
  EXPECT_EQ(errno_name(4000), "E4000");
}

}  // namespace
}  // namespace memscope
