// The kernel's BTF cut down to what one BPF object's CO-RE relocations can match.
//
// Why: libbpf 1.1 relocates against a whole copy of vmlinux BTF (btf__new: a 5+ MB copy and an
// index of ~150k types) and looks for the candidates of each relocated type by scanning every
// kernel type once per type (bpf_core_add_cands). A tool that reads seven kernel structs paid
// ~20 ms of its ~30 ms start-up there. libbpf takes a target BTF from a file instead
// (bpf_object_open_opts.btf_custom_path), as bpftool's `gen min_core_btf` files are used; memscope
// writes one per object at open time from the kernel's own BTF, in one pass over it.
//
// What it keeps: every kernel type whose name (without a ___flavour suffix) is the root of one of
// the object's relocations, whole; every type those embed (members, array elements, typedefs and
// modifiers), whole; and the types behind their pointers as named, empty structs and unions. That
// is what libbpf's matching reads: a field access string walks embedded members only (each pointer
// hop is a relocation of its own, rooted at the pointed-to type), a pointer field is compatible
// with any pointer, and a type relocation on a struct compares kind and name. Objects with
// relocations that need more (the kernel's own type id, deep type matching) keep the whole BTF.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace memscope {

class KernelBtf;

// The essential names (flavour suffix removed) of the types an object's CO-RE relocations are
// rooted at, read from its .BTF and .BTF.ext sections. `needs_whole_btf` is set when a relocation
// kind needs the kernel's BTF itself (type id in the kernel, type matching).
struct CoreRelocationRoots {
  std::vector<std::string> names;
  uint32_t kinds = 0;  // 1 << BTF_KIND_* of every root (libbpf only matches a root's own kind)
  bool needs_whole_btf = false;
  size_t relocations = 0;
};
// Empty names and an error in `error` when the ELF image or its BTF sections are malformed.
CoreRelocationRoots core_relocation_roots(const void* elf, size_t size, std::string* error);

// Raw BTF (header, types, strings) holding what the relocations rooted at `roots` can match in
// `kernel`, as described above; `types` receives how many types it has. Only kernel types of the
// `kinds` (a CoreRelocationRoots::kinds mask) are candidates.
std::vector<unsigned char> trim_kernel_btf(const KernelBtf& kernel, const std::vector<std::string>& roots,
                                           size_t* types, uint32_t kinds = ~0u);

// The trimmed BTF of one object in an anonymous file, for libbpf to read at load. Holds the file
// until destroyed; path() is nullptr when libbpf should use its default (no kernel BTF in sysfs,
// relocations that need the whole BTF, or MEMSCOPE_CORE_BTF=kernel in the environment, which
// exists to tell a trimming fault from anything else).
// "/sys/kernel/btf/vmlinux" when the kernel has it, else nullptr.
const char* vmlinux_btf_path();

class CoreRelocationBtf {
 public:
  static CoreRelocationBtf for_object(const void* elf, size_t size, const char* object_name);
  CoreRelocationBtf() = default;
  CoreRelocationBtf(CoreRelocationBtf&& other) noexcept;
  CoreRelocationBtf& operator=(CoreRelocationBtf&& other) noexcept;
  CoreRelocationBtf(const CoreRelocationBtf&) = delete;
  CoreRelocationBtf& operator=(const CoreRelocationBtf&) = delete;
  ~CoreRelocationBtf();

  const char* path() const { return path_.empty() ? nullptr : path_.c_str(); }

 private:
  int fd_ = -1;
  std::string path_;
};

}  // namespace memscope
