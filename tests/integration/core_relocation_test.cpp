// Every BPF object memscope embeds is relocated by libbpf exactly as before when it matches against
// the kernel BTF cut down for it (runtime/core_btf.hpp) instead of the whole kernel BTF: libbpf's own
// debug log of each CO-RE relocation (candidates found, instruction patched and to what value, or
// poisoned) is the oracle, taken once against the whole BTF and once against the cut.
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdarg>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>
#include <vector>

#include "runtime/core_btf.hpp"

namespace memscope {
namespace {

std::vector<std::string>* captured = nullptr;

int capture(enum libbpf_print_level, const char* format, va_list args) {
  char line[1024];
  vsnprintf(line, sizeof(line), format, args);
  std::string text(line);
  // A relocation's outcome, without the target type ids that differ between the two BTFs.
  // (ELF relocations, "sec '…': relo #", are not CO-RE's.)
  bool outcome = text.find("prog '") != std::string::npos && text.find(": relo #") != std::string::npos &&
                 text.find("candidate #") == std::string::npos;
  if (captured && (outcome || text.find("CO-RE relocating") != std::string::npos))
    captured->push_back(std::regex_replace(text, std::regex(R"(target candidate \[[0-9]+\])"), "target candidate"));
  return 0;
}

// libbpf's relocation log for `elf` against the BTF at `btf_path` (nullptr: libbpf's default, the
// whole kernel BTF). Every program is loaded: the relocations of all of them are made before the
// first program load, which may fail (an fentry program without a target) without mattering here.
std::vector<std::string> relocation_log(const std::vector<char>& elf, const char* btf_path) {
  std::vector<std::string> lines;
  captured = &lines;
  libbpf_print_fn_t previous = libbpf_set_print(capture);
  LIBBPF_OPTS(bpf_object_open_opts, options, .btf_custom_path = btf_path);
  bpf_object* object = bpf_object__open_mem(elf.data(), elf.size(), &options);
  if (object) {
    bpf_object__load(object);
    bpf_object__close(object);
  }
  libbpf_set_print(previous);
  captured = nullptr;
  return lines;
}

TEST(CoreRelocation, EveryObjectIsRelocatedAlikeAgainstItsCutOfTheKernelBtf) {
  if (geteuid() != 0) GTEST_SKIP() << "loading BPF objects needs root";
  if (!vmlinux_btf_path()) GTEST_SKIP() << "this kernel has no /sys/kernel/btf/vmlinux";
  size_t objects = 0, relocated = 0;
  for (const auto& entry : std::filesystem::directory_iterator(MEMSCOPE_SKELETON_DIR)) {
    std::string name = entry.path().filename();
    // The skeletons embed the .stripped objects.
    if (!name.ends_with(".stripped.bpf.o")) continue;
    SCOPED_TRACE(name);
    std::ifstream in(entry.path(), std::ios::binary);
    std::vector<char> elf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_FALSE(elf.empty());
    CoreRelocationBtf cut = CoreRelocationBtf::for_object(elf.data(), elf.size(), name.c_str());
    std::vector<std::string> whole = relocation_log(elf, nullptr);
    if (!cut.path()) {
      // No cut is made for an object without CO-RE relocations; libbpf then reads no kernel BTF.
      EXPECT_TRUE(whole.empty()) << "no cut BTF was made, but libbpf relocates: " << whole.front();
      continue;
    }
    std::vector<std::string> trimmed = relocation_log(elf, cut.path());
    EXPECT_EQ(trimmed.size(), whole.size());
    for (size_t line = 0; line < std::min(trimmed.size(), whole.size()); line++) {
      if (trimmed[line] == whole[line]) continue;
      ADD_FAILURE() << "first difference, line " << line << ":\n  whole BTF: " << whole[line]
                    << "  cut BTF:   " << trimmed[line];
      break;
    }
    objects++;
    bool patched = false;
    for (const auto& line : whole) patched |= line.find("patched insn") != std::string::npos;
    if (patched) relocated++;
  }
  EXPECT_GE(objects, 15u);
  // The positive control: most objects have relocations that patch instructions.
  EXPECT_GE(relocated, 10u);
}

}  // namespace
}  // namespace memscope
