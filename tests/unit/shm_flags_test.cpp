// shmsnoop's decoders: shmget/shmat flags, shmctl commands and IPC keys, as ipcs and the man pages
// name them.
#include <gtest/gtest.h>

#include "tools/shmsnoop/shm_decode.hpp"

namespace memscope::shm_decode {
namespace {

TEST(ShmFlags, ShmgetFlagsEndWithOctalPermissions) {
  EXPECT_EQ(shmget_flag_names(01000 | 02000 | 0666), "IPC_CREAT|IPC_EXCL|0666");
  EXPECT_EQ(shmget_flag_names(01000 | 0600), "IPC_CREAT|0600");
  EXPECT_EQ(shmget_flag_names(0644), "0644");
  EXPECT_EQ(shmget_flag_names(0), "0");
  EXPECT_EQ(shmget_flag_names(01000), "IPC_CREAT|0");
}

TEST(ShmFlags, ShmgetHugePagesAndNoReserve) {
  constexpr uint64_t huge_2mb = 21ULL << 26, huge_1gb = 30ULL << 26;
  EXPECT_EQ(shmget_flag_names(01000 | 04000 | huge_2mb | 0600), "IPC_CREAT|SHM_HUGETLB|SHM_HUGE_2MB|0600");
  EXPECT_EQ(shmget_flag_names(04000 | huge_1gb | 0600), "SHM_HUGETLB|SHM_HUGE_1GB|0600");
  EXPECT_EQ(shmget_flag_names(010000 | 0600), "SHM_NORESERVE|0600");
  EXPECT_EQ(shmget_flag_names((5ULL << 26) | 0600), "SHM_HUGE_32B|0600");  // nonsense, but no bogus shift
}

TEST(ShmFlags, ShmgetUnknownBitsStayVisible) {
  EXPECT_EQ(shmget_flag_names(0x100000 | 01000 | 0600), "IPC_CREAT|0x100000|0600");
}

TEST(ShmFlags, ShmatFlags) {
  EXPECT_EQ(shmat_flag_names(0), "0");
  EXPECT_EQ(shmat_flag_names(010000), "SHM_RDONLY");
  EXPECT_EQ(shmat_flag_names(010000 | 020000), "SHM_RDONLY|SHM_RND");
  EXPECT_EQ(shmat_flag_names(040000 | 0100000), "SHM_REMAP|SHM_EXEC");
  EXPECT_EQ(shmat_flag_names(010000 | 0x1), "SHM_RDONLY|0x1");
}

TEST(ShmFlags, ShmctlCommands) {
  EXPECT_EQ(shmctl_cmd_name(0), "IPC_RMID");
  EXPECT_EQ(shmctl_cmd_name(1), "IPC_SET");
  EXPECT_EQ(shmctl_cmd_name(2), "IPC_STAT");
  EXPECT_EQ(shmctl_cmd_name(3), "IPC_INFO");
  EXPECT_EQ(shmctl_cmd_name(11), "SHM_LOCK");
  EXPECT_EQ(shmctl_cmd_name(12), "SHM_UNLOCK");
  EXPECT_EQ(shmctl_cmd_name(13), "SHM_STAT");
  EXPECT_EQ(shmctl_cmd_name(14), "SHM_INFO");
  EXPECT_EQ(shmctl_cmd_name(15), "SHM_STAT_ANY");
  EXPECT_EQ(shmctl_cmd_name(0x100 | 2), "IPC_64|IPC_STAT");
  EXPECT_EQ(shmctl_cmd_name(99), "99");
}

TEST(ShmFlags, Keys) {
  EXPECT_EQ(key_text(0), "IPC_PRIVATE");
  EXPECT_EQ(key_text(0x4d53beef), "0x4d53beef");
  EXPECT_EQ(key_text(0x1234), "0x00001234");
  // key_t is an int: a negative key arrives sign-extended in the 64-bit register.
  EXPECT_EQ(key_text(0xffffffff80000001ULL), "0x80000001");
}

}  // namespace
}  // namespace memscope::shm_decode
