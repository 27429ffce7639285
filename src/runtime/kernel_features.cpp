#include "runtime/kernel_features.hpp"
#include "runtime/kernel_btf.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <string_view>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "runtime/tracefs.hpp"

namespace memscope {
namespace {

bool path_exists(const char* path) { return access(path, F_OK) == 0; }

// Opens (and closes) one counting perf event of any task on CPU 0: 0 when the kernel and the machine
// have it, else the errno. Hardware events fail with ENOENT where there is no PMU (most virtual
// machines) and with EOPNOTSUPP where the PMU lacks the event.
int try_perf_event(uint32_t type, uint64_t config) {
  perf_event_attr attr{};
  attr.size = sizeof(attr);
  attr.type = type;
  attr.config = config;
  attr.disabled = 1;
  int fd = static_cast<int>(syscall(__NR_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC));
  if (fd < 0) return errno;
  close(fd);
  return 0;
}

// Perf event targets of hook alternatives: "hardware:cache-references", "software:cpu-clock", …
struct PerfEventName {
  const char* target;
  uint32_t type;
  uint64_t config;
};
constexpr PerfEventName kPerfEventNames[] = {
    {"hardware:cycles", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES},
    {"hardware:instructions", PERF_TYPE_HARDWARE, PERF_COUNT_HW_INSTRUCTIONS},
    {"hardware:cache-references", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CACHE_REFERENCES},
    {"hardware:cache-misses", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CACHE_MISSES},
    {"software:cpu-clock", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK},
    {"software:page-faults", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS},
};

// Perf events at all (software ones suffice for page-fault sampling), and whether there is a
// hardware PMU, said in the reason either way so `memscope doctor` can show it.
Support probe_perf_events() {
  if (int err = try_perf_event(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK))
    return {false, fmt::format("perf_event_open fails: {}{}", std::strerror(err),
                               err == EACCES || err == EPERM ? " (kernel.perf_event_paranoid, or not root)" : "")};
  int cycles = try_perf_event(PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES);
  int references = cycles ? cycles : try_perf_event(PERF_TYPE_HARDWARE, PERF_COUNT_HW_CACHE_REFERENCES);
  if (cycles == 0 && references == 0) return {true, "software events and a hardware PMU (cycles, cache references)"};
  return {true, fmt::format("software events only: no hardware PMU (perf_event_open PERF_TYPE_HARDWARE {}: {})",
                            cycles ? "cycles" : "cache-references", std::strerror(cycles ? cycles : references))};
}

}  // namespace

Support hardware_pmu_support() {
  int cycles = try_perf_event(PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES);
  int references = try_perf_event(PERF_TYPE_HARDWARE, PERF_COUNT_HW_CACHE_REFERENCES);
  int misses = try_perf_event(PERF_TYPE_HARDWARE, PERF_COUNT_HW_CACHE_MISSES);
  if (cycles == 0 && references == 0 && misses == 0)
    return {true, "cycles, cache references and cache misses count"};
  int err = references ? references : misses ? misses : cycles;
  const char* event = references ? "cache-references" : misses ? "cache-misses" : "cycles";
  return {false,
          fmt::format("no hardware {}: perf_event_open(PERF_TYPE_HARDWARE, {}) fails with {} ({}){}",
                      cycles ? "PMU" : "cache counters", event, strerrorname_np(err), std::strerror(err),
                      err == ENOENT ? "; virtual machines often have no virtual PMU" : "")};
}

SystemKernelFeatures::SystemKernelFeatures() {
  // MEMSCOPE_SIMULATE=no-btf lets the tests exercise the "kernel without BTF" path on a kernel
  // that has it (the retsnoop idea: simulate the failures users meet).
  const char* simulate = std::getenv("MEMSCOPE_SIMULATE");
  if (simulate && std::string_view(simulate) == "no-btf") return;
  btf_ = KernelBtf::get();  // shared, never freed
}

SystemKernelFeatures::~SystemKernelFeatures() = default;

bool SystemKernelFeatures::has_btf() const { return btf_ != nullptr; }

Support SystemKernelFeatures::probe_fentry() const {
  if (!btf_) return {false, "no kernel BTF (/sys/kernel/btf/vmlinux)"};
  int btf_id = -1;
  for (const char* candidate : {"bpf_fentry_test1", "do_exit", "vfs_read"}) {
    btf_id = btf_->find(candidate, BTF_KIND_FUNC);
    if (btf_id > 0) break;
  }
  if (btf_id <= 0) return {false, "no traceable function found in kernel BTF"};
  // r0 = 0; exit
  const std::array<bpf_insn, 2> instructions = {{
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  }};
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_FENTRY,
              .attach_btf_id = static_cast<__u32>(btf_id));
  int prog_fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "memscope_probe", "GPL", instructions.data(),
                              instructions.size(), &opts);
  if (prog_fd < 0) {
    int err = errno;
    return {false, fmt::format("fentry programs are refused by this kernel (load: {})",
                               std::strerror(err))};
  }
  int link_fd = bpf_raw_tracepoint_open(nullptr, prog_fd);
  int err = errno;
  close(prog_fd);
  if (link_fd < 0)
    return {false, fmt::format("fentry programs are refused by this kernel (attach: {})",
                               std::strerror(err))};
  close(link_fd);
  return {true, ""};
}

Support SystemKernelFeatures::hook_support(HookKind kind) const {
  auto cached = support_cache_.find(kind);
  if (cached != support_cache_.end()) return cached->second;
  Support support;
  switch (kind) {
    case HookKind::Fentry:
      support = probe_fentry();
      break;
    case HookKind::Kprobe:
      support = path_exists("/sys/bus/event_source/devices/kprobe/type")
                    ? Support{true, ""}
                    : Support{false, "kprobes are not built into this kernel (CONFIG_KPROBE_EVENTS)"};
      break;
    case HookKind::TpBtf:
      support = btf_ ? Support{true, ""} : Support{false, "no kernel BTF"};
      break;
    case HookKind::RawTp:
      support = {true, ""};
      break;
    case HookKind::Tracepoint: {
      std::string why;
      support = tracefs::root(&why) ? Support{true, ""} : Support{false, why};
      break;
    }
    case HookKind::Uprobe:
      support = path_exists("/sys/bus/event_source/devices/uprobe/type")
                    ? Support{true, ""}
                    : Support{false, "uprobes are not built into this kernel (CONFIG_UPROBE_EVENTS)"};
      break;
    case HookKind::PerfEvent:
      support = probe_perf_events();
      break;
  }
  support_cache_[kind] = support;
  return support;
}

bool SystemKernelFeatures::kallsyms_has(const std::string& name) const {
  if (!kallsyms_text_) {
    kallsyms_text_.emplace();
    std::ifstream in("/proc/kallsyms");
    std::string line;
    while (std::getline(in, line)) {
      // "ffffffff81000000 T name [module]"
      std::istringstream fields(line);
      std::string address, type, symbol;
      if (fields >> address >> type >> symbol && (type == "T" || type == "t"))
        kallsyms_text_->insert(symbol);
    }
  }
  return kallsyms_text_->count(name) > 0;
}

bool SystemKernelFeatures::target_exists(HookKind kind, const std::string& target) const {
  switch (kind) {
    case HookKind::Fentry:
      return btf_ && btf_->find(target, BTF_KIND_FUNC) > 0;
    case HookKind::Kprobe:
      return kallsyms_has(target);
    case HookKind::TpBtf:
      return btf_ && btf_->find("btf_trace_" + target, BTF_KIND_TYPEDEF) > 0;
    case HookKind::RawTp:
      // Raw tracepoints exist exactly where their BTF typedef does; without BTF assume present
      // and let attach tell.
      return !btf_ || btf_->find("btf_trace_" + target, BTF_KIND_TYPEDEF) > 0;
    case HookKind::Tracepoint:
      return tracefs::event_exists(target);
    case HookKind::Uprobe:
      return true;
    case HookKind::PerfEvent:
      // A named hardware or software event exists when it opens; other targets are left to attach.
      for (const auto& name : kPerfEventNames)
        if (target == name.target) return try_perf_event(name.type, name.config) == 0;
      return true;
  }
  return false;
}

const SystemKernelFeatures& system_kernel_features() {
  static SystemKernelFeatures features;
  return features;
}

std::string_view hook_kind_name(HookKind kind) {
  switch (kind) {
    case HookKind::Fentry: return "fentry";
    case HookKind::Kprobe: return "kprobe";
    case HookKind::TpBtf: return "tp_btf";
    case HookKind::RawTp: return "raw_tp";
    case HookKind::Tracepoint: return "tracepoint";
    case HookKind::Uprobe: return "uprobe";
    case HookKind::PerfEvent: return "perf_event";
  }
  return "?";
}

std::optional<HookKind> parse_hook_kind(std::string_view name) {
  for (HookKind kind : {HookKind::Fentry, HookKind::Kprobe, HookKind::TpBtf, HookKind::RawTp,
                        HookKind::Tracepoint, HookKind::Uprobe, HookKind::PerfEvent})
    if (hook_kind_name(kind) == name) return kind;
  return std::nullopt;
}

}  // namespace memscope
