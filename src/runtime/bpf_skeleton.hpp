// Skeleton lifecycle in four visible steps (open → configure → load → attach) with RAII: links
// are destroyed before the object, on every exit path, so no BPF program outlives memscope.
#pragma once

#include <bpf/libbpf.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "runtime/core_btf.hpp"
#include "runtime/hook.hpp"
#include "runtime/probe_resolver.hpp"
#include "runtime/result.hpp"

namespace memscope {

// Programs of the stack service (bpf/memscope_unwind.bpf.h) start with this; no probe spec names
// them and the service decides whether they load.
inline constexpr const char* kUserStackProgramPrefix = "memscope_unwind_";

// The part of the lifecycle that only needs the bpf_object: choosing programs, attach targets,
// loading, attaching, and holding the links.
class BpfObjectLinks {
 public:
  BpfObjectLinks() = default;
  BpfObjectLinks(const BpfObjectLinks&) = delete;
  BpfObjectLinks& operator=(const BpfObjectLinks&) = delete;
  ~BpfObjectLinks() { detach(); }

  // Before load: switch off every program of the object that no chosen hook names and point
  // fentry/tp_btf programs at their resolved targets.
  void configure(bpf_object* object, const std::vector<ProbeSpec>& specs,
                 const std::vector<ResolvedProbe>& resolved);
  // After load: attach each chosen program with its kind's libbpf call. Uprobe and perf-event
  // programs are left to the tool (their targets are user binaries or CPUs).
  void attach(bpf_object* object, const std::vector<ResolvedProbe>& resolved);
  // Keeps a link the tool attached itself (uprobes, perf events) so it is destroyed with the rest.
  void adopt(bpf_link* link) { links_.push_back(link); }
  // The same for a link libbpf cannot represent (uprobe_multi links, which libbpf 1.1 predates):
  // its descriptor, closed on detach.
  void adopt_fd(int link_fd) { link_fds_.push_back(link_fd); }
  size_t size() const { return links_.size() + link_fds_.size(); }
  // Takes over another holder's links, so that one detach() releases both sets at once.
  void absorb(BpfObjectLinks& other);
  void detach();

 private:
  std::vector<bpf_link*> links_;
  std::vector<int> link_fds_;
};

// Wraps a bpftool-generated skeleton type. Usage:
//   auto skel = Skeleton<oomkill>::open(MEMSCOPE_SKELETON_OPS(oomkill));
//   skel->rodata->filter_tgid = …;            // configure
//   skel.load(specs, resolved);  skel.attach(resolved);
template <typename Skel>
class Skeleton {
 public:
  struct Ops {
    Skel* (*open)(const bpf_object_open_opts*);
    int (*load)(Skel*);
    void (*destroy)(Skel*);
    const void* (*elf_bytes)(size_t*);
    const char* name;
  };

  // CO-RE relocations are matched against the kernel BTF cut down to this object's (core_btf.hpp);
  // its file stays open until load. When there is none, libbpf is still told to use vmlinux's BTF
  // alone: otherwise it would look in the modules' BTF for a type vmlinux lacks (a ___flavour for
  // another kernel), which needs CAP_SYS_ADMIN, and no memscope program reads a module's type.
  static Skeleton open(const Ops& ops) {
    size_t size = 0;
    const void* elf = ops.elf_bytes(&size);
    CoreRelocationBtf core_btf = CoreRelocationBtf::for_object(elf, size, ops.name);
    LIBBPF_OPTS(bpf_object_open_opts, options,
                .btf_custom_path = core_btf.path() ? core_btf.path() : vmlinux_btf_path());
    Skel* skel = ops.open(&options);
    if (!skel) throw FatalError(fmt::format("cannot open BPF object {}: {}", ops.name, strerror(errno)));
    return Skeleton(ops, skel, std::move(core_btf));
  }

  Skeleton(Skeleton&& other) noexcept
      : ops_(other.ops_), skel_(other.skel_), core_btf_(std::move(other.core_btf_)) {
    other.skel_ = nullptr;
  }
  Skeleton(const Skeleton&) = delete;
  Skeleton& operator=(const Skeleton&) = delete;
  ~Skeleton() {
    links_.detach();
    if (skel_) ops_.destroy(skel_);
  }

  Skel* operator->() { return skel_; }
  Skel* get() { return skel_; }
  bpf_object* object() { return skel_->obj; }
  BpfObjectLinks& links() { return links_; }

  void load(const std::vector<ProbeSpec>& specs, const std::vector<ResolvedProbe>& resolved) {
    links_.configure(object(), specs, resolved);
    if (int err = ops_.load(skel_); err)
      throw FatalError(fmt::format("loading BPF programs of {} failed: {}", ops_.name, strerror(-err)));
    core_btf_ = CoreRelocationBtf();
  }
  void attach(const std::vector<ResolvedProbe>& resolved) { links_.attach(object(), resolved); }

 private:
  Skeleton(const Ops& ops, Skel* skel, CoreRelocationBtf core_btf)
      : ops_(ops), skel_(skel), core_btf_(std::move(core_btf)) {}
  Ops ops_;
  Skel* skel_;
  CoreRelocationBtf core_btf_;
  BpfObjectLinks links_;
};

#define MEMSCOPE_SKELETON_OPS(name) \
    (::memscope::Skeleton<name>::Ops{name##__open_opts, name##__load, name##__destroy, name##__elf_bytes, #name})

}  // namespace memscope
