#include "runtime/core_btf.hpp"

#include <elf.h>
#include <linux/bpf.h>
#include <linux/btf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "runtime/kernel_btf.hpp"
#include "runtime/log.hpp"

namespace memscope {
namespace {

// .BTF.ext's header (libbpf-internal, stable since the CO-RE part was added): offsets count from
// the end of the header.
struct BtfExtHeader {
  uint16_t magic;
  uint8_t version;
  uint8_t flags;
  uint32_t hdr_len;
  uint32_t func_info_off;
  uint32_t func_info_len;
  uint32_t line_info_off;
  uint32_t line_info_len;
  uint32_t core_relo_off;
  uint32_t core_relo_len;
};

struct Bytes {
  const unsigned char* data = nullptr;
  size_t size = 0;
};

// The named section of a 64-bit little-endian ELF image (what clang -target bpf writes).
bool find_section(Bytes elf, std::string_view wanted, Bytes* found) {
  if (elf.size < sizeof(Elf64_Ehdr)) return false;
  Elf64_Ehdr header;
  std::memcpy(&header, elf.data, sizeof(header));
  if (std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 || header.e_ident[EI_CLASS] != ELFCLASS64) return false;
  if (header.e_shentsize != sizeof(Elf64_Shdr) || header.e_shoff > elf.size ||
      size_t{header.e_shnum} * sizeof(Elf64_Shdr) > elf.size - header.e_shoff || header.e_shstrndx >= header.e_shnum)
    return false;
  auto section = [&](size_t index) {
    Elf64_Shdr entry;
    std::memcpy(&entry, elf.data + header.e_shoff + index * sizeof(Elf64_Shdr), sizeof(entry));
    return entry;
  };
  Elf64_Shdr names = section(header.e_shstrndx);
  if (names.sh_offset > elf.size || names.sh_size > elf.size - names.sh_offset) return false;
  for (size_t index = 0; index < header.e_shnum; index++) {
    Elf64_Shdr entry = section(index);
    if (entry.sh_name >= names.sh_size) continue;
    const char* name = reinterpret_cast<const char*>(elf.data + names.sh_offset + entry.sh_name);
    size_t room = names.sh_size - entry.sh_name;
    if (strnlen(name, room) == room || wanted != name) continue;
    if (entry.sh_offset > elf.size || entry.sh_size > elf.size - entry.sh_offset) return false;
    *found = Bytes{elf.data + entry.sh_offset, static_cast<size_t>(entry.sh_size)};
    return true;
  }
  return false;
}

// A name without its ___flavour suffix, as libbpf compares candidates.
std::string_view essential_name(std::string_view name) {
  size_t flavour = name.find("___");
  return flavour == std::string_view::npos ? name : name.substr(0, flavour);
}

bool is_composite(const btf_type* type) {
  unsigned kind = BTF_INFO_KIND(type->info);
  return kind == BTF_KIND_STRUCT || kind == BTF_KIND_UNION;
}

// Writes the kept types of the kernel's BTF, renumbered from 1, with a string section of their
// names only.
class TrimmedBtfWriter {
 public:
  explicit TrimmedBtfWriter(const KernelBtf& kernel) : kernel_(kernel) { strings_.push_back('\0'); }

  // The new id of kernel type `id`, whole or as an empty stand-in; queued for writing on first use.
  uint32_t keep(uint32_t id, bool stand_in) {
    if (id == 0) return 0;
    auto& ids = stand_in ? stand_in_ids_ : whole_ids_;
    auto [it, added] = ids.emplace(id, 0);
    if (added) {
      it->second = static_cast<uint32_t>(order_.size() + 1);
      order_.push_back({id, stand_in});
    }
    return it->second;
  }

  // Writes every queued type; those it refers to are queued in turn. Types behind pointers (and in
  // function signatures) that are not kept whole become stand-ins; `whole` is the set kept whole.
  bool write_all(const std::unordered_set<uint32_t>& whole) {
    for (size_t next = 0; next < order_.size(); next++) {
      auto [id, stand_in] = order_[next];
      const btf_type* type = kernel_.type(id);
      if (!type) return false;
      size_t size = btf_type_record_size(type);
      if (size == 0) return false;
      size_t at = types_.size();
      if (stand_in) {
        btf_type empty = *type;
        empty.info = BTF_INFO_KIND(type->info) << 24;  // no members, kind_flag clear
        empty.name_off = add_string(type->name_off);
        append(&empty, sizeof(empty));
        continue;
      }
      append(type, size);
      auto copy = [&] { return reinterpret_cast<btf_type*>(types_.data() + at); };
      uint32_t name = add_string(type->name_off);
      copy()->name_off = name;
      auto reference = [&](uint32_t target, bool behind_pointer) {
        const btf_type* pointed = kernel_.type(target);
        bool stand_in = behind_pointer && pointed && is_composite(pointed) && !whole.count(target);
        return keep(target, stand_in);
      };
      unsigned vlen = BTF_INFO_VLEN(type->info);
      // A typedef, modifier or array is as deep as what refers to it: behind a pointer when that
      // is, that is when it is not kept whole itself.
      bool behind = !whole.count(id);
      switch (BTF_INFO_KIND(type->info)) {
        case BTF_KIND_PTR: {
          uint32_t target = reference(type->type, true);
          copy()->type = target;
          break;
        }
        case BTF_KIND_TYPEDEF:
        case BTF_KIND_VOLATILE:
        case BTF_KIND_CONST:
        case BTF_KIND_RESTRICT:
        case BTF_KIND_TYPE_TAG:
        case BTF_KIND_FUNC:
        case BTF_KIND_VAR:
        case BTF_KIND_DECL_TAG: {
          uint32_t target = reference(type->type, behind);
          copy()->type = target;
          break;
        }
        case BTF_KIND_FWD:
        case BTF_KIND_INT:
        case BTF_KIND_FLOAT:
          break;
        case BTF_KIND_ARRAY:
          rewrite_records<btf_array>(at, 1, [&](btf_array& array) {
            array.type = reference(array.type, behind);
            array.index_type = reference(array.index_type, true);
          });
          break;
        case BTF_KIND_STRUCT:
        case BTF_KIND_UNION:
          rewrite_records<btf_member>(at, vlen, [&](btf_member& member) {
            member.name_off = add_string(member.name_off);
            member.type = reference(member.type, false);
          });
          break;
        case BTF_KIND_ENUM:
          rewrite_records<btf_enum>(at, vlen, [&](btf_enum& value) { value.name_off = add_string(value.name_off); });
          break;
        case BTF_KIND_ENUM64:
          rewrite_records<btf_enum64>(at, vlen, [&](btf_enum64& value) { value.name_off = add_string(value.name_off); });
          break;
        case BTF_KIND_FUNC_PROTO: {
          uint32_t result = reference(type->type, true);
          copy()->type = result;
          rewrite_records<btf_param>(at, vlen, [&](btf_param& param) {
            param.name_off = add_string(param.name_off);
            param.type = reference(param.type, true);
          });
          break;
        }
        default:
          return false;  // DATASEC: never reached from a named type
      }
    }
    return true;
  }

  size_t type_count() const { return order_.size(); }

  std::vector<unsigned char> bytes() const {
    btf_header header{};
    header.magic = BTF_MAGIC;
    header.version = BTF_VERSION;
    header.hdr_len = sizeof(header);
    header.type_off = 0;
    header.type_len = static_cast<uint32_t>(types_.size());
    header.str_off = header.type_len;
    header.str_len = static_cast<uint32_t>(strings_.size());
    std::vector<unsigned char> out(sizeof(header) + types_.size() + strings_.size());
    std::memcpy(out.data(), &header, sizeof(header));
    if (!types_.empty()) std::memcpy(out.data() + sizeof(header), types_.data(), types_.size());
    std::memcpy(out.data() + sizeof(header) + types_.size(), strings_.data(), strings_.size());
    return out;
  }

 private:
  // Rewrites in place each of the `count` records of type Record that follow the type written at
  // `at`, each copied out of the byte buffer and back (memcpy: no aliasing or alignment assumed).
  template <typename Record, typename Rewrite>
  void rewrite_records(size_t at, unsigned count, Rewrite rewrite) {
    for (unsigned index = 0; index < count; index++) {
      size_t offset = at + sizeof(btf_type) + index * sizeof(Record);
      Record record;
      std::memcpy(&record, types_.data() + offset, sizeof(record));
      rewrite(record);
      std::memcpy(types_.data() + offset, &record, sizeof(record));
    }
  }

  uint32_t add_string(uint32_t kernel_offset) {
    if (kernel_offset == 0) return 0;
    std::string_view text = kernel_.name(kernel_offset);
    if (text.empty()) return 0;
    auto [it, added] = string_offsets_.emplace(text, 0);
    if (added) {
      it->second = static_cast<uint32_t>(strings_.size());
      strings_.insert(strings_.end(), text.begin(), text.end());
      strings_.push_back('\0');
    }
    return it->second;
  }

  void append(const void* data, size_t size) {
    const auto* bytes = static_cast<const unsigned char*>(data);
    types_.insert(types_.end(), bytes, bytes + size);
  }

  const KernelBtf& kernel_;
  std::unordered_map<uint32_t, uint32_t> whole_ids_;
  std::unordered_map<uint32_t, uint32_t> stand_in_ids_;
  std::vector<std::pair<uint32_t, bool>> order_;
  std::vector<unsigned char> types_;
  std::vector<char> strings_;
  std::unordered_map<std::string_view, uint32_t> string_offsets_;
};

}  // namespace

CoreRelocationRoots core_relocation_roots(const void* elf, size_t size, std::string* error) {
  CoreRelocationRoots roots;
  Bytes image{static_cast<const unsigned char*>(elf), size};
  Bytes btf_section, ext_section;
  if (!find_section(image, ".BTF", &btf_section)) {
    *error = "no .BTF section";
    return roots;
  }
  if (!find_section(image, ".BTF.ext", &ext_section)) return roots;  // no relocations at all
  std::unique_ptr<KernelBtf> local = KernelBtf::from_bytes(btf_section.data, btf_section.size);
  if (!local) {
    *error = "malformed .BTF section";
    return roots;
  }
  BtfExtHeader header{};
  if (ext_section.size < offsetof(BtfExtHeader, core_relo_off)) {
    *error = "short .BTF.ext header";
    return roots;
  }
  std::memcpy(&header, ext_section.data, std::min(sizeof(header), ext_section.size));
  if (header.magic != BTF_MAGIC || header.hdr_len > ext_section.size) {
    *error = "malformed .BTF.ext header";
    return roots;
  }
  if (header.hdr_len < sizeof(BtfExtHeader) || header.core_relo_len == 0) return roots;
  size_t begin = size_t{header.hdr_len} + header.core_relo_off;
  if (begin > ext_section.size || header.core_relo_len > ext_section.size - begin) {
    *error = "CO-RE relocations outside .BTF.ext";
    return roots;
  }
  const unsigned char* at = ext_section.data + begin;
  const unsigned char* end = at + header.core_relo_len;
  uint32_t record_size = 0;
  if (end - at < 4) {
    *error = "no CO-RE record size";
    return roots;
  }
  std::memcpy(&record_size, at, 4);
  at += 4;
  if (record_size < sizeof(bpf_core_relo)) {
    *error = "CO-RE records too short";
    return roots;
  }
  std::unordered_set<std::string> seen;
  while (end - at >= 8) {
    uint32_t section_name = 0, count = 0;
    std::memcpy(&section_name, at, 4);
    std::memcpy(&count, at + 4, 4);
    at += 8;
    if (count > static_cast<size_t>(end - at) / record_size) {
      *error = "CO-RE records outside .BTF.ext";
      roots.names.clear();
      return roots;
    }
    for (uint32_t index = 0; index < count; index++, at += record_size) {
      bpf_core_relo relocation;
      std::memcpy(&relocation, at, sizeof(relocation));
      roots.relocations++;
      if (relocation.kind == BPF_CORE_TYPE_ID_LOCAL) continue;
      if (relocation.kind == BPF_CORE_TYPE_ID_TARGET || relocation.kind == BPF_CORE_TYPE_MATCHES)
        roots.needs_whole_btf = true;
      const btf_type* type = local->type(relocation.type_id);
      if (!type) continue;  // libbpf refuses the object itself
      std::string_view name = essential_name(local->name(type->name_off));
      if (name.empty()) continue;
      unsigned kind = BTF_INFO_KIND(type->info);
      roots.kinds |= 1u << kind;
      if (kind == BTF_KIND_ENUM || kind == BTF_KIND_ENUM64) roots.kinds |= 1u << BTF_KIND_ENUM | 1u << BTF_KIND_ENUM64;
      if (seen.emplace(name).second) roots.names.emplace_back(name);
    }
  }
  return roots;
}

std::vector<unsigned char> trim_kernel_btf(const KernelBtf& kernel, const std::vector<std::string>& roots,
                                           size_t* types, uint32_t kinds) {
  // Every kernel type that is a candidate of a root, by name as libbpf matches them: the root's
  // name, alone or followed by a ___flavour. Roots are grouped by first letter: of ~150k kernel
  // names, most are rejected by one byte.
  std::vector<std::string_view> by_first_letter[256];
  for (const auto& root : roots)
    if (!root.empty()) by_first_letter[static_cast<unsigned char>(root[0])].push_back(root);
  std::vector<uint32_t> candidates;
  for (unsigned kind = 0; kind < 32; kind++) {
    if (!(kinds & (1u << kind))) continue;
    for (uint32_t id : kernel.ids_of_kind(kind)) {
      const btf_type* type = kernel.type(id);
      if (type->name_off == 0) continue;
      const char* name = kernel.name(type->name_off);
      for (std::string_view root : by_first_letter[static_cast<unsigned char>(name[0])]) {
        if (std::strncmp(name, root.data(), root.size()) != 0) continue;
        const char* rest = name + root.size();
        if (*rest == '\0' || std::strncmp(rest, "___", 3) == 0) {
          candidates.push_back(id);
          break;
        }
      }
    }
  }
  // What they embed, whole: members, array elements, typedefs and modifiers, but not what their
  // pointers point to.
  std::unordered_set<uint32_t> whole;
  std::deque<uint32_t> queue(candidates.begin(), candidates.end());
  while (!queue.empty()) {
    uint32_t id = queue.front();
    queue.pop_front();
    if (id == 0 || !whole.insert(id).second) continue;
    const btf_type* type = kernel.type(id);
    if (!type) continue;
    const unsigned char* extra = reinterpret_cast<const unsigned char*>(type) + sizeof(btf_type);
    switch (BTF_INFO_KIND(type->info)) {
      case BTF_KIND_TYPEDEF:
      case BTF_KIND_VOLATILE:
      case BTF_KIND_CONST:
      case BTF_KIND_RESTRICT:
      case BTF_KIND_TYPE_TAG:
        queue.push_back(type->type);
        break;
      case BTF_KIND_ARRAY: {
        btf_array array;
        std::memcpy(&array, extra, sizeof(array));
        queue.push_back(array.type);
        break;
      }
      case BTF_KIND_STRUCT:
      case BTF_KIND_UNION:
        for (unsigned index = 0; index < BTF_INFO_VLEN(type->info); index++) {
          btf_member member;
          std::memcpy(&member, extra + index * sizeof(member), sizeof(member));
          queue.push_back(member.type);
        }
        break;
      default:
        break;
    }
  }
  TrimmedBtfWriter writer(kernel);
  for (uint32_t id : candidates) writer.keep(id, false);
  if (!writer.write_all(whole)) return {};
  *types = writer.type_count();
  return writer.bytes();
}

const char* vmlinux_btf_path() {
  static const char* const path = access("/sys/kernel/btf/vmlinux", R_OK) == 0 ? "/sys/kernel/btf/vmlinux" : nullptr;
  return path;
}

CoreRelocationBtf CoreRelocationBtf::for_object(const void* elf, size_t size, const char* object_name) {
  CoreRelocationBtf result;
  const char* choice = std::getenv("MEMSCOPE_CORE_BTF");
  if (choice && std::string_view(choice) == "kernel") {
    log::verbose("{}: CO-RE relocations against the whole kernel BTF (MEMSCOPE_CORE_BTF=kernel)", object_name);
    return result;
  }
  const KernelBtf* kernel = KernelBtf::get();
  if (!kernel) return result;
  std::string error;
  CoreRelocationRoots roots = core_relocation_roots(elf, size, &error);
  if (!error.empty() || roots.needs_whole_btf) {
    log::verbose("{}: CO-RE relocations against the whole kernel BTF ({})", object_name,
                 error.empty() ? "a relocation needs kernel type ids" : error);
    return result;
  }
  if (roots.names.empty()) return result;  // nothing to relocate: libbpf reads no kernel BTF for it
  size_t types = 0;
  std::vector<unsigned char> trimmed = trim_kernel_btf(*kernel, roots.names, &types, roots.kinds);
  if (trimmed.empty()) {
    log::verbose("{}: CO-RE relocations against the whole kernel BTF (a kernel type could not be copied)",
                 object_name);
    return result;
  }
  int fd = memfd_create("memscope-core-btf", MFD_CLOEXEC);
  if (fd < 0) return result;
  size_t done = 0;
  while (done < trimmed.size()) {
    ssize_t wrote = write(fd, trimmed.data() + done, trimmed.size() - done);
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote <= 0) {
      close(fd);
      return result;
    }
    done += static_cast<size_t>(wrote);
  }
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  if (access(path.c_str(), R_OK) != 0) {  // libbpf opens it by path: no /proc, no cut
    close(fd);
    return result;
  }
  result.fd_ = fd;
  result.path_ = std::move(path);
  log::verbose("{}: {} CO-RE relocations over {} kernel types, matched in a {}-type, {} KiB cut of its BTF",
               object_name, roots.relocations, roots.names.size(), types, trimmed.size() / 1024);
  return result;
}

CoreRelocationBtf::CoreRelocationBtf(CoreRelocationBtf&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {
  other.path_.clear();
}

CoreRelocationBtf& CoreRelocationBtf::operator=(CoreRelocationBtf&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    other.path_.clear();
  }
  return *this;
}

CoreRelocationBtf::~CoreRelocationBtf() {
  if (fd_ >= 0) close(fd_);
}

}  // namespace memscope
