// The USDT note parser: descriptors, the prelink base adjustment, argument specs, patterns, and the
// probes of this very test binary (it declares two with <sys/sdt.h>, one with a semaphore).
#define _SDT_HAS_SEMAPHORES 1
#include "runtime/usdt_notes.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <link.h>
#include <sys/sdt.h>
#include <unistd.h>

#include <cstring>
#include <vector>

extern "C" {
unsigned short memscope_unit_plain_semaphore __attribute__((unused)) __attribute__((section(".probes")));
unsigned short memscope_unit_guarded_semaphore __attribute__((unused)) __attribute__((section(".probes")));
}

namespace memscope::usdt {
namespace {

__attribute__((noinline)) void fire_unit_probes(int small, long large) {
  STAP_PROBE2(memscope_unit, plain, small, large);
  if (memscope_unit_guarded_semaphore) STAP_PROBE1(memscope_unit, guarded, small);
}

std::vector<uint8_t> descriptor(const std::vector<uint64_t>& addresses, int address_size,
                                const std::vector<std::string>& strings) {
  std::vector<uint8_t> bytes;
  for (uint64_t address : addresses)
    for (int i = 0; i < address_size; i++) bytes.push_back(static_cast<uint8_t>(address >> (8 * i)));
  for (const auto& text : strings) {
    bytes.insert(bytes.end(), text.begin(), text.end());
    bytes.push_back(0);
  }
  return bytes;
}

TEST(UsdtNotes, DecodesA64BitDescriptor) {
  auto bytes = descriptor({0x401126, 0x402004, 0x404030}, 8, {"libc", "memory_sbrk_more", "8@%rax 8@%rbx"});
  auto note = decode_note_descriptor(bytes.data(), bytes.size(), 8);
  ASSERT_TRUE(note);
  EXPECT_EQ(note->address, 0x401126u);
  EXPECT_EQ(note->base, 0x402004u);
  EXPECT_EQ(note->semaphore, 0x404030u);
  EXPECT_EQ(note->provider, "libc");
  EXPECT_EQ(note->name, "memory_sbrk_more");
  EXPECT_EQ(note->arguments, "8@%rax 8@%rbx");
}

TEST(UsdtNotes, DecodesA32BitDescriptorWithoutArguments) {
  auto bytes = descriptor({0x8048000, 0x8049000, 0}, 4, {"prov", "name"});
  auto note = decode_note_descriptor(bytes.data(), bytes.size(), 4);
  ASSERT_TRUE(note);
  EXPECT_EQ(note->address, 0x8048000u);
  EXPECT_EQ(note->semaphore, 0u);
  EXPECT_EQ(note->name, "name");
  EXPECT_EQ(note->arguments, "");
}

TEST(UsdtNotes, RejectsTruncatedDescriptors) {
  auto bytes = descriptor({1, 2, 3}, 8, {"provider"});
  bytes.push_back('x');  // name without its terminating NUL
  EXPECT_FALSE(decode_note_descriptor(bytes.data(), bytes.size(), 8));
  EXPECT_FALSE(decode_note_descriptor(bytes.data(), 20, 8));
}

TEST(UsdtNotes, PrelinkMovesAddressAndSemaphoreByTheBaseDifference) {
  RawNote note;
  note.address = 0x1126;
  note.base = 0x2004;
  note.semaphore = 0x4030;
  apply_base_adjustment(note, 0x10002004);  // prelinked to 0x10000000
  EXPECT_EQ(note.address, 0x10001126u);
  EXPECT_EQ(note.semaphore, 0x10004030u);

  RawNote downward;
  downward.address = 0x10001126;
  downward.base = 0x10002004;
  apply_base_adjustment(downward, 0x2004);
  EXPECT_EQ(downward.address, 0x1126u);
  EXPECT_EQ(downward.semaphore, 0u) << "no semaphore stays no semaphore";

  RawNote unadjusted;
  unadjusted.address = 0x1126;
  unadjusted.base = 0x2004;
  apply_base_adjustment(unadjusted, 0);  // no .stapsdt.base section
  EXPECT_EQ(unadjusted.address, 0x1126u);
}

TEST(UsdtNotes, ParsesArgumentSpecs) {
  auto arguments = parse_arguments("-4@%edi 8@-8(%rbp)  1@$5 -2@%ax %rsi");
  ASSERT_EQ(arguments.size(), 5u);
  EXPECT_EQ(arguments[0].size, 4);
  EXPECT_TRUE(arguments[0].is_signed);
  EXPECT_EQ(arguments[0].location, "%edi");
  EXPECT_EQ(arguments[1].size, 8);
  EXPECT_FALSE(arguments[1].is_signed);
  EXPECT_EQ(arguments[1].location, "-8(%rbp)");
  EXPECT_EQ(arguments[2].size, 1);
  EXPECT_EQ(arguments[2].location, "$5");
  EXPECT_EQ(arguments[3].size, 2);
  EXPECT_TRUE(arguments[3].is_signed);
  EXPECT_EQ(arguments[4].location, "%rsi") << "a bare location (old notes) is an 8-byte value";
  EXPECT_TRUE(parse_arguments("").empty());
}

// A size with more digits than an int holds made std::stoi throw, and `memscope usdt -l` on such a
// binary died of an uncaught exception (seen while writing the usdt_notes fuzz target, whose corpus
// keeps the input: argument_size_overflow.txt).
TEST(UsdtNotes, ArgumentSizeTooLongForAnIntIsAnEightByteValue) {
  auto arguments = parse_arguments("99999999999@%rax -99999999999@%rdi");
  ASSERT_EQ(arguments.size(), 2u);
  EXPECT_EQ(arguments[0].size, 8);
  EXPECT_EQ(arguments[0].location, "%rax");
  EXPECT_EQ(arguments[1].size, 8);
  EXPECT_TRUE(arguments[1].is_signed);
}

TEST(UsdtNotes, FormatsArgumentsByDeclaredSizeAndSign) {
  EXPECT_EQ(format_argument({4, true, ""}, static_cast<uint64_t>(-42)), "-42");
  EXPECT_EQ(format_argument({4, true, ""}, 0xffffffffu), "-1") << "sign-extended from 32 bits";
  EXPECT_EQ(format_argument({2, false, ""}, static_cast<uint64_t>(-1)), "65535");
  EXPECT_EQ(format_argument({1, true, ""}, 0xff), "-1");
  EXPECT_EQ(format_argument({8, false, ""}, 0x123456789ULL), "4886718345");
  EXPECT_EQ(format_argument({8, true, ""}, static_cast<uint64_t>(-7)), "-7");
}

TEST(UsdtNotes, MatchesProviderAndNameWithWildcards) {
  Probe probe;
  probe.provider = "libc";
  probe.name = "memory_sbrk_more";
  EXPECT_TRUE(probe_matches(probe, "libc:memory_sbrk_more"));
  EXPECT_TRUE(probe_matches(probe, "libc:memory_*"));
  EXPECT_TRUE(probe_matches(probe, "*:memory_sbrk_more"));
  EXPECT_TRUE(probe_matches(probe, "memory_sbrk_more")) << "a bare name matches any provider";
  EXPECT_FALSE(probe_matches(probe, "libc:memory_sbrk_less"));
  EXPECT_FALSE(probe_matches(probe, "rtld:memory_sbrk_more"));
}

int collect_load_bias(dl_phdr_info* info, size_t, void* data) {
  *static_cast<uint64_t*>(data) = info->dlpi_addr;
  return 1;  // the first object is the executable
}

TEST(UsdtNotes, ReadsTheProbesOfThisBinary) {
  fire_unit_probes(1, 2);
  // The file itself: memscope does not follow /proc magic links such as /proc/self/exe.
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  auto found = read_file_probes(self, "unit_tests");
  ASSERT_TRUE(found) << found.error().message;
  EXPECT_TRUE(found->has_notes_section);
  const Probe* plain = nullptr;
  const Probe* guarded = nullptr;
  for (const auto& probe : found->probes) {
    if (probe.provider != "memscope_unit") continue;
    if (probe.name == "plain") plain = &probe;
    if (probe.name == "guarded") guarded = &probe;
  }
  ASSERT_NE(plain, nullptr);
  ASSERT_NE(guarded, nullptr);
  EXPECT_EQ(plain->path, "unit_tests");
  EXPECT_EQ(plain->file, self);
  ASSERT_EQ(plain->arguments.size(), 2u);
  EXPECT_EQ(plain->arguments[0].size, 4);
  EXPECT_TRUE(plain->arguments[0].is_signed);
  EXPECT_EQ(plain->arguments[1].size, 8);
  EXPECT_TRUE(plain->arguments[1].is_signed);

  // Every probe of this TU has a semaphore (_SDT_HAS_SEMAPHORES), and the guarded one's is the
  // variable above: its link-time address plus the load bias is where it lives now.
  uint64_t load_bias = 0;
  dl_iterate_phdr(collect_load_bias, &load_bias);
  EXPECT_EQ(guarded->semaphore + load_bias, reinterpret_cast<uint64_t>(&memscope_unit_guarded_semaphore));
  EXPECT_NE(guarded->semaphore_file_offset, 0u);

  // The probe site is a NOP at the file offset a uprobe would use.
  int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  uint8_t instruction = 0;
  EXPECT_EQ(pread(fd, &instruction, 1, static_cast<off_t>(plain->file_offset)), 1);
  close(fd);
  EXPECT_EQ(instruction, 0x90) << "file offset " << plain->file_offset;
}

TEST(UsdtNotes, UnreadableAndNonElfFilesAreErrors) {
  auto missing = read_file_probes("/nonexistent/file");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("/nonexistent/file"), std::string::npos);
  auto not_elf = read_file_probes("/proc/self/cmdline");
  ASSERT_FALSE(not_elf);
  EXPECT_NE(not_elf.error().message.find("not an ELF file"), std::string::npos);
}

}  // namespace
}  // namespace memscope::usdt
