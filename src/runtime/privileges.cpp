#include "runtime/privileges.hpp"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace memscope {
namespace {

constexpr int kCapSysAdmin = 21;
constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;

bool has_capability(const __user_cap_data_struct (&data)[2], int capability) {
  return data[capability / 32].effective & (1u << (capability % 32));
}

}  // namespace

std::string missing_bpf_privileges() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &header, data) != 0) return "cannot read capabilities";
  if (has_capability(data, kCapSysAdmin)) return "";
  if (has_capability(data, kCapBpf) && has_capability(data, kCapPerfmon)) return "";
  return "memscope needs root, or CAP_BPF and CAP_PERFMON (run with sudo)";
}

}  // namespace memscope
