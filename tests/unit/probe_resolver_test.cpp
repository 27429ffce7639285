// Probe resolution against fake kernels: the choices memscope makes on a 6.1 distro kernel (kprobes
// and fentry), on our 6.18 hosts (neither), and in containers without tracefs.
#include "runtime/probe_resolver.hpp"

#include <gtest/gtest.h>

namespace memscope {
namespace {

ProbeSpec oom_spec() {
  return {"OOM kill",
          {
              {HookKind::Fentry, {{"oomkill_fentry", {"oom_kill_process"}}}},
              {HookKind::Kprobe, {{"oomkill_kprobe", {"oom_kill_process"}}}},
              {HookKind::TpBtf, {{"oomkill_tp_btf", {"mark_victim"}}}},
              {HookKind::Tracepoint, {{"oomkill_tracepoint", {"oom:mark_victim"}}}},
          }};
}

ProbeSpec swapin_spec() {
  return {"swap-in",
          {
              {HookKind::Fentry, {{"swapin_fentry", {"swap_read_folio", "swap_readpage"}}}},
              {HookKind::Kprobe, {{"swapin_kprobe", {"swap_read_folio", "swap_readpage"}}}},
          }};
}

FakeKernelFeatures debian_6_1() {
  FakeKernelFeatures kernel;
  for (HookKind kind : {HookKind::Fentry, HookKind::Kprobe, HookKind::TpBtf, HookKind::RawTp, HookKind::Tracepoint})
    kernel.support[kind] = {true, ""};
  kernel.targets[HookKind::Fentry] = {"oom_kill_process", "swap_readpage"};
  kernel.targets[HookKind::Kprobe] = {"oom_kill_process", "swap_readpage"};
  kernel.targets[HookKind::TpBtf] = {"mark_victim"};
  kernel.targets[HookKind::Tracepoint] = {"oom:mark_victim"};
  return kernel;
}

FakeKernelFeatures host_6_18() {
  FakeKernelFeatures kernel;
  kernel.support[HookKind::Fentry] = {false, "fentry programs are refused by this kernel (load: Operation not permitted)"};
  kernel.support[HookKind::Kprobe] = {false, "kprobes are not built into this kernel (CONFIG_KPROBE_EVENTS)"};
  kernel.support[HookKind::TpBtf] = {true, ""};
  kernel.support[HookKind::RawTp] = {true, ""};
  kernel.support[HookKind::Tracepoint] = {false, "tracefs is not mounted and mounting it failed"};
  kernel.targets[HookKind::Fentry] = {"oom_kill_process", "swap_read_folio"};
  kernel.targets[HookKind::Kprobe] = {"oom_kill_process", "swap_read_folio"};
  kernel.targets[HookKind::TpBtf] = {"mark_victim"};
  return kernel;
}

TEST(ProbeResolver, PrefersFentryWhereTheKernelHasIt) {
  auto kernel = debian_6_1();
  auto resolver = ProbeResolver::create(kernel, "");
  ASSERT_TRUE(resolver);
  ResolvedProbe probe = resolver->resolve(oom_spec());
  ASSERT_TRUE(probe.available);
  EXPECT_EQ(probe.kind, HookKind::Fentry);
  EXPECT_EQ(probe.describe(), "fentry oom_kill_process");
}

TEST(ProbeResolver, FallsBackToOldSymbolName) {
  auto kernel = debian_6_1();
  auto resolver = ProbeResolver::create(kernel, "");
  ResolvedProbe probe = resolver->resolve(swapin_spec());
  ASSERT_TRUE(probe.available);
  EXPECT_EQ(probe.programs.at(0).target, "swap_readpage");
}

TEST(ProbeResolver, UsesTracepointWithoutKprobesAndFentry) {
  auto kernel = host_6_18();
  auto resolver = ProbeResolver::create(kernel, "");
  ResolvedProbe probe = resolver->resolve(oom_spec());
  ASSERT_TRUE(probe.available);
  EXPECT_EQ(probe.kind, HookKind::TpBtf);
  EXPECT_EQ(probe.programs.at(0).target, "mark_victim");
}

TEST(ProbeResolver, ExplainsEveryRejectedAlternative) {
  auto kernel = host_6_18();
  auto resolver = ProbeResolver::create(kernel, "");
  ResolvedProbe probe = resolver->resolve(swapin_spec());
  EXPECT_FALSE(probe.available);
  EXPECT_NE(probe.why_unavailable.find("fentry: fentry programs are refused"), std::string::npos);
  EXPECT_NE(probe.why_unavailable.find("kprobe: kprobes are not built into this kernel"), std::string::npos);
  auto all = resolver->resolve_all({swapin_spec()});
  ASSERT_FALSE(all);
  EXPECT_NE(all.error().message.find("no usable hook for swap-in"), std::string::npos);
}

TEST(ProbeResolver, ForcedModeRestrictsTheChoice) {
  auto kernel = debian_6_1();
  auto kprobe = ProbeResolver::create(kernel, "kprobe");
  ASSERT_TRUE(kprobe);
  EXPECT_EQ(kprobe->resolve(oom_spec()).kind, HookKind::Kprobe);
  auto tracepoint = ProbeResolver::create(kernel, "tracepoint");
  EXPECT_EQ(tracepoint->resolve(oom_spec()).kind, HookKind::Tracepoint);
  auto any_tracepoint = ProbeResolver::create(kernel, "tp");
  EXPECT_EQ(any_tracepoint->resolve(oom_spec()).kind, HookKind::TpBtf);
}

// compact: zone compactions exist only as tracepoints, the stalls also as fentry/kprobe.
TEST(ProbeResolver, SeveralForcedKindsGiveEachEventItsFirstPermittedOne) {
  auto kernel = debian_6_1();
  kernel.targets[HookKind::RawTp] = {"mark_victim"};
  ProbeSpec tracepoints_only = {"zone compaction",
                                {
                                    {HookKind::TpBtf, {{"zone_tp_btf", {"mark_victim"}}}},
                                    {HookKind::RawTp, {{"zone_raw_tp", {"mark_victim"}}}},
                                    {HookKind::Tracepoint, {{"zone_tracepoint", {"oom:mark_victim"}}}},
                                }};
  auto kprobe_and_tracepoint = ProbeResolver::create(kernel, "kprobe,tracepoint");
  ASSERT_TRUE(kprobe_and_tracepoint);
  EXPECT_EQ(kprobe_and_tracepoint->resolve(oom_spec()).kind, HookKind::Kprobe);
  EXPECT_EQ(kprobe_and_tracepoint->resolve(tracepoints_only).kind, HookKind::Tracepoint);
  auto fentry_and_raw_tp = ProbeResolver::create(kernel, "fentry,raw_tp");
  ASSERT_TRUE(fentry_and_raw_tp);
  EXPECT_EQ(fentry_and_raw_tp->resolve(oom_spec()).kind, HookKind::Fentry);
  EXPECT_EQ(fentry_and_raw_tp->resolve(tracepoints_only).kind, HookKind::RawTp);
  auto kprobe_and_any_tracepoint = ProbeResolver::create(kernel, "kprobe,tp");
  ASSERT_TRUE(kprobe_and_any_tracepoint);
  EXPECT_EQ(kprobe_and_any_tracepoint->resolve(tracepoints_only).kind, HookKind::TpBtf);
  auto trailing_comma = ProbeResolver::create(kernel, "kprobe,");
  ASSERT_FALSE(trailing_comma);
  EXPECT_NE(trailing_comma.error().message.find("unknown --probe mode ''"), std::string::npos);
}

TEST(ProbeResolver, ForcingAHookTheKernelLacksFails) {
  auto kernel = host_6_18();
  auto resolver = ProbeResolver::create(kernel, "kprobe");
  auto all = resolver->resolve_all({oom_spec()});
  ASSERT_FALSE(all);
  EXPECT_NE(all.error().message.find("kprobes are not built into this kernel"), std::string::npos);
}

TEST(ProbeResolver, RejectsUnknownMode) {
  auto kernel = host_6_18();
  auto resolver = ProbeResolver::create(kernel, "kretfoo");
  ASSERT_FALSE(resolver);
  EXPECT_NE(resolver.error().message.find("unknown --probe mode"), std::string::npos);
}

TEST(ProbeResolver, OnlyTheChosenAlternativeIsLoaded) {
  auto kernel = host_6_18();
  auto resolver = ProbeResolver::create(kernel, "");
  std::vector<ProbeSpec> specs = {oom_spec()};
  auto all = resolver->resolve_all(specs);
  ASSERT_TRUE(all);
  EXPECT_EQ(chosen_programs(*all), (std::set<std::string>{"oomkill_tp_btf"}));
}

TEST(ProbeResolver, OptionalProgramWithoutTargetIsSkipped) {
  auto kernel = host_6_18();
  ProbeSpec spec = {"vmscan",
                    {{HookKind::TpBtf,
                      {{"writepage", {"mm_vmscan_write_folio", "mm_vmscan_writepage"}, true},
                       {"oom", {"mark_victim"}}}}}};
  auto resolver = ProbeResolver::create(kernel, "");
  ResolvedProbe probe = resolver->resolve(spec);
  ASSERT_TRUE(probe.available);
  EXPECT_TRUE(probe.programs.at(0).skipped);
  EXPECT_FALSE(probe.programs.at(1).skipped);
  EXPECT_EQ(chosen_programs({probe}), (std::set<std::string>{"oom"}));
}

}  // namespace
}  // namespace memscope
