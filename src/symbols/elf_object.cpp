#include "symbols/elf_object.hpp"

#include <cxxabi.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <array>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <unordered_map>

#include "runtime/log.hpp"

namespace memscope::symbols {

namespace detail {

struct ElfImage {
  Elf* elf = nullptr;
  std::string memory;  // backs images that did not come from a file; libelf only borrows the bytes
  // Backs images read from a file: an anonymous mapping of the file's size into which only the parts
  // the symbolizer reads were copied (headers, symbol and string tables, notes, debug sections), so
  // that a 130 MiB compiler binary costs the few MiB of its symbols. Pages never written cost nothing.
  void* sparse = nullptr;
  size_t sparse_size = 0;
  bool complete = false;  // every byte of the file was copied (the CRC of a debug link needs them all)
  // The .debug_* sections of an unstripped object are copied only when its DWARF is first asked for
  // (most never are): until then the descriptor stays open; DwarfIndex::open() copies them and closes it.
  FileDescriptor deferred_fd;
  std::vector<std::pair<uint64_t, uint64_t>> deferred;  // {offset, bytes}
  // Copies [offset, offset + bytes) if it is still deferred; false when the file has shrunk since.
  bool copy_deferred(uint64_t offset, uint64_t bytes);
  void close_deferred();
  // Gives the pages wholly inside [offset, offset + bytes) back: what libelf no longer reads.
  void release(uint64_t offset, uint64_t bytes);
  // So that a debug-link candidate that is the object itself is recognised, and a cached object can
  // be checked against the file a process maps now.
  FileIdentity identity;

  ElfImage() = default;
  ElfImage(const ElfImage&) = delete;
  ElfImage& operator=(const ElfImage&) = delete;
  ~ElfImage();
};

struct DwarfIndex {
  struct UnitRange {
    uint64_t low = 0;
    uint64_t high = 0;
    Dwarf_Off die_offset = 0;
  };

  // The image with .debug_info, owned by the ElfObject. Line lookups need only the unit DIEs' ranges
  // and .debug_line, which dwz never moves into a supplementary (.gnu_debugaltlink) file, so such
  // files are not looked for.
  Elf* source = nullptr;
  ElfImage* source_image = nullptr;  // whose deferred sections are copied before libdw reads them

  // Opening is deferred to the first lookup: libdw decompresses every compressed .debug_* section up
  // front (hundreds of milliseconds for libc's debug file), and most objects are never asked for a line.
  std::mutex mutex;
  bool opened = false;
  Dwarf* dwarf = nullptr;
  std::vector<UnitRange> units;  // sorted by low
  // Walking a unit's scopes is far dearer than a line lookup, and hot addresses (malloc's callers)
  // recur in every stack; bounded because a long trace sees ever new addresses.
  std::unordered_map<uint64_t, std::vector<SourceFrame>> frames_by_address;

  DwarfIndex() = default;
  DwarfIndex(const DwarfIndex&) = delete;
  DwarfIndex& operator=(const DwarfIndex&) = delete;
  ~DwarfIndex() {
    if (dwarf != nullptr) dwarf_end(dwarf);
  }

  void open();
  void index_units();
  std::vector<SourceFrame> frames_at(uint64_t vaddr);
  std::vector<SourceFrame> locate(uint64_t vaddr);
};

}  // namespace detail

namespace {

using detail::DwarfIndex;
using detail::ElfImage;

void initialize_libelf() {
  static std::once_flag once;
  std::call_once(once, [] { elf_version(EV_CURRENT); });
}

std::string hex_string(const void* bytes, size_t size) {
  std::string text;
  text.reserve(size * 2);
  for (size_t i = 0; i < size; i++)
    text += fmt::format("{:02x}", static_cast<const unsigned char*>(bytes)[i]);
  return text;
}

std::string directory_of(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Every compressed section is inflated in memory when libdw opens the DWARF: the sizes their headers
// claim are checked first, so that a small crafted file cannot make memscope allocate gigabytes.
constexpr uint64_t kMaxInflatedDebugBytes = 1ull << 30;

FileIdentity identity_of(const struct stat& status) {
  return FileIdentity{status.st_dev, status.st_ino, static_cast<uint64_t>(status.st_size),
                      static_cast<int64_t>(status.st_mtim.tv_sec) * 1000000000 + status.st_mtim.tv_nsec};
}

std::unique_ptr<ElfImage> image_of_bytes(std::string bytes) {
  initialize_libelf();
  auto image = std::make_unique<ElfImage>();
  image->memory = std::move(bytes);
  // libelf reads from the copy (ELF_C_READ_MEMORY), which lives as long as the image.
  image->elf = elf_memory(image->memory.data(), image->memory.size());
  if (image->elf == nullptr || elf_kind(image->elf) != ELF_K_ELF) return nullptr;
  return image;
}

// Copies [offset, offset + size) of the file into the same place of `buffer`, clipped to the file.
bool copy_range(const OpenedFile& file, char* buffer, uint64_t file_size, uint64_t offset, uint64_t size) {
  if (offset >= file_size) return true;  // a header pointing past the end: libelf reports it, not us
  size = std::min(size, file_size - offset);
  while (size > 0) {
    ssize_t got = pread(file.fd.get(), buffer + offset, size, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;  // shrank or failed while read
    offset += static_cast<uint64_t>(got);
    size -= static_cast<uint64_t>(got);
  }
  return true;
}

// Objects whose DWARF copy waits for a first lookup, each holding a descriptor: bounded so that a
// machine-wide trace cannot exhaust memscope's descriptors. Past the bound, DWARF is copied at once.
std::atomic<int> deferred_descriptors{0};
constexpr int kMaxDeferredDescriptors = 128;

// Sections the symbolizer never reads: code and data the program runs with.
bool needed_section(const GElf_Shdr& header) {
  switch (header.sh_type) {
    case SHT_NOBITS:
      return false;
    case SHT_SYMTAB: case SHT_DYNSYM: case SHT_STRTAB: case SHT_NOTE: case SHT_GNU_versym:
    case SHT_GNU_verdef: case SHT_GNU_verneed: case SHT_SYMTAB_SHNDX:
      return true;
    default:
      return (header.sh_flags & SHF_ALLOC) == 0;  // .debug_*, .gnu_debuglink, .comment, …
  }
}

// A bounded copy of the file, read with pread: what memscope keeps of an object for the whole run.
// `complete`: every byte (debug files, whose CRC may be checked); otherwise only what needed_section()
// and the headers cover.
std::unique_ptr<ElfImage> read_image(const OpenedFile& file, bool complete) {
  initialize_libelf();
  auto size = static_cast<uint64_t>(file.status.st_size);
  if (size < EI_NIDENT || size > kMaxTargetFileBytes) return nullptr;
  void* buffer = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (buffer == MAP_FAILED) return nullptr;
  auto image = std::make_unique<ElfImage>();
  image->sparse = buffer;
  image->sparse_size = size;
  image->identity = identity_of(file.status);
  auto* bytes = static_cast<char*>(buffer);
  if (complete) {
    if (!copy_range(file, bytes, size, 0, size)) return nullptr;
    image->complete = true;
  } else {
    // The ELF header, then the program and section header tables it points to, must be in place
    // before libelf looks at the image; section contents are copied before anything reads them.
    if (!copy_range(file, bytes, size, 0, std::min<uint64_t>(size, 4096))) return nullptr;
    uint64_t tables[2][2] = {};  // {offset, bytes} of the program and section header tables
    if (bytes[EI_CLASS] == ELFCLASS64 && size >= sizeof(Elf64_Ehdr)) {
      Elf64_Ehdr header;
      std::memcpy(&header, bytes, sizeof(header));
      tables[0][0] = header.e_phoff, tables[0][1] = uint64_t{header.e_phnum} * header.e_phentsize;
      tables[1][0] = header.e_shoff, tables[1][1] = uint64_t{header.e_shnum ? header.e_shnum : 1u} * header.e_shentsize;
    } else if (bytes[EI_CLASS] == ELFCLASS32 && size >= sizeof(Elf32_Ehdr)) {
      Elf32_Ehdr header;
      std::memcpy(&header, bytes, sizeof(header));
      tables[0][0] = header.e_phoff, tables[0][1] = uint64_t{header.e_phnum} * header.e_phentsize;
      tables[1][0] = header.e_shoff, tables[1][1] = uint64_t{header.e_shnum ? header.e_shnum : 1u} * header.e_shentsize;
    } else {
      return nullptr;
    }
    for (auto& table : tables)
      if (!copy_range(file, bytes, size, table[0], table[1])) return nullptr;
  }
  image->elf = elf_memory(bytes, size);
  if (image->elf == nullptr || elf_kind(image->elf) != ELF_K_ELF) return nullptr;
  if (!complete) {
    // More than 65535 sections: the real count is in the first section header (its table was copied).
    size_t count = 0;
    if (elf_getshdrnum(image->elf, &count) != 0) return nullptr;
    if (count * sizeof(Elf64_Shdr) > size) return nullptr;
    GElf_Ehdr header;
    if (gelf_getehdr(image->elf, &header) == nullptr) return nullptr;
    if (!copy_range(file, bytes, size, header.e_shoff, count * header.e_shentsize)) return nullptr;
    // The section names first: they say which sections are DWARF.
    size_t names_index = 0;
    GElf_Shdr names_header;
    Elf_Scn* names = elf_getshdrstrndx(image->elf, &names_index) == 0 ? elf_getscn(image->elf, names_index) : nullptr;
    if (names != nullptr && gelf_getshdr(names, &names_header) != nullptr &&
        !copy_range(file, bytes, size, names_header.sh_offset, names_header.sh_size))
      return nullptr;
    bool may_defer = deferred_descriptors.load() < kMaxDeferredDescriptors;
    Elf_Scn* section = nullptr;
    while ((section = elf_nextscn(image->elf, section)) != nullptr) {
      GElf_Shdr section_header;
      if (gelf_getshdr(section, &section_header) == nullptr || !needed_section(section_header)) continue;
      const char* name = names != nullptr ? elf_strptr(image->elf, names_index, section_header.sh_name) : nullptr;
      if (may_defer && name != nullptr && (std::strncmp(name, ".debug_", 7) == 0 || std::strncmp(name, ".zdebug_", 8) == 0)) {
        image->deferred.emplace_back(section_header.sh_offset, section_header.sh_size);
        continue;
      }
      if (!copy_range(file, bytes, size, section_header.sh_offset, section_header.sh_size)) return nullptr;
    }
    if (!image->deferred.empty()) {
      int copy = fcntl(file.fd.get(), F_DUPFD_CLOEXEC, 0);
      if (copy < 0) return nullptr;
      image->deferred_fd = FileDescriptor(copy);
      deferred_descriptors++;
    }
    // Notes are also found through the program headers (the build-id of a file without sections).
    size_t segments = 0;
    if (elf_getphdrnum(image->elf, &segments) == 0)
      for (size_t i = 0; i < segments; i++) {
        GElf_Phdr segment;
        if (gelf_getphdr(image->elf, static_cast<int>(i), &segment) == nullptr || segment.p_type != PT_NOTE) continue;
        if (!copy_range(file, bytes, size, segment.p_offset, segment.p_filesz)) return nullptr;
      }
  }
  return image;
}

}  // namespace

namespace detail {

ElfImage::~ElfImage() {
  if (elf != nullptr) elf_end(elf);
  if (sparse != nullptr) munmap(sparse, sparse_size);
  if (deferred_fd) deferred_descriptors--;
}

bool ElfImage::copy_deferred(uint64_t offset, uint64_t bytes) {
  auto found = std::find(deferred.begin(), deferred.end(), std::pair{offset, bytes});
  if (found == deferred.end() || !deferred_fd) return true;
  deferred.erase(found);
  uint64_t end = std::min<uint64_t>(sparse_size, offset + std::min<uint64_t>(bytes, sparse_size));
  for (uint64_t at = offset; at < end;) {
    ssize_t got = pread(deferred_fd.get(), static_cast<char*>(sparse) + at, end - at, static_cast<off_t>(at));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;  // truncated since: the DWARF is not read
    at += static_cast<uint64_t>(got);
  }
  return true;
}

void ElfImage::close_deferred() {
  if (!deferred_fd) return;
  deferred_fd = FileDescriptor();
  deferred_descriptors--;
  deferred.clear();
}

void ElfImage::release(uint64_t offset, uint64_t bytes) {
  if (sparse == nullptr || offset >= sparse_size) return;
  auto page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  uint64_t first = (offset + page - 1) / page * page;
  uint64_t last = std::min<uint64_t>(sparse_size, offset + std::min<uint64_t>(bytes, sparse_size)) / page * page;
  if (last > first) madvise(static_cast<char*>(sparse) + first, last - first, MADV_DONTNEED);
}

}  // namespace detail

namespace {

bool has_section(Elf* elf, std::initializer_list<std::string_view> names) {
  size_t names_index = 0;
  if (elf_getshdrstrndx(elf, &names_index) != 0) return false;
  Elf_Scn* section = nullptr;
  while ((section = elf_nextscn(elf, section)) != nullptr) {
    GElf_Shdr header;
    if (gelf_getshdr(section, &header) == nullptr) continue;
    // A NOBITS section in a stripped file is a placeholder for contents that live elsewhere.
    if (header.sh_type == SHT_NOBITS) continue;
    const char* name = elf_strptr(elf, names_index, header.sh_name);
    if (name == nullptr) continue;
    for (std::string_view wanted : names)
      if (wanted == name) return true;
  }
  return false;
}

bool has_symbol_table(Elf* elf) {
  Elf_Scn* section = nullptr;
  while ((section = elf_nextscn(elf, section)) != nullptr) {
    GElf_Shdr header;
    if (gelf_getshdr(section, &header) != nullptr && header.sh_type == SHT_SYMTAB && header.sh_size > 0)
      return true;
  }
  return false;
}

bool has_debug_info(Elf* elf) { return has_section(elf, {".debug_info", ".zdebug_info"}); }

std::string build_id_of(Elf* elf) {
  const void* bytes = nullptr;
  ssize_t size = dwelf_elf_gnu_build_id(elf, &bytes);
  return size > 0 ? hex_string(bytes, static_cast<size_t>(size)) : std::string();
}

struct CodeSymbol {
  GElf_Sym symbol;
  const char* name;
  GElf_Shdr section;
  // A non-default symbol version ("memcpy@GLIBC_2.2.5" next to "memcpy@@GLIBC_2.14"): what old
  // binaries bind to, not what the name means today.
  bool old_version;
};

// Aliases share an address; people recognise the global, unadorned name (malloc rather than
// __libc_malloc or __GI___libc_malloc).
uint8_t symbol_rank(const CodeSymbol& code) {
  unsigned binding = GELF_ST_BIND(code.symbol.st_info);
  unsigned binding_rank = binding == STB_GLOBAL ? 0 : binding == STB_WEAK ? 1 : 2;
  unsigned type_rank = GELF_ST_TYPE(code.symbol.st_info) == STT_NOTYPE ? 1 : 0;
  unsigned underscores = 0;
  while (code.name[underscores] == '_' && underscores < 7) underscores++;
  return static_cast<uint8_t>((code.old_version ? 64 : 0) + binding_rank * 16 + type_rank * 8 + underscores);
}

using CodeSymbolVisitor = std::function<void(const CodeSymbol&)>;

Elf_Data* symbol_versions_of(Elf* elf) {
  Elf_Scn* section = nullptr;
  while ((section = elf_nextscn(elf, section)) != nullptr) {
    GElf_Shdr header;
    if (gelf_getshdr(section, &header) != nullptr && header.sh_type == SHT_GNU_versym)
      return elf_getdata(section, nullptr);
  }
  return nullptr;
}

// Visits every defined symbol that a code address can belong to, from .symtab and .dynsym alike.
void for_each_code_symbol(Elf* elf, const CodeSymbolVisitor& visit) {
  Elf_Data* versions = symbol_versions_of(elf);  // parallel to .dynsym
  Elf_Scn* table = nullptr;
  while ((table = elf_nextscn(elf, table)) != nullptr) {
    GElf_Shdr table_header;
    if (gelf_getshdr(table, &table_header) == nullptr) continue;
    if (table_header.sh_type != SHT_SYMTAB && table_header.sh_type != SHT_DYNSYM) continue;
    if (table_header.sh_entsize == 0) continue;
    Elf_Data* data = elf_getdata(table, nullptr);
    if (data == nullptr) continue;
    size_t count = table_header.sh_size / table_header.sh_entsize;
    for (size_t i = 0; i < count; i++) {
      GElf_Sym symbol;
      if (gelf_getsym(data, static_cast<int>(i), &symbol) == nullptr) continue;
      unsigned type = GELF_ST_TYPE(symbol.st_info);
      if (type != STT_FUNC && type != STT_GNU_IFUNC && type != STT_NOTYPE) continue;
      if (symbol.st_shndx == SHN_UNDEF || symbol.st_shndx >= SHN_LORESERVE) continue;
      Elf_Scn* owner = elf_getscn(elf, symbol.st_shndx);
      GElf_Shdr owner_header;
      if (owner == nullptr || gelf_getshdr(owner, &owner_header) == nullptr) continue;
      // NOTYPE symbols outside code are markers like _edata, never functions.
      if ((owner_header.sh_flags & SHF_EXECINSTR) == 0) continue;
      const char* name = elf_strptr(elf, table_header.sh_link, symbol.st_name);
      // '$'-names are ARM/AArch64/RISC-V mapping symbols ($x, $d); .L names are assembler temporaries.
      if (name == nullptr || name[0] == '\0' || name[0] == '$' || std::strncmp(name, ".L", 2) == 0) continue;
      bool old_version = false;
      if (table_header.sh_type == SHT_DYNSYM && versions != nullptr) {
        GElf_Versym version = 0;
        old_version =
            gelf_getversym(versions, static_cast<int>(i), &version) != nullptr && (version & 0x8000) != 0;
      } else if (const char* at = std::strchr(name, '@')) {
        old_version = at[1] != '@';  // .symtab spells versions out: "@@" marks the default one
      }
      visit(CodeSymbol{symbol, name, owner_header, old_version});
    }
  }
}

std::vector<LoadSegment> load_segments_of(Elf* elf) {
  std::vector<LoadSegment> segments;
  size_t count = 0;
  if (elf_getphdrnum(elf, &count) != 0) return segments;
  for (size_t i = 0; i < count; i++) {
    GElf_Phdr header;
    if (gelf_getphdr(elf, static_cast<int>(i), &header) == nullptr || header.p_type != PT_LOAD) continue;
    segments.push_back(
        {header.p_offset, header.p_filesz, header.p_vaddr, header.p_memsz, (header.p_flags & PF_X) != 0});
  }
  return segments;
}

// A place a separate debug file may be: a path inside a root.
struct DebugCandidate {
  FileRoot root;
  std::string path;
  bool follow_final_symlink = false;
};

// Roots to search debug directories under: the traced process's view first, then ours (which is
// where debug packages installed on the host live).
std::vector<FileRoot> search_roots(const DebugFileSearch& search) {
  std::vector<FileRoot> roots{search.root};
  if (!search.root.is_host()) roots.push_back(FileRoot::host());
  return roots;
}

// Some distributions make the build-id entries symlinks to the debug file's path; they are followed,
// inside the root.
void add_build_id_candidates(const DebugFileSearch& search, const std::string& build_id,
                             std::vector<DebugCandidate>& candidates) {
  if (build_id.size() < 3) return;
  for (const auto& root : search_roots(search))
    for (const auto& directory : search.debug_directories)
      candidates.push_back({root,
                            fmt::format("{}/.build-id/{}/{}.debug", directory, build_id.substr(0, 2),
                                        build_id.substr(2)),
                            true});
}

// DWARF sections that no line or inline lookup reads (variable locations, macros, name indexes; CFI,
// which the unwinder reads from its own copy): neither copied nor shown to libdw, which would inflate
// them all (libc's .debug_loclists alone inflates to 1.4 MiB).
bool unread_dwarf_section(std::string_view name) {
  for (std::string_view prefix : {".debug_", ".zdebug_"}) {
    if (name.substr(0, prefix.size()) != prefix) continue;
    std::string_view kind = name.substr(prefix.size());
    for (std::string_view unread : {"loc", "loclists", "macro", "macinfo", "pubnames", "pubtypes",
                                    "gnu_pubnames", "gnu_pubtypes", "names", "frame"})
      if (kind == unread) return true;
  }
  return false;
}

// What the ".zdebug" form's 12-byte header ("ZLIB" and a big-endian size) claims; nullopt if unreadable.
std::optional<uint64_t> gnu_compressed_size(Elf_Scn* section) {
  Elf_Data* raw = elf_rawdata(section, nullptr);
  if (raw == nullptr || raw->d_buf == nullptr || raw->d_size < 12) return std::nullopt;
  const auto* bytes = static_cast<const unsigned char*>(raw->d_buf);
  if (std::memcmp(bytes, "ZLIB", 4) != 0) return std::nullopt;
  uint64_t size = 0;
  for (int i = 4; i < 12; i++) size = (size << 8) | bytes[i];
  return size;
}

// Readies the DWARF sections of `elf` for libdw one at a time, so that memscope never holds all of
// them compressed and inflated at once: each section lookups read is copied (when its copy was
// deferred), its claimed inflated size is checked against the budget, and libelf inflates it; the
// compressed copy's pages are then given back. Sections no lookup reads are hidden (SHT_NOBITS).
// Returns why the DWARF must not be read, or an empty string.
std::string prepare_dwarf_sections(Elf* elf, ElfImage* image) {
  size_t names_index = 0;
  if (elf_getshdrstrndx(elf, &names_index) != 0) return "its section names are unreadable";
  uint64_t inflated = 0;
  Elf_Scn* section = nullptr;
  while ((section = elf_nextscn(elf, section)) != nullptr) {
    GElf_Shdr header;
    if (gelf_getshdr(section, &header) == nullptr) return "a section header is unreadable";
    if (header.sh_type == SHT_NOBITS) continue;
    const char* name = elf_strptr(elf, names_index, header.sh_name);
    if (name == nullptr || (std::strncmp(name, ".debug_", 7) != 0 && std::strncmp(name, ".zdebug_", 8) != 0)) continue;
    if (unread_dwarf_section(name)) {
      header.sh_type = SHT_NOBITS;
      gelf_update_shdr(section, &header);
      if (image != nullptr) image->release(header.sh_offset, header.sh_size);
      continue;
    }
    if (image != nullptr && !image->copy_deferred(header.sh_offset, header.sh_size))
      return "it changed on disk before its DWARF was read";
    std::optional<uint64_t> size;
    if (header.sh_flags & SHF_COMPRESSED) {
      GElf_Chdr compression;
      if (gelf_getchdr(section, &compression) != nullptr) size = compression.ch_size;
    } else if (name[1] == 'z') {
      size = gnu_compressed_size(section);
    } else {
      continue;
    }
    if (!size) return fmt::format("the header of its compressed {} is unreadable", name);
    if (*size > kMaxInflatedDebugBytes || inflated + *size > kMaxInflatedDebugBytes)
      return fmt::format("its compressed sections claim more than {} bytes", kMaxInflatedDebugBytes);
    inflated += *size;
    // libelf keeps the inflated bytes in a buffer of its own (the image is borrowed memory, which it
    // never frees or reads again for this section). ".zdebug" sections are left to libdw.
    if ((header.sh_flags & SHF_COMPRESSED) && elf_compress(section, 0, 0) == 1 && image != nullptr)
      image->release(header.sh_offset, header.sh_size);
  }
  if (image != nullptr) image->close_deferred();
  return {};
}

constexpr size_t kSourceFrameCacheLimit = 16384;

// The name people know a function by: the demangled linkage name for C++ (with its namespace and
// parameters, like the symbol table's names), else DW_AT_name. Both may sit on the abstract origin
// or the declaration, which dwarf_attr_integrate follows.
std::string dwarf_function_name(Dwarf_Die* function) {
  Dwarf_Attribute attribute;
  for (int name : {DW_AT_linkage_name, DW_AT_MIPS_linkage_name})
    if (const char* linkage = dwarf_formstring(dwarf_attr_integrate(function, name, &attribute)))
      return readable_symbol_name(linkage);
  const char* plain = dwarf_formstring(dwarf_attr_integrate(function, DW_AT_name, &attribute));
  return plain != nullptr ? plain : "";
}

// Where an inlined copy was called from: DW_AT_call_file indexes the file table of the unit that
// holds the DIE (an imported partial unit under dwz, not necessarily the one we looked up).
SourceLocation call_site_of(Dwarf_Die* inlined) {
  SourceLocation site;
  Dwarf_Attribute attribute;
  Dwarf_Word value = 0;
  if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_line, &attribute), &value) == 0)
    site.line = static_cast<int>(value);
  Dwarf_Die unit;
  Dwarf_Files* files = nullptr;
  size_t file_count = 0;
  if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_file, &attribute), &value) == 0 &&
      dwarf_diecu(inlined, &unit, nullptr, nullptr) != nullptr &&
      dwarf_getsrcfiles(&unit, &files, &file_count) == 0 && value < file_count) {
    if (const char* file = dwarf_filesrc(files, value, nullptr, nullptr)) site.file = file;
  }
  return site;
}

// `innermost` is the line-table answer for `vaddr`; it belongs to the innermost inlined function
// there, and each inlined function's call site is the location in the function around it.
std::vector<SourceFrame> inline_chain(Dwarf_Die& unit_die, uint64_t vaddr, SourceLocation innermost) {
  std::vector<SourceFrame> frames;
  SourceLocation location = std::move(innermost);
  // dwarf_getscopes() finds the innermost scope at `vaddr` but continues, as variable lookup wants,
  // through an inlined function's abstract definition; the nesting of the inlined copies in the code
  // comes from the DIEs that physically contain that innermost scope.
  Dwarf_Die* scopes = nullptr;
  int count = dwarf_getscopes(&unit_die, vaddr, &scopes);
  if (count > 0) {
    Dwarf_Die innermost_scope = scopes[0];
    free(scopes);
    scopes = nullptr;
    count = dwarf_getscopes_die(&innermost_scope, &scopes);  // innermost first
  }
  std::string containing_function;
  for (int i = 0; i < count; i++) {
    int tag = dwarf_tag(&scopes[i]);
    if (tag == DW_TAG_inlined_subroutine) {
      SourceLocation caller_location = call_site_of(&scopes[i]);
      frames.push_back({dwarf_function_name(&scopes[i]), std::move(location)});
      location = std::move(caller_location);
    } else if (tag == DW_TAG_subprogram) {
      containing_function = dwarf_function_name(&scopes[i]);
      break;
    }
  }
  free(scopes);
  frames.push_back({std::move(containing_function), std::move(location)});
  return frames;
}

}  // namespace

namespace detail {

void DwarfIndex::open() {
  opened = true;
  if (std::string refusal = prepare_dwarf_sections(source, source_image); !refusal.empty()) {
    if (source_image != nullptr) source_image->close_deferred();
    memscope::log::verbose("symbols: DWARF of an object not read: {}", refusal);
    return;
  }
  dwarf = dwarf_begin_elf(source, DWARF_C_READ, nullptr);
  if (dwarf == nullptr) return;
  index_units();
}

void DwarfIndex::index_units() {
  Dwarf_CU* unit = nullptr;
  Dwarf_CU* next = nullptr;
  Dwarf_Half version = 0;
  uint8_t unit_type = 0;
  Dwarf_Die unit_die;
  while (dwarf_get_units(dwarf, unit, &next, &version, &unit_type, &unit_die, nullptr) == 0) {
    unit = next;
    if (unit_type != DW_UT_compile && unit_type != DW_UT_partial && unit_type != DW_UT_skeleton) continue;
    Dwarf_Addr base = 0;
    Dwarf_Addr low = 0;
    Dwarf_Addr high = 0;
    ptrdiff_t position = 0;
    while ((position = dwarf_ranges(&unit_die, position, &base, &low, &high)) > 0)
      if (high > low) units.push_back({low, high, dwarf_dieoffset(&unit_die)});
  }
  std::sort(units.begin(), units.end(), [](const UnitRange& a, const UnitRange& b) { return a.low < b.low; });
}

std::vector<SourceFrame> DwarfIndex::frames_at(uint64_t vaddr) {
  std::lock_guard lock(mutex);
  if (auto cached = frames_by_address.find(vaddr); cached != frames_by_address.end()) return cached->second;
  std::vector<SourceFrame> frames = locate(vaddr);
  if (frames_by_address.size() >= kSourceFrameCacheLimit) frames_by_address.clear();
  frames_by_address.emplace(vaddr, frames);
  return frames;
}

std::vector<SourceFrame> DwarfIndex::locate(uint64_t vaddr) {
  if (!opened) open();
  if (dwarf == nullptr) return {};
  auto after = std::upper_bound(units.begin(), units.end(), vaddr,
                                [](uint64_t address, const UnitRange& range) { return address < range.low; });
  // Ranges of different units may nest (a unit whose DW_AT_ranges span encloses another's), so look
  // back a little instead of trusting the nearest start alone.
  for (int steps = 0; after != units.begin() && steps < 8; steps++) {
    --after;
    if (vaddr >= after->high) continue;
    Dwarf_Die unit_die;
    if (dwarf_offdie(dwarf, after->die_offset, &unit_die) == nullptr) continue;
    Dwarf_Line* line = dwarf_getsrc_die(&unit_die, vaddr);
    if (line == nullptr) continue;
    int number = 0;
    const char* file = dwarf_linesrc(line, nullptr, nullptr);
    if (file == nullptr || dwarf_lineno(line, &number) != 0 || number <= 0) continue;
    return inline_chain(unit_die, vaddr, SourceLocation{file, number});
  }
  return {};
}

}  // namespace detail

uint32_t debuglink_crc32(const unsigned char* data, size_t size, uint32_t crc) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> entries{};
    for (uint32_t n = 0; n < 256; n++) {
      uint32_t value = n;
      for (int bit = 0; bit < 8; bit++) value = (value & 1) ? 0xedb88320u ^ (value >> 1) : value >> 1;
      entries[n] = value;
    }
    return entries;
  }();
  crc = ~crc;
  for (size_t i = 0; i < size; i++) crc = table[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

std::string readable_symbol_name(std::string_view raw_name) {
  // Versioned names appear in .symtab of linked objects ("memcpy@GLIBC_2.14", "foo@@VERS_1").
  std::string name(raw_name.substr(0, raw_name.find('@')));
  if (name.rfind("_Z", 0) != 0) return name;
  int status = 0;
  char* demangled = abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &status);
  if (status != 0 || demangled == nullptr) return name;
  std::string result(demangled);
  std::free(demangled);
  return result;
}

ElfObject::ElfObject() = default;

ElfObject::~ElfObject() {
  // The DWARF handles borrow the images' Elf descriptors, so they must go first.
  dwarf_.reset();
}

std::shared_ptr<ElfObject> ElfObject::open_file(const OpenedFile& file, const DebugFileSearch& search) {
  auto image = read_image(file, false);
  if (!image) return nullptr;
  std::shared_ptr<ElfObject> object(new ElfObject());
  if (!object->load(std::move(image), &search)) return nullptr;
  return object;
}

std::shared_ptr<ElfObject> ElfObject::open_path(const std::string& path, const DebugFileSearch& search) {
  auto file = open_target_path(path, {.follow_final_symlink = true});
  if (!file) {
    memscope::log::verbose("symbols: {}", file.error().message);
    return nullptr;
  }
  return open_file(*file, search);
}

std::shared_ptr<ElfObject> ElfObject::from_memory(std::string bytes) {
  auto image = image_of_bytes(std::move(bytes));
  if (!image) return nullptr;
  std::shared_ptr<ElfObject> object(new ElfObject());
  if (!object->load(std::move(image), nullptr)) return nullptr;
  return object;
}

bool ElfObject::load(std::unique_ptr<ElfImage> image, const DebugFileSearch* search) {
  GElf_Ehdr header;
  if (gelf_getehdr(image->elf, &header) == nullptr) return false;
  image_ = std::move(image);
  segments_ = load_segments_of(image_->elf);
  build_id_ = build_id_of(image_->elf);
  GElf_Word link_crc = 0;
  if (const char* link = dwelf_elf_gnu_debuglink(image_->elf, &link_crc))
    debug_link_ = DebugLink{link, link_crc};
  if (search != nullptr && (!has_debug_info(image_->elf) || !has_symbol_table(image_->elf)))
    attach_debug_file(*search);
  // The compressed sections' claimed sizes are checked when the DWARF is opened (DwarfIndex::open).
  ElfImage* dwarf_source = nullptr;
  if (debug_image_ && has_debug_info(debug_image_->elf))
    dwarf_source = debug_image_.get();
  else if (has_debug_info(image_->elf))
    dwarf_source = image_.get();
  if (dwarf_source != nullptr) {
    dwarf_ = std::make_unique<DwarfIndex>();
    dwarf_->source = dwarf_source->elf;
    dwarf_->source_image = dwarf_source;
  }
  index_symbols();
  return true;
}

void ElfObject::attach_debug_file(const DebugFileSearch& search) {
  std::vector<DebugCandidate> candidates;
  add_build_id_candidates(search, build_id_, candidates);
  // A debug link is a file name; one with a '/' (or "..") could lead anywhere and is not followed.
  bool usable_link = debug_link_ && is_plain_file_name(debug_link_->name);
  if (debug_link_ && !usable_link)
    memscope::log::verbose("symbols: {} names debug file \"{}\", not a plain file name; not looked up",
                           search.object_path, debug_link_->name);
  if (usable_link && !search.object_path.empty()) {
    // The places gdb looks: next to the object and in .debug/ beside it (in the process's root), and
    // mirrored under each debug directory.
    const std::string& link = debug_link_->name;
    std::string directory = directory_of(search.object_path);
    std::string separator = directory == "/" ? "" : "/";
    candidates.push_back({search.root, fmt::format("{}{}{}", directory, separator, link)});
    candidates.push_back({search.root, fmt::format("{}{}.debug/{}", directory, separator, link)});
    for (const auto& root : search_roots(search))
      for (const auto& debug_directory : search.debug_directories)
        candidates.push_back({root, fmt::format("{}{}{}{}", debug_directory, directory, separator, link)});
  }

  for (const auto& candidate : candidates) {
    auto file = candidate.root.open(candidate.path, {.follow_final_symlink = candidate.follow_final_symlink});
    if (!file) {
      if (file.error().message.find("No such file") == std::string::npos)
        memscope::log::verbose("symbols: debug file candidate {}", file.error().message);
      continue;
    }
    if (static_cast<uint64_t>(file->status.st_dev) == image_->identity.device &&
        static_cast<uint64_t>(file->status.st_ino) == image_->identity.inode)
      continue;
    // Every byte is read only when the debug link's CRC is what identifies the file.
    auto debug = read_image(*file, build_id_.empty());
    if (!debug) continue;
    if (!has_debug_info(debug->elf) && !has_symbol_table(debug->elf)) continue;
    // A stale debug file would attach wrong names and lines, which is worse than none.
    std::string debug_build_id = build_id_of(debug->elf);
    if (!build_id_.empty() && !debug_build_id.empty()) {
      if (debug_build_id != build_id_) continue;
    } else if (usable_link) {
      if (!debug->complete && !(debug = read_image(*file, true))) continue;
      if (debuglink_crc32(static_cast<const unsigned char*>(debug->sparse), debug->sparse_size) != debug_link_->crc)
        continue;
    } else {
      continue;
    }
    std::string shown = candidate.root.is_host() ? candidate.path
                                                 : fmt::format("{}{}", candidate.root.name(), candidate.path);
    memscope::log::verbose("symbols: using debug file {} for {}", shown, search.object_path);
    debug_image_ = std::move(debug);
    debug_file_path_ = std::move(shown);
    return;
  }
}

void ElfObject::index_symbols() {
  auto collect = [this](Elf* elf) {
    for_each_code_symbol(elf, [this](const CodeSymbol& code) {
      symbols_.push_back({code.symbol.st_value, code.symbol.st_size,
                          code.section.sh_addr + code.section.sh_size, code.name, symbol_rank(code)});
    });
  };
  collect(image_->elf);
  if (debug_image_) collect(debug_image_->elf);

  std::sort(symbols_.begin(), symbols_.end(), [](const ElfSymbol& a, const ElfSymbol& b) {
    return a.start != b.start ? a.start < b.start : a.rank < b.rank;
  });
  // One entry per address: the best-ranked name, with the widest extent any alias declares (a label
  // alias without .size must not hide its function's size).
  std::vector<ElfSymbol> merged;
  merged.reserve(symbols_.size());
  for (const auto& symbol : symbols_) {
    if (!merged.empty() && merged.back().start == symbol.start) {
      merged.back().size = std::max(merged.back().size, symbol.size);
      merged.back().limit = std::max(merged.back().limit, symbol.limit);
      continue;
    }
    merged.push_back(symbol);
  }
  symbols_ = std::move(merged);
  symbols_.shrink_to_fit();
}

std::optional<uint64_t> ElfObject::vaddr_of_file_offset(uint64_t file_offset, bool executable_mapping) const {
  const LoadSegment* chosen = nullptr;
  for (const auto& segment : segments_) {
    if (file_offset < segment.file_offset || file_offset >= segment.file_offset + segment.file_size) continue;
    if (chosen == nullptr ||
        (segment.executable == executable_mapping && chosen->executable != executable_mapping))
      chosen = &segment;
  }
  if (chosen == nullptr) return std::nullopt;
  return chosen->vaddr + (file_offset - chosen->file_offset);
}

std::optional<uint64_t> ElfObject::file_offset_of_vaddr(uint64_t vaddr) const {
  const LoadSegment* chosen = nullptr;
  for (const auto& segment : segments_) {
    if (vaddr < segment.vaddr || vaddr >= segment.vaddr + segment.file_size) continue;
    if (chosen == nullptr || (segment.executable && !chosen->executable)) chosen = &segment;
  }
  if (chosen == nullptr) return std::nullopt;
  return chosen->file_offset + (vaddr - chosen->vaddr);
}

const ElfSymbol* ElfObject::symbol_at(uint64_t vaddr) const {
  auto after =
      std::upper_bound(symbols_.begin(), symbols_.end(), vaddr,
                       [](uint64_t address, const ElfSymbol& symbol) { return address < symbol.start; });
  if (after == symbols_.begin()) return nullptr;
  const ElfSymbol& nearest = *(after - 1);
  // The nearest preceding symbol normally contains the address; a local label or a nested alias inside
  // a larger function needs a short walk back to the function that really spans it.
  auto candidate = after;
  for (int steps = 0; candidate != symbols_.begin() && steps < 32; steps++) {
    --candidate;
    if (candidate->size > 0 && vaddr < candidate->start + candidate->size) return &*candidate;
  }
  // Hand-written assembly often lacks .size; such a label owns everything up to the next symbol.
  if (nearest.size == 0 && vaddr < nearest.limit) return &nearest;
  return nullptr;
}

std::optional<uint64_t> ElfObject::symbol_address(std::string_view name) const {
  std::optional<uint64_t> best_address;
  uint8_t best_rank = 0xff;
  auto search = [&](Elf* elf) {
    for_each_code_symbol(elf, [&](const CodeSymbol& code) {
      std::string_view candidate(code.name);
      if (candidate.substr(0, candidate.find('@')) != name) return;
      uint8_t rank = symbol_rank(code);
      if (!best_address || rank < best_rank) {
        best_address = code.symbol.st_value;
        best_rank = rank;
      }
    });
  };
  search(image_->elf);
  if (!best_address && debug_image_) search(debug_image_->elf);
  return best_address;
}

std::vector<SourceFrame> ElfObject::source_frames(uint64_t vaddr) const {
  if (!dwarf_) return {};
  return dwarf_->frames_at(vaddr);
}

bool ElfObject::has_dwarf() const { return dwarf_ != nullptr; }

FileIdentity ElfObject::file_identity() const { return image_->identity; }

}  // namespace memscope::symbols
