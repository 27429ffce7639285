#include "allocator_probes.hpp"

#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <tuple>

#include "runtime/log.hpp"
#include "runtime/result.hpp"
#include "runtime/uprobe_multi.hpp"
#include "symbols/elf_object.hpp"

namespace memscope::memleak {
namespace {

constexpr const char* kSizeFirst = "memleak_size_first_entry";
constexpr const char* kSizeSecond = "memleak_size_second_entry";
constexpr const char* kReturn = "memleak_allocator_return";  // every allocator's (memleak.h: memleak_returns)
constexpr const char* kFree = "memleak_free_entry";

std::vector<std::string> family_objects(const AllocatorPlan& plan, AllocatorFamily family) {
  switch (family) {
    case AllocatorFamily::Malloc:
      return {plan.malloc_object};
    case AllocatorFamily::Mapping:
      return {plan.mapping_object};
    case AllocatorFamily::Cxx:
      return plan.cxx_objects;
  }
  return {};
}

bpf_program* program_named(bpf_object* object, const char* name) {
  bpf_program* program = bpf_object__find_program_by_name(object, name);
  if (!program) throw FatalError(fmt::format("internal: BPF program {} missing", name));
  return program;
}

}  // namespace

const std::vector<AllocatorFunction>& allocator_functions() {
  using F = AllocatorFamily;
  static const std::vector<AllocatorFunction> functions = {
      {"malloc", F::Malloc, kSizeFirst, kReturn},
      {"calloc", F::Malloc, "memleak_calloc_entry", kReturn},
      {"realloc", F::Malloc, "memleak_realloc_entry", kReturn},
      {"reallocarray", F::Malloc, "memleak_reallocarray_entry", kReturn},
      {"posix_memalign", F::Malloc, "memleak_posix_memalign_entry", kReturn},
      {"aligned_alloc", F::Malloc, kSizeSecond, kReturn},
      {"memalign", F::Malloc, kSizeSecond, kReturn},
      {"valloc", F::Malloc, kSizeFirst, kReturn},
      {"pvalloc", F::Malloc, kSizeFirst, kReturn},
      {"free", F::Malloc, kFree, nullptr},
      {"mmap", F::Mapping, "memleak_mmap_entry", kReturn},
      {"mremap", F::Mapping, "memleak_mremap_entry", kReturn},
      {"munmap", F::Mapping, kFree, nullptr},
      // operator new, new[]: only their nothrow forms (the size comes first). The throwing forms
      // get no return probe: a uretprobe replaces the return address with the kernel's trampoline,
      // which has no unwind information, so a std::bad_alloc thrown through it reaches
      // std::terminate. Their blocks are recorded at the malloc inside them (memleak.cpp drops the
      // operator new frame from the stack). The nothrow forms call the throwing ones and catch
      // inside their own frame, below their return address: a return probe there is safe.
      {"_ZnwmRKSt9nothrow_t", F::Cxx, kSizeFirst, kReturn},
      {"_ZnamRKSt9nothrow_t", F::Cxx, kSizeFirst, kReturn},
      {"_ZnwmSt11align_val_tRKSt9nothrow_t", F::Cxx, kSizeFirst, kReturn},
      {"_ZnamSt11align_val_tRKSt9nothrow_t", F::Cxx, kSizeFirst, kReturn},
      // operator delete, delete[], sized (C++14), aligned (C++17) and nothrow forms.
      {"_ZdlPv", F::Cxx, kFree, nullptr},
      {"_ZdaPv", F::Cxx, kFree, nullptr},
      {"_ZdlPvm", F::Cxx, kFree, nullptr},
      {"_ZdaPvm", F::Cxx, kFree, nullptr},
      {"_ZdlPvSt11align_val_t", F::Cxx, kFree, nullptr},
      {"_ZdaPvSt11align_val_t", F::Cxx, kFree, nullptr},
      {"_ZdlPvmSt11align_val_t", F::Cxx, kFree, nullptr},
      {"_ZdaPvmSt11align_val_t", F::Cxx, kFree, nullptr},
      {"_ZdlPvRKSt9nothrow_t", F::Cxx, kFree, nullptr},
      {"_ZdaPvRKSt9nothrow_t", F::Cxx, kFree, nullptr},
      {"_ZdlPvSt11align_val_tRKSt9nothrow_t", F::Cxx, kFree, nullptr},
      {"_ZdaPvSt11align_val_tRKSt9nothrow_t", F::Cxx, kFree, nullptr},
  };
  return functions;
}

std::vector<HookProgram> allocator_programs() {
  std::vector<HookProgram> programs;
  std::set<std::string> named;
  for (const auto& function : allocator_functions())
    for (const char* program : {function.entry_program, function.return_program})
      if (program && named.insert(program).second) programs.push_back({program, {}});
  return programs;
}

bool prepare_uprobe_multi(bpf_object* object) {
  if (getenv("MEMLEAK_NO_MULTI")) return false;
  if (!uprobe_multi_supported()) return false;
  bpf_program* program = nullptr;
  bpf_object__for_each_program(program, object) {
    // The allocator programs only: the stack service chooses for its own.
    if (std::string_view(bpf_program__name(program)).rfind("memleak_", 0) == 0) expect_uprobe_multi(program);
  }
  return true;
}

std::vector<AttachedFunction> attach_allocator_probes(bpf_object* object, BpfObjectLinks& links,
                                                      const AllocatorPlan& plan, pid_t pid,
                                                      bool uprobe_multi) {
  std::vector<AttachedFunction> attached;
  std::map<std::string, std::shared_ptr<symbols::ElfObject>> opened;
  std::set<std::pair<std::string, uint64_t>> probed_offsets;
  // uprobe_multi: the offsets of each (program, object, return?) go into one link.
  std::map<std::tuple<std::string, std::string, bool>, std::vector<uint64_t>> groups;
  bool malloc_found = false;

  for (const auto& function : allocator_functions()) {
    std::string symbol = function.symbol;
    if (function.family == AllocatorFamily::Malloc) symbol = plan.symbol_prefix + symbol;
    for (const auto& path : family_objects(plan, function.family)) {
      if (path.empty()) continue;
      auto& elf = opened[path];
      if (!elf) {
        elf = symbols::ElfObject::open_path(path, symbols::DebugFileSearch{symbols::FileRoot::host(), path, {}});
        if (!elf) {
          log::warning("cannot read {}: its allocator functions are not traced", path);
          continue;
        }
      }
      auto vaddr = elf->symbol_address(symbol);
      if (!vaddr) continue;
      auto offset = elf->file_offset_of_vaddr(*vaddr);
      if (!offset) continue;
      if (!probed_offsets.insert({path, *offset}).second) {
        log::verbose("{} in {} is an alias of a function already probed", symbol, path);
        continue;
      }
      auto attach = [&](const char* program_name, bool retprobe) {
        if (uprobe_multi) {
          groups[{program_name, path, retprobe}].push_back(*offset);
          return;
        }
        LIBBPF_OPTS(bpf_uprobe_opts, options, .retprobe = retprobe);
        bpf_link* link = bpf_program__attach_uprobe_opts(program_named(object, program_name), pid,
                                                         path.c_str(), *offset, &options);
        if (!link) {
          int error = errno;
          throw FatalError(fmt::format("attaching a {} to {} in {} failed: {}",
                                       retprobe ? "uretprobe" : "uprobe", symbol, path, strerror(error)));
        }
        links.adopt(link);
      };
      attach(function.entry_program, false);
      if (function.return_program) attach(function.return_program, true);
      attached.push_back({path, symbol});
      if (function.family == AllocatorFamily::Malloc && std::string(function.symbol) == "malloc")
        malloc_found = true;
    }
  }
  if (!malloc_found)
    throw FatalError(fmt::format("{} defines no {}malloc: is it the allocator? (see -O and --symbols-prefix)",
                                 plan.malloc_object, plan.symbol_prefix));

  for (const auto& [key, offsets] : groups) {
    const auto& [program_name, path, retprobe] = key;
    int fd = attach_uprobe_multi(program_named(object, program_name.c_str()), path, offsets, pid, retprobe);
    if (fd < 0)
      throw FatalError(fmt::format("creating a uprobe_multi link for {} in {} failed: {}", program_name, path,
                                   strerror(-fd)));
    links.adopt_fd(fd);
  }
  return attached;
}

}  // namespace memscope::memleak
