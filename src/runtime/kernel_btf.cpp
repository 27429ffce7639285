#include "runtime/kernel_btf.hpp"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace memscope {
namespace {

constexpr const char* kVmlinuxBtfPath = "/sys/kernel/btf/vmlinux";

}  // namespace

size_t btf_type_record_size(const btf_type* type) {
  size_t base = sizeof(btf_type);
  size_t vlen = BTF_INFO_VLEN(type->info);
  switch (BTF_INFO_KIND(type->info)) {
    case BTF_KIND_INT: return base + sizeof(uint32_t);
    case BTF_KIND_PTR:
    case BTF_KIND_FWD:
    case BTF_KIND_TYPEDEF:
    case BTF_KIND_VOLATILE:
    case BTF_KIND_CONST:
    case BTF_KIND_RESTRICT:
    case BTF_KIND_FUNC:
    case BTF_KIND_FLOAT:
    case BTF_KIND_TYPE_TAG: return base;
    case BTF_KIND_ARRAY: return base + sizeof(struct btf_array);
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION: return base + vlen * sizeof(struct btf_member);
    case BTF_KIND_ENUM: return base + vlen * sizeof(struct btf_enum);
    case BTF_KIND_FUNC_PROTO: return base + vlen * sizeof(struct btf_param);
    case BTF_KIND_VAR: return base + sizeof(struct btf_var);
    case BTF_KIND_DATASEC: return base + vlen * sizeof(struct btf_var_secinfo);
    case BTF_KIND_DECL_TAG: return base + sizeof(struct btf_decl_tag);
    case BTF_KIND_ENUM64: return base + vlen * sizeof(struct btf_enum64);
    default: return 0;
  }
}

namespace {

// libbpf's own btf__load_vmlinux_btf (the definition below hides it from everyone else): it also
// looks for vmlinux images under /boot and /lib/modules when sysfs has no BTF.
struct btf* libbpf_load_vmlinux_btf() {
  using Load = struct btf* (*)();
  static const Load load = reinterpret_cast<Load>(dlsym(RTLD_NEXT, "btf__load_vmlinux_btf"));
  if (!load) {
    errno = ENOSYS;
    return nullptr;
  }
  return load();
}

}  // namespace

KernelBtf::KernelBtf(const unsigned char* data, size_t size, void* mapping, std::vector<unsigned char> copy)
    : data_(data), size_(size), mapping_(mapping), copy_(std::move(copy)) {
  if (!copy_.empty()) data_ = copy_.data();
  if (size_ < sizeof(btf_header)) return;
  btf_header header;
  std::memcpy(&header, data_, sizeof(header));
  if (header.magic != BTF_MAGIC || header.hdr_len < sizeof(btf_header) || header.hdr_len > size_) return;
  size_t body = size_ - header.hdr_len;
  if (size_t{header.type_off} + header.type_len > body || size_t{header.str_off} + header.str_len > body) return;
  if (header.type_off % 4 != 0 || header.str_len == 0) return;
  types_ = data_ + header.hdr_len + header.type_off;
  types_size_ = header.type_len;
  strings_ = reinterpret_cast<const char*>(data_ + header.hdr_len + header.str_off);
  strings_size_ = header.str_len;
  if (strings_[strings_size_ - 1] != '\0') types_ = nullptr;  // names must end inside the section
}

KernelBtf::~KernelBtf() {
  if (mapping_) munmap(mapping_, size_);
}

bool KernelBtf::valid() const { return types_ != nullptr; }

std::unique_ptr<KernelBtf> KernelBtf::from_bytes(const void* data, size_t size) {
  std::unique_ptr<KernelBtf> btf(new KernelBtf(static_cast<const unsigned char*>(data), size, nullptr, {}));
  if (!btf->valid()) return nullptr;
  return btf;
}

const KernelBtf* KernelBtf::get() {
  static const KernelBtf* const kernel = []() -> const KernelBtf* {
    int fd = open(kVmlinuxBtfPath, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      struct stat status;
      if (fstat(fd, &status) == 0 && status.st_size > 0) {
        size_t size = static_cast<size_t>(status.st_size);
        // Only a private, read-only mapping is allowed (and only since 6.16).
        void* mapping = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (mapping != MAP_FAILED) {
          close(fd);
          auto* btf = new KernelBtf(static_cast<const unsigned char*>(mapping), size, mapping, {});
          if (btf->valid()) return btf;
          delete btf;
          return nullptr;
        }
        std::vector<unsigned char> copy(size);
        size_t done = 0;
        while (done < size) {
          ssize_t got = read(fd, copy.data() + done, size - done);
          if (got < 0 && errno == EINTR) continue;
          if (got <= 0) break;
          done += static_cast<size_t>(got);
        }
        close(fd);
        if (done != size) return nullptr;
        auto* btf = new KernelBtf(nullptr, size, nullptr, std::move(copy));
        if (btf->valid()) return btf;
        delete btf;
        return nullptr;
      }
      close(fd);
    }
    // No sysfs BTF: libbpf also finds vmlinux images with BTF under /boot and /lib/modules.
    struct btf* parsed = libbpf_load_vmlinux_btf();
    if (libbpf_get_error(parsed)) return nullptr;
    uint32_t size = 0;
    const void* raw = btf__raw_data(parsed, &size);
    std::vector<unsigned char> copy;
    if (raw) copy.assign(static_cast<const unsigned char*>(raw), static_cast<const unsigned char*>(raw) + size);
    btf__free(parsed);
    if (copy.empty()) return nullptr;
    auto* btf = new KernelBtf(nullptr, size, nullptr, std::move(copy));
    if (btf->valid()) return btf;
    delete btf;
    return nullptr;
  }();
  return kernel;
}

int KernelBtf::find(std::string_view name, unsigned kind) const {
  if (name.empty()) return -1;
  const auto& all = offsets();
  for (uint32_t id : ids_of_kind(kind)) {
    const auto* type = reinterpret_cast<const btf_type*>(types_ + all[id]);
    if (type->name_off >= strings_size_) continue;
    const char* candidate = strings_ + type->name_off;
    if (candidate[0] == name[0] && name == candidate) return static_cast<int>(id);
  }
  return -1;
}

const std::vector<uint32_t>& KernelBtf::ids_of_kind(unsigned kind) const {
  static const std::vector<uint32_t> none;
  offsets();
  return kind < kKinds ? ids_by_kind_[kind] : none;
}

const std::vector<uint32_t>& KernelBtf::offsets() const {
  std::call_once(offsets_once_, [this] {
    offsets_.reserve(types_size_ / 20 + 1);  // vmlinux's types average ~24 bytes
    offsets_.push_back(0);                    // id 0: void
    for (size_t offset = 0; offset + sizeof(btf_type) <= types_size_;) {
      const auto* type = reinterpret_cast<const btf_type*>(types_ + offset);
      size_t size = btf_type_record_size(type);
      if (size == 0 || offset + size > types_size_) break;
      ids_by_kind_[BTF_INFO_KIND(type->info)].push_back(static_cast<uint32_t>(offsets_.size()));
      offsets_.push_back(static_cast<uint32_t>(offset));
      offset += size;
    }
  });
  return offsets_;
}

const btf_type* KernelBtf::type(uint32_t id) const {
  if (id == 0) return nullptr;
  const auto& all = offsets();
  if (id >= all.size()) return nullptr;
  return reinterpret_cast<const btf_type*>(types_ + all[id]);
}

uint32_t KernelBtf::resolve(uint32_t id) const {
  for (int depth = 0; depth < 32; depth++) {
    const btf_type* t = type(id);
    if (!t) return id;
    switch (BTF_INFO_KIND(t->info)) {
      case BTF_KIND_TYPEDEF:
      case BTF_KIND_VOLATILE:
      case BTF_KIND_CONST:
      case BTF_KIND_RESTRICT:
      case BTF_KIND_TYPE_TAG:
        id = t->type;
        break;
      default:
        return id;
    }
  }
  return id;
}

const char* KernelBtf::name(uint32_t offset) const {
  return offset < strings_size_ ? strings_ + offset : "";
}

}  // namespace memscope

// libbpf parses the kernel's BTF itself in bpf_object__load (CO-RE relocations) and
// bpf_program__set_attach_target (tp_btf/fentry targets), calling btf__load_vmlinux_btf through
// its PLT; this definition in memscope takes those calls. It gives libbpf its BTF from the bytes
// KernelBtf already has (mapped: one copy, btf__new's, instead of libbpf's 1,300 4 KiB reads into
// a buffer plus a copy of it), and libbpf frees it after the load as it always does.
extern "C" __attribute__((visibility("default"))) struct btf* btf__load_vmlinux_btf(void) {
  if (const memscope::KernelBtf* kernel = memscope::KernelBtf::get()) {
    struct btf* parsed = btf__new(kernel->data(), static_cast<uint32_t>(kernel->size()));
    if (!libbpf_get_error(parsed)) return parsed;
  }
  return memscope::libbpf_load_vmlinux_btf();
}
