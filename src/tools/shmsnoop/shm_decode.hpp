// Decoding System V shared memory syscall arguments for shmsnoop (unit-tested in
// tests/unit/shm_flags_test.cpp). Values from include/uapi/linux/ipc.h and include/uapi/linux/shm.h, defined
// here so they do not depend on the build host's libc headers.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace memscope::shm_decode {

inline constexpr uint64_t kIpcCreat = 01000, kIpcExcl = 02000;
inline constexpr uint64_t kShmHugeTlb = 04000, kShmNoReserve = 010000;
inline constexpr int kShmHugeShift = 26;
inline constexpr uint64_t kShmHugeMask = 0x3f;
inline constexpr uint64_t kShmRdOnly = 010000, kShmRnd = 020000, kShmRemap = 040000, kShmExec = 0100000;
inline constexpr uint64_t kIpc64 = 0x100;
inline constexpr uint64_t kPermissionBits = 0777;

// "IPC_PRIVATE" or the key in hex, as ipcs shows it: key_t is 32 bits.
std::string key_text(uint64_t key);

// shmget's shmflg: "IPC_CREAT|IPC_EXCL|0666", "SHM_HUGETLB|SHM_HUGE_2MB|0600", "0600".
std::string shmget_flag_names(uint64_t flags);

// shmat's shmflg: "SHM_RDONLY|SHM_RND", "0" when none.
std::string shmat_flag_names(uint64_t flags);

// shmctl's cmd: "IPC_RMID", "IPC_64|IPC_STAT" (the flag old ABIs pass), or the number.
std::string shmctl_cmd_name(uint64_t cmd);

}  // namespace memscope::shm_decode
