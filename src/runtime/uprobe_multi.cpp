#include "runtime/uprobe_multi.hpp"

#include <bpf/btf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "runtime/kernel_btf.hpp"

namespace memscope {
namespace {

// From the kernel's uapi (6.6+), which the installed libbpf 1.1 headers predate.
constexpr uint32_t kAttachUprobeMulti = 48;  // BPF_TRACE_UPROBE_MULTI
constexpr uint32_t kUprobeMultiReturn = 1;   // BPF_F_UPROBE_MULTI_RETURN

// union bpf_attr's link_create member with its uprobe_multi variant.
struct UprobeMultiLinkAttr {
  uint32_t prog_fd;
  uint32_t target_fd;
  uint32_t attach_type;
  uint32_t flags;
  uint64_t path;
  uint64_t offsets;
  uint64_t ref_ctr_offsets;
  uint64_t cookies;
  uint32_t count;
  uint32_t uprobe_flags;
  uint32_t pid;
  uint32_t padding;
};
static_assert(sizeof(UprobeMultiLinkAttr) == 64);

}  // namespace

bool uprobe_multi_supported() {
  const KernelBtf* vmlinux = KernelBtf::get();
  return vmlinux && vmlinux->find("bpf_uprobe_multi_link", BTF_KIND_STRUCT) > 0;
}

void expect_uprobe_multi(bpf_program* program) {
  bpf_program__set_expected_attach_type(program, static_cast<bpf_attach_type>(kAttachUprobeMulti));
}

int attach_uprobe_multi(bpf_program* program, const std::string& path, const std::vector<uint64_t>& offsets,
                        pid_t pid, bool retprobe) {
  UprobeMultiLinkAttr attr{};
  attr.prog_fd = static_cast<uint32_t>(bpf_program__fd(program));
  attr.attach_type = kAttachUprobeMulti;
  attr.path = reinterpret_cast<uint64_t>(path.c_str());
  attr.offsets = reinterpret_cast<uint64_t>(offsets.data());
  attr.count = static_cast<uint32_t>(offsets.size());
  attr.uprobe_flags = retprobe ? kUprobeMultiReturn : 0;
  attr.pid = static_cast<uint32_t>(pid);
  int fd = static_cast<int>(syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr)));
  return fd < 0 ? -errno : fd;
}

}  // namespace memscope
