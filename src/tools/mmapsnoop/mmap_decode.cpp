#include "tools/mmapsnoop/mmap_decode.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace memscope::mmap_decode {

std::string prot_letters(uint64_t prot) {
  std::string text = "---";
  if (prot & kProtRead) text[0] = 'R';
  if (prot & kProtWrite) text[1] = 'W';
  if (prot & kProtExec) text[2] = 'E';
  return text;
}

std::string map_letters(uint64_t flags) {
  std::string text = "----";
  uint64_t type = flags & kMapTypeMask;
  if (type == kMapShared || type == kMapSharedValidate) text[0] = 'S';
  if (type == kMapPrivate) text[1] = 'P';
  if (flags & kMapFixed) text[2] = 'F';
  if (flags & kMapAnonymous) text[3] = 'A';
  return text;
}

std::string join_bits(uint64_t value, const std::vector<std::pair<uint64_t, const char*>>& names,
                      std::vector<std::string> parts) {
  for (const auto& [bit, name] : names) {
    if (value & bit) {
      parts.push_back(name);
      value &= ~bit;
    }
  }
  if (value) parts.push_back(fmt::format("{:#x}", value));
  std::string text;
  for (const auto& part : parts) text += (text.empty() ? "" : "|") + part;
  return text;
}

std::string prot_names(uint64_t prot) {
  if (prot == 0) return "PROT_NONE";
  return join_bits(prot, {{kProtRead, "PROT_READ"},
                          {kProtWrite, "PROT_WRITE"},
                          {kProtExec, "PROT_EXEC"},
                          {kProtSem, "PROT_SEM"},
                          {kProtGrowsDown, "PROT_GROWSDOWN"},
                          {kProtGrowsUp, "PROT_GROWSUP"}});
}

std::string map_flag_names(uint64_t flags) {
  std::vector<std::string> parts;
  switch (flags & kMapTypeMask) {
    case 0:
      break;
    case kMapShared:
      parts.push_back("MAP_SHARED");
      break;
    case kMapPrivate:
      parts.push_back("MAP_PRIVATE");
      break;
    case kMapSharedValidate:
      parts.push_back("MAP_SHARED_VALIDATE");
      break;
    case kMapDroppable:
      parts.push_back("MAP_DROPPABLE");
      break;
    default:
      parts.push_back(fmt::format("MAP_TYPE_{:#x}", flags & kMapTypeMask));
      break;
  }
  uint64_t huge = (flags >> kMapHugeShift) & kMapHugeMask;
  uint64_t rest = flags & ~kMapTypeMask & ~(kMapHugeMask << kMapHugeShift);
  std::string text = join_bits(rest,
                               {{kMapFixed, "MAP_FIXED"},
                                {kMapAnonymous, "MAP_ANONYMOUS"},
                                {0x40, "MAP_32BIT"},
                                {0x100, "MAP_GROWSDOWN"},
                                {0x800, "MAP_DENYWRITE"},
                                {0x1000, "MAP_EXECUTABLE"},
                                {0x2000, "MAP_LOCKED"},
                                {0x4000, "MAP_NORESERVE"},
                                {0x8000, "MAP_POPULATE"},
                                {0x10000, "MAP_NONBLOCK"},
                                {0x20000, "MAP_STACK"},
                                {0x40000, "MAP_HUGETLB"},
                                {0x80000, "MAP_SYNC"},
                                {0x100000, "MAP_FIXED_NOREPLACE"},
                                {0x4000000, "MAP_UNINITIALIZED"}},
                               parts);
  if (huge) {
    // The huge page size is log2 of the size in bytes: MAP_HUGE_2MB is 21 << 26.
    std::string size = huge >= 30   ? fmt::format("{}GB", 1ULL << (huge - 30))
                       : huge >= 20 ? fmt::format("{}MB", 1ULL << (huge - 20))
                       : huge >= 10 ? fmt::format("{}KB", 1ULL << (huge - 10))
                                    : fmt::format("{}B", 1ULL << huge);
    text += (text.empty() ? "" : "|") + std::string("MAP_HUGE_") + size;
  }
  return text.empty() ? "0" : text;
}

std::string mremap_flag_names(uint64_t flags) {
  if (flags == 0) return "0";
  return join_bits(flags, {{0x1, "MREMAP_MAYMOVE"}, {0x2, "MREMAP_FIXED"}, {0x4, "MREMAP_DONTUNMAP"}});
}

std::string assemble_path(const std::vector<std::string>& innermost_first, bool rooted, bool truncated) {
  std::string path;
  for (auto it = innermost_first.rbegin(); it != innermost_first.rend(); ++it) {
    if (!path.empty() || rooted || truncated) path += "/";
    path += *it;
  }
  if (truncated) return "..." + path;
  if (path.empty()) return rooted ? "/" : "?";
  return path;
}

std::optional<std::vector<std::string>> split_names(std::string_view names) {
  std::vector<std::string> split;
  while (!names.empty()) {
    size_t end = names.find('\0');
    if (end == std::string_view::npos) return std::nullopt;
    if (end > 0) split.emplace_back(names.substr(0, end));
    names.remove_prefix(end + 1);
  }
  return split;
}

}  // namespace memscope::mmap_decode
