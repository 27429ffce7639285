// mmapsnoop's decoders: the book's PROT/MAP letters, flag names for JSON, and file paths assembled
// from the dentry names the BPF program collects.
#include <gtest/gtest.h>

#include "tools/mmapsnoop/mmap_decode.hpp"

namespace memscope::mmap_decode {
namespace {

TEST(MmapFlags, BookProtLetters) {
  EXPECT_EQ(prot_letters(0), "---");
  EXPECT_EQ(prot_letters(0x1), "R--");
  EXPECT_EQ(prot_letters(0x1 | 0x2), "RW-");
  EXPECT_EQ(prot_letters(0x1 | 0x4), "R-E");
  EXPECT_EQ(prot_letters(0x7), "RWE");
}

TEST(MmapFlags, BookMapLetters) {
  EXPECT_EQ(map_letters(0x01), "S---");
  EXPECT_EQ(map_letters(0x02), "-P--");
  EXPECT_EQ(map_letters(0x02 | 0x20), "-P-A");
  EXPECT_EQ(map_letters(0x02 | 0x10), "-PF-");
  EXPECT_EQ(map_letters(0x03), "S---");  // MAP_SHARED_VALIDATE is a shared mapping
}

TEST(MmapFlags, ProtNames) {
  EXPECT_EQ(prot_names(0), "PROT_NONE");
  EXPECT_EQ(prot_names(0x3), "PROT_READ|PROT_WRITE");
  EXPECT_EQ(prot_names(0x5), "PROT_READ|PROT_EXEC");
  EXPECT_EQ(prot_names(0x1 | 0x40), "PROT_READ|0x40");
}

TEST(MmapFlags, MapFlagNames) {
  EXPECT_EQ(map_flag_names(0x01), "MAP_SHARED");
  EXPECT_EQ(map_flag_names(0x22), "MAP_PRIVATE|MAP_ANONYMOUS");
  EXPECT_EQ(map_flag_names(0x03 | 0x80000), "MAP_SHARED_VALIDATE|MAP_SYNC");
  EXPECT_EQ(map_flag_names(0x12 | 0x800), "MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE");
  EXPECT_EQ(map_flag_names(0x22 | 0x20000 | 0x4000), "MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE|MAP_STACK");
  EXPECT_EQ(map_flag_names(0x08 | 0x20), "MAP_DROPPABLE|MAP_ANONYMOUS");
  EXPECT_EQ(map_flag_names(0x02 | 0x100000), "MAP_PRIVATE|MAP_FIXED_NOREPLACE");
  EXPECT_EQ(map_flag_names(0), "0");
}

TEST(MmapFlags, HugePageSizes) {
  EXPECT_EQ(map_flag_names(0x22 | 0x40000 | (21ULL << 26)),
            "MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB|MAP_HUGE_2MB");
  EXPECT_EQ(map_flag_names(0x22 | 0x40000 | (30ULL << 26)),
            "MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB|MAP_HUGE_1GB");
  EXPECT_EQ(map_flag_names(0x22 | 0x40000 | (16ULL << 26)),
            "MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB|MAP_HUGE_64KB");
  EXPECT_EQ(map_flag_names(0x02 | (5ULL << 26)), "MAP_PRIVATE|MAP_HUGE_32B");  // nonsense, but no bogus shift
}

TEST(MmapFlags, UnknownBitsStayVisible) {
  EXPECT_EQ(map_flag_names(0x02 | 0x200000), "MAP_PRIVATE|0x200000");
}

TEST(MmapFlags, MremapFlagNames) {
  EXPECT_EQ(mremap_flag_names(0), "0");
  EXPECT_EQ(mremap_flag_names(1), "MREMAP_MAYMOVE");
  EXPECT_EQ(mremap_flag_names(1 | 2), "MREMAP_MAYMOVE|MREMAP_FIXED");
  EXPECT_EQ(mremap_flag_names(1 | 4), "MREMAP_MAYMOVE|MREMAP_DONTUNMAP");
}

TEST(MmapPaths, AbsoluteFromInnermostFirstNames) {
  EXPECT_EQ(assemble_path({"libc.so.6", "x86_64-linux-gnu", "lib", "usr"}, true, false),
            "/usr/lib/x86_64-linux-gnu/libc.so.6");
  EXPECT_EQ(assemble_path({}, true, false), "/");
}

TEST(MmapPaths, KernelInternalFilesHaveNoLeadingSlash) {
  EXPECT_EQ(assemble_path({"memfd:pool"}, false, false), "memfd:pool");
  EXPECT_EQ(assemble_path({"[perf_event]"}, false, false), "[perf_event]");
}

TEST(MmapPaths, TruncatedPathsSayTheyAre) {
  EXPECT_EQ(assemble_path({"file", "deep"}, false, true), ".../deep/file");
}

TEST(MmapPaths, RecordNamesSplitAtTheirNuls) {
  using namespace std::string_view_literals;
  EXPECT_EQ(split_names("libc.so.6\0x86_64-linux-gnu\0lib\0usr\0"sv),
            (std::vector<std::string>{"libc.so.6", "x86_64-linux-gnu", "lib", "usr"}));
  EXPECT_EQ(split_names(""sv), std::vector<std::string>{});
  // A failed read leaves an empty name: it adds nothing to the path.
  EXPECT_EQ(split_names("file\0\0dir\0"sv), (std::vector<std::string>{"file", "dir"}));
}

TEST(MmapPaths, RecordNamesWithoutTheirLastNulAreRejected) {
  using namespace std::string_view_literals;
  EXPECT_EQ(split_names("file\0di"sv), std::nullopt);
  EXPECT_EQ(split_names("file"sv), std::nullopt);
}

}  // namespace
}  // namespace memscope::mmap_decode
