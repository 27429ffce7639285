#include "allocator_probes.hpp"

#include <bpf/libbpf.h>
#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "runtime/bpf_skeleton.hpp"
#include "runtime/log.hpp"
#include "runtime/result.hpp"
#include "symbols/elf_object.hpp"

namespace memscope::memleak {
namespace {

constexpr const char* kSizeFirst = "memleak_size_first_entry";
constexpr const char* kSizeSecond = "memleak_size_second_entry";
constexpr const char* kPointerReturn = "memleak_pointer_return";
constexpr const char* kMappingReturn = "memleak_mapping_return";
constexpr const char* kFree = "memleak_free_entry";

std::vector<std::string> family_objects(const AllocatorPlan& plan, AllocatorFamily family) {
  switch (family) {
    case AllocatorFamily::Malloc: return {plan.malloc_object};
    case AllocatorFamily::Mapping: return {plan.mapping_object};
    case AllocatorFamily::Cxx: return plan.cxx_objects;
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
      {"malloc", F::Malloc, kSizeFirst, kPointerReturn},
      {"calloc", F::Malloc, "memleak_calloc_entry", kPointerReturn},
      {"realloc", F::Malloc, "memleak_realloc_entry", kPointerReturn},
      {"reallocarray", F::Malloc, "memleak_reallocarray_entry", kPointerReturn},
      {"posix_memalign", F::Malloc, "memleak_posix_memalign_entry", "memleak_posix_memalign_return"},
      {"aligned_alloc", F::Malloc, kSizeSecond, kPointerReturn},
      {"memalign", F::Malloc, kSizeSecond, kPointerReturn},
      {"valloc", F::Malloc, kSizeFirst, kPointerReturn},
      {"pvalloc", F::Malloc, kSizeFirst, kPointerReturn},
      {"free", F::Malloc, kFree, nullptr},
      {"mmap", F::Mapping, "memleak_mmap_entry", kMappingReturn},
      {"mremap", F::Mapping, "memleak_mremap_entry", kMappingReturn},
      {"munmap", F::Mapping, kFree, nullptr},
      // operator new, new[], their nothrow and (C++17) aligned forms: the size comes first.
      {"_Znwm", F::Cxx, kSizeFirst, kPointerReturn},
      {"_Znam", F::Cxx, kSizeFirst, kPointerReturn},
      {"_ZnwmRKSt9nothrow_t", F::Cxx, kSizeFirst, kPointerReturn},
      {"_ZnamRKSt9nothrow_t", F::Cxx, kSizeFirst, kPointerReturn},
      {"_ZnwmSt11align_val_t", F::Cxx, kSizeFirst, kPointerReturn},
      {"_ZnamSt11align_val_t", F::Cxx, kSizeFirst, kPointerReturn},
      {"_ZnwmSt11align_val_tRKSt9nothrow_t", F::Cxx, kSizeFirst, kPointerReturn},
      {"_ZnamSt11align_val_tRKSt9nothrow_t", F::Cxx, kSizeFirst, kPointerReturn},
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

std::vector<AttachedFunction> attach_allocator_probes(bpf_object* object, BpfObjectLinks& links,
                                                      const AllocatorPlan& plan, pid_t pid) {
  std::vector<AttachedFunction> attached;
  std::map<std::string, std::shared_ptr<symbols::ElfObject>> opened;
  std::set<std::pair<std::string, uint64_t>> probed_offsets;
  bool malloc_found = false;

  for (const auto& function : allocator_functions()) {
    std::string symbol = function.symbol;
    if (function.family == AllocatorFamily::Malloc) symbol = plan.symbol_prefix + symbol;
    for (const auto& path : family_objects(plan, function.family)) {
      if (path.empty()) continue;
      auto& elf = opened[path];
      if (!elf) {
        elf = symbols::ElfObject::open_path(path, symbols::DebugFileSearch{"", path, {"/usr/lib/debug"}});
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
        LIBBPF_OPTS(bpf_uprobe_opts, options, .retprobe = retprobe);
        bpf_link* link = bpf_program__attach_uprobe_opts(program_named(object, program_name), pid, path.c_str(),
                                                         *offset, &options);
        if (!link) {
          int error = errno;
          throw FatalError(fmt::format("attaching a {} to {} in {} failed: {}", retprobe ? "uretprobe" : "uprobe",
                                       symbol, path, strerror(error)));
        }
        links.adopt(link);
      };
      attach(function.entry_program, false);
      if (function.return_program) attach(function.return_program, true);
      attached.push_back({path, symbol});
      if (function.family == AllocatorFamily::Malloc && std::string(function.symbol) == "malloc") malloc_found = true;
    }
  }
  if (!malloc_found)
    throw FatalError(fmt::format("{} defines no {}malloc: is it the allocator? (see -O and --symbols-prefix)",
                                 plan.malloc_object, plan.symbol_prefix));
  return attached;
}

}  // namespace memscope::memleak
