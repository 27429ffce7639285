// The running kernel's BTF (/sys/kernel/btf/vmlinux), read in place for memscope's own questions
// (does this function, tracepoint, struct or enum exist; what are a tracepoint's arguments).
//
// Why not libbpf's btf__load_vmlinux_btf: it reads the 5+ MB file 4 KiB per read() (sysfs), into a
// buffer it then copies, and builds an index; done once for memscope and once more inside
// bpf_object__load (libbpf 1.1 cannot be handed a parsed BTF), it was most of a tool's start-up
// time and two copies at peak RSS. Here the file is mapped (kernels since 6.16 allow a private
// read-only mapping of it: the kernel's own pages, no copy, no RSS) or, where the kernel refuses,
// read once into memory; lookups walk the type section. libbpf's own load goes through
// btf__load_vmlinux_btf, which memscope provides (kernel_btf.cpp) on top of the same bytes.
#pragma once

#include <linux/btf.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

namespace memscope {

// Bytes of one type record, its fixed part included; 0 for a kind this code does not know (a BTF
// newer than it, or garbage), which ends every walk.
size_t btf_type_record_size(const struct btf_type* type);

class KernelBtf {
 public:
  // The process-wide instance, made on first use and kept until exit; nullptr when the kernel has
  // no BTF (or it is malformed). Thread-safe.
  static const KernelBtf* get();
  // From raw BTF bytes (tests); nullptr when they are not BTF. The bytes must outlive the object.
  static std::unique_ptr<KernelBtf> from_bytes(const void* data, size_t size);

  KernelBtf(const KernelBtf&) = delete;
  KernelBtf& operator=(const KernelBtf&) = delete;
  ~KernelBtf();

  // The id of the first type of `kind` (BTF_KIND_*) named `name`, or -1.
  int find(std::string_view name, unsigned kind) const;
  // The ids of every type of `kind`, in id order (empty for a kind past BTF_KIND_MAX).
  const std::vector<uint32_t>& ids_of_kind(unsigned kind) const;
  // The type with this id (id 0 is void: nullptr), or nullptr past the end.
  // Ids run from 1 to type_count() - 1.
  uint32_t type_count() const { return static_cast<uint32_t>(offsets().size()); }
  const struct btf_type* type(uint32_t id) const;
  // Follows typedefs and const/volatile/restrict/type-tag modifiers to the type they name.
  uint32_t resolve(uint32_t id) const;
  // The string at `offset` of the string section ("" when out of range).
  const char* name(uint32_t offset) const;
  // The raw BTF (header, types, strings), for handing to libbpf.
  const void* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  KernelBtf(const unsigned char* data, size_t size, void* mapping, std::vector<unsigned char> copy);
  bool valid() const;
  // Offsets of every type in the type section by id, and the ids of each kind, built in one pass
  // on first use of type(), find() or ids_of_kind(): a lookup then reads the types of its kind only
  // (a typedef is one of ~3k, not of ~130k).
  const std::vector<uint32_t>& offsets() const;
  static constexpr unsigned kKinds = 32;

  const unsigned char* data_;
  size_t size_;
  void* mapping_;                      // munmap()ed on destruction when set
  std::vector<unsigned char> copy_;    // the bytes, where the kernel does not let the file be mapped
  const unsigned char* types_ = nullptr;
  uint32_t types_size_ = 0;
  const char* strings_ = nullptr;
  uint32_t strings_size_ = 0;
  mutable std::once_flag offsets_once_;
  mutable std::vector<uint32_t> offsets_;
  mutable std::vector<uint32_t> ids_by_kind_[kKinds];
};

}  // namespace memscope
