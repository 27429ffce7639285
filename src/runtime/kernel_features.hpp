// What the running kernel offers, behind an interface so that probe resolution can be unit-tested
// against fake kernels (6.1 with kprobes, 6.18 without, containers without tracefs).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "runtime/hook.hpp"

namespace memscope {
class KernelBtf;

// Whether a hook kind works at all; reason says what the kernel lacks when it doesn't.
struct Support {
  bool available = false;
  std::string reason;
};

class KernelFeatures {
 public:
  virtual ~KernelFeatures() = default;
  virtual bool has_btf() const = 0;
  virtual Support hook_support(HookKind kind) const = 0;
  // Whether `target` exists for this kind: a BTF function (fentry), a kallsyms text symbol
  // (kprobe), a BTF tracepoint (tp_btf/raw_tp), a tracefs event "category:name" (tracepoint).
  virtual bool target_exists(HookKind kind, const std::string& target) const = 0;
};

// Reads the kernel's BTF, /proc/kallsyms, /sys/bus/event_source and tracefs, and tries
// loading a minimal fentry program, because some kernels refuse fentry (EPERM) despite BTF.
class SystemKernelFeatures : public KernelFeatures {
 public:
  SystemKernelFeatures();
  ~SystemKernelFeatures() override;
  bool has_btf() const override;
  Support hook_support(HookKind kind) const override;
  bool target_exists(HookKind kind, const std::string& target) const override;
  // The kernel's BTF (runtime/kernel_btf.hpp), nullptr without it.
  const KernelBtf* kernel_btf() const { return btf_; }

 private:
  Support probe_fentry() const;
  bool kallsyms_has(const std::string& name) const;

  const KernelBtf* btf_ = nullptr;
  mutable std::map<HookKind, Support> support_cache_;
  mutable std::optional<std::set<std::string>> kallsyms_text_;
};

// A kernel described by hand, for tests and for explaining choices.
class FakeKernelFeatures : public KernelFeatures {
 public:
  bool btf = true;
  std::map<HookKind, Support> support;
  std::map<HookKind, std::set<std::string>> targets;

  bool has_btf() const override { return btf; }
  Support hook_support(HookKind kind) const override {
    auto it = support.find(kind);
    return it == support.end() ? Support{false, "not supported"} : it->second;
  }
  bool target_exists(HookKind kind, const std::string& target) const override {
    auto it = targets.find(kind);
    return it != targets.end() && it->second.count(target) > 0;
  }
};

const SystemKernelFeatures& system_kernel_features();

// Whether this machine counts hardware events (cycles, LLC references and misses: llcstat); the
// reason names the failing event and errno either way. Most virtual machines have no PMU (ENOENT).
Support hardware_pmu_support();

}  // namespace memscope
