// Decoding mmap()/mremap() arguments for mmapsnoop (unit-tested in tests/unit/mmap_flags_test.cpp).
// Values from include/uapi/asm-generic/mman-common.h and linux/mman.h (x86-64); defined here rather
// than taken from <sys/mman.h> so that flags newer than the build host's libc still decode.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace memscope::mmap_decode {

inline constexpr uint64_t kProtRead = 0x1, kProtWrite = 0x2, kProtExec = 0x4, kProtSem = 0x8;
inline constexpr uint64_t kProtGrowsDown = 0x01000000, kProtGrowsUp = 0x02000000;

inline constexpr uint64_t kMapTypeMask = 0x0f;
inline constexpr uint64_t kMapShared = 0x01, kMapPrivate = 0x02, kMapSharedValidate = 0x03,
                          kMapDroppable = 0x08;
inline constexpr uint64_t kMapFixed = 0x10, kMapAnonymous = 0x20;
inline constexpr int kMapHugeShift = 26;
inline constexpr uint64_t kMapHugeMask = 0x3f;

// Book/BCC columns: PROT "RWE" with '-' for each missing right.
std::string prot_letters(uint64_t prot);

// Book/BCC columns: MAP "SPFA" — shared, private, fixed, anonymous — with '-' for each absent.
std::string map_letters(uint64_t flags);

// Named bits joined with '|', then whatever is left as hex, so no bit is ever hidden.
std::string join_bits(uint64_t value, const std::vector<std::pair<uint64_t, const char*>>& names,
                      std::vector<std::string> parts = {});

std::string prot_names(uint64_t prot);

// "MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB|MAP_HUGE_2MB".
std::string map_flag_names(uint64_t flags);

std::string mremap_flag_names(uint64_t flags);

// A path from dentry names collected innermost first. `rooted`: the names reach the task's root
// directory (an absolute path); otherwise the file lives on a kernel-internal mount and is shown as
// the kernel names it in /proc/PID/maps ("memfd:x", "[perf_event]"). `truncated`: more names were
// above the ones collected.
std::string assemble_path(const std::vector<std::string>& innermost_first, bool rooted, bool truncated);

// The names of a record's path area: back to back, each ending in a NUL, empty ones (left by a
// failed read) skipped. nullopt when the last name runs to the end without its NUL.
std::optional<std::vector<std::string>> split_names(std::string_view names);

}  // namespace memscope::mmap_decode
