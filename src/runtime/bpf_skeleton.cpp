#include "runtime/bpf_skeleton.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <unistd.h>

#include <signal.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <string_view>
#include <system_error>
#include <thread>

#include "runtime/log.hpp"

namespace memscope {
namespace {

bpf_program* find_program(bpf_object* object, const std::string& name) {
  bpf_program* program = bpf_object__find_program_by_name(object, name.c_str());
  if (!program) throw FatalError(fmt::format("internal: BPF program '{}' not found", name));
  return program;
}

bool section_starts_with(bpf_program* program, const char* prefix) {
  const char* section = bpf_program__section_name(program);
  return section && std::strncmp(section, prefix, std::strlen(prefix)) == 0;
}

}  // namespace

void BpfObjectLinks::configure(bpf_object* object, const std::vector<ProbeSpec>& specs,
                               const std::vector<ResolvedProbe>& resolved) {
  // Every program the specs name must exist, chosen or not: a misspelt alternative fails on every
  // kernel, not only on the one that would pick it.
  for (const auto& spec : specs)
    for (const auto& alternative : spec.alternatives)
      for (const auto& program : alternative.programs) find_program(object, program.program);
  // Whatever no chosen hook names is never loaded: other alternatives, variants for other kernels,
  // programs of options not given. The verifier never sees hooks this kernel lacks.
  std::set<std::string> chosen = chosen_programs(resolved);
  bpf_program* program = nullptr;
  bpf_object__for_each_program(program, object) {
    // The stack service's programs (bpf/memscope_unwind.bpf.h) are its own to switch on or off.
    if (std::string_view(bpf_program__name(program)).rfind(kUserStackProgramPrefix, 0) == 0) continue;
    if (!chosen.count(bpf_program__name(program))) bpf_program__set_autoload(program, false);
  }
  for (const auto& probe : resolved) {
    if (!probe.available) continue;
    if (probe.kind != HookKind::Fentry && probe.kind != HookKind::TpBtf) continue;
    for (const auto& chosen : probe.programs) {
      if (chosen.skipped || chosen.target.empty()) continue;
      if (int err = bpf_program__set_attach_target(find_program(object, chosen.program), 0,
                                                   chosen.target.c_str()))
        throw FatalError(fmt::format("cannot target {} {}: {}", hook_kind_name(probe.kind),
                                     chosen.target, strerror(-err)));
    }
  }
}

void BpfObjectLinks::attach(bpf_object* object, const std::vector<ResolvedProbe>& resolved) {
  for (const auto& probe : resolved) {
    if (!probe.available) continue;
    for (const auto& chosen : probe.programs) {
      if (chosen.skipped) continue;
      bpf_program* program = find_program(object, chosen.program);
      bpf_link* link = nullptr;
      switch (probe.kind) {
        case HookKind::Fentry:
        case HookKind::TpBtf:
          link = bpf_program__attach(program);
          break;
        case HookKind::Kprobe: {
          LIBBPF_OPTS(bpf_kprobe_opts, opts, .retprobe = section_starts_with(program, "kretprobe"));
          link = bpf_program__attach_kprobe_opts(program, chosen.target.c_str(), &opts);
          break;
        }
        case HookKind::RawTp:
          link = bpf_program__attach_raw_tracepoint(program, chosen.target.c_str());
          break;
        case HookKind::Tracepoint: {
          auto colon = chosen.target.find(':');
          std::string category = chosen.target.substr(0, colon);
          std::string event = chosen.target.substr(colon + 1);
          link = bpf_program__attach_tracepoint(program, category.c_str(), event.c_str());
          break;
        }
        case HookKind::Uprobe:
        case HookKind::PerfEvent:
          continue;  // attached by the tool
      }
      if (!link) {
        int err = errno;
        throw FatalError(fmt::format("attaching {} {} for {} failed: {}", hook_kind_name(probe.kind),
                                     chosen.target, probe.event, strerror(err)));
      }
      links_.push_back(link);
      log::verbose("{}: attached {} {} ({})", probe.event, hook_kind_name(probe.kind), chosen.target,
                   chosen.program);
    }
  }
}

void BpfObjectLinks::absorb(BpfObjectLinks& other) {
  links_.insert(links_.end(), other.links_.begin(), other.links_.end());
  link_fds_.insert(link_fds_.end(), other.link_fds_.begin(), other.link_fds_.end());
  other.links_.clear();
  other.link_fds_.clear();
}

void BpfObjectLinks::detach() {
  // Releasing a uprobe link waits for RCU grace periods (tens of ms each on a busy machine): one
  // after another, memleak's 15 links kept `memleak -c /bin/true` waiting ~0.4 s at exit. Released
  // from several threads at once, the waits overlap. One thread per link: with 8 threads for
  // memleak's 14 links, the second round of releases waited for grace periods of its own (~80 ms).
  constexpr size_t kSerialLimit = 2, kMaxThreads = 64;
  size_t total = links_.size() + link_fds_.size();
  auto release = [this](size_t first, size_t step) {
    for (size_t i = first; i < links_.size() + link_fds_.size(); i += step) {
      if (i < links_.size())
        bpf_link__destroy(links_[i]);
      else
        close(link_fds_[i - links_.size()]);
    }
  };
  if (total <= kSerialLimit) {
    release(0, 1);
  } else {
    size_t threads = std::min(total, kMaxThreads);
    // The event loop takes signals through a signalfd: no helper thread may receive one.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    std::vector<std::thread> releasers;
    try {
      for (size_t t = 1; t < threads; t++) releasers.emplace_back(release, t, threads);
    } catch (const std::system_error&) {
      // No thread to be had: the rest goes one by one below.
    }
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    // Share t of `threads` goes to releasers[t - 1] when that thread exists, else to this one.
    for (size_t t = 0; t < threads; t++)
      if (t == 0 || t > releasers.size()) release(t, threads);
    for (auto& releaser : releasers) releaser.join();
  }
  links_.clear();
  link_fds_.clear();
}

}  // namespace memscope
