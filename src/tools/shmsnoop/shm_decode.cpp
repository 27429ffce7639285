#include "tools/shmsnoop/shm_decode.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace memscope::shm_decode {
namespace {

std::string join(const std::vector<std::string>& parts) {
  std::string text;
  for (const auto& part : parts) text += (text.empty() ? "" : "|") + part;
  return text;
}

// Moves each named bit of `value` into `parts`, leaving unnamed bits in `value`.
void take_bits(uint64_t& value, const std::vector<std::pair<uint64_t, const char*>>& names,
               std::vector<std::string>& parts) {
  for (const auto& [bit, name] : names) {
    if (value & bit) {
      parts.push_back(name);
      value &= ~bit;
    }
  }
}

}  // namespace

std::string key_text(uint64_t key) {
  uint32_t key32 = static_cast<uint32_t>(key);
  return key32 == 0 ? "IPC_PRIVATE" : fmt::format("{:#010x}", key32);
}

std::string shmget_flag_names(uint64_t flags) {
  std::vector<std::string> parts;
  uint64_t permissions = flags & kPermissionBits;
  uint64_t rest = flags & ~kPermissionBits;
  uint64_t huge = (rest >> kShmHugeShift) & kShmHugeMask;
  rest &= ~(kShmHugeMask << kShmHugeShift);
  take_bits(rest, {{kIpcCreat, "IPC_CREAT"}, {kIpcExcl, "IPC_EXCL"}, {kShmHugeTlb, "SHM_HUGETLB"}}, parts);
  if (huge) {
    // log2 of the huge page size: SHM_HUGE_2MB is 21 << SHM_HUGE_SHIFT.
    parts.push_back(huge >= 30   ? fmt::format("SHM_HUGE_{}GB", 1ULL << (huge - 30))
                    : huge >= 20 ? fmt::format("SHM_HUGE_{}MB", 1ULL << (huge - 20))
                    : huge >= 10 ? fmt::format("SHM_HUGE_{}KB", 1ULL << (huge - 10))
                                 : fmt::format("SHM_HUGE_{}B", 1ULL << huge));
  }
  take_bits(rest, {{kShmNoReserve, "SHM_NORESERVE"}}, parts);
  if (rest) parts.push_back(fmt::format("{:#x}", rest));
  parts.push_back(fmt::format("{:#o}", permissions));
  return join(parts);
}

std::string shmat_flag_names(uint64_t flags) {
  std::vector<std::string> parts;
  take_bits(
      flags,
      {{kShmRdOnly, "SHM_RDONLY"}, {kShmRnd, "SHM_RND"}, {kShmRemap, "SHM_REMAP"}, {kShmExec, "SHM_EXEC"}},
      parts);
  if (flags) parts.push_back(fmt::format("{:#x}", flags));
  return parts.empty() ? "0" : join(parts);
}

std::string shmctl_cmd_name(uint64_t cmd) {
  std::string prefix;
  if (cmd & kIpc64) {
    prefix = "IPC_64|";
    cmd &= ~kIpc64;
  }
  const char* name = nullptr;
  switch (cmd) {
    case 0:
      name = "IPC_RMID";
      break;
    case 1:
      name = "IPC_SET";
      break;
    case 2:
      name = "IPC_STAT";
      break;
    case 3:
      name = "IPC_INFO";
      break;
    case 11:
      name = "SHM_LOCK";
      break;
    case 12:
      name = "SHM_UNLOCK";
      break;
    case 13:
      name = "SHM_STAT";
      break;
    case 14:
      name = "SHM_INFO";
      break;
    case 15:
      name = "SHM_STAT_ANY";
      break;
  }
  return prefix + (name ? std::string(name) : std::to_string(cmd));
}

}  // namespace memscope::shm_decode
