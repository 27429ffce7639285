// One parsed ELF object (executable, shared library, vdso image) with its symbols, load segments and,
// when available, DWARF line information — possibly from a separate debug file. Objects are immutable
// after opening apart from the lazily built DWARF index, and are shared between processes that map the
// same file so that e.g. libc is parsed once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "symbols/target_files.hpp"

namespace memscope::symbols {

namespace detail {
struct ElfImage;
struct DwarfIndex;
}  // namespace detail

struct ElfSymbol {
  uint64_t start = 0;  // link-time virtual address (st_value)
  uint64_t size = 0;   // 0 for assembler labels without .size
  // How far a size-less symbol may reach: the end of its section, so that a label at the end of .text
  // does not swallow addresses in the next section.
  uint64_t limit = 0;
  const char* name = nullptr;  // raw (mangled) name; points into the ELF image the object keeps mapped
  uint8_t rank = 0;            // lower is preferred among aliases at one address (see symbol_rank)
};

struct SourceLocation {
  std::string file;
  int line = 0;
};

// One function that an address belongs to, as DWARF describes it. Optimised code can hold a chain of
// them at one address: inlined callees first, the function that contains the code last.
struct SourceFrame {
  // Readable name of an inlined function; for the last, containing function DWARF's name, which the
  // symbolizer does not use (it names that one from the symbol table). Empty when DWARF has none.
  std::string function;
  // Where in this function the address is: the line of the address itself for the innermost frame,
  // for every outer one the line that calls (and inlines) the next-inner frame.
  SourceLocation location;
};

struct LoadSegment {
  uint64_t file_offset = 0;
  uint64_t file_size = 0;
  uint64_t vaddr = 0;
  uint64_t mem_size = 0;
  bool executable = false;
};

// Where separate debug files may live. Paths inside the traced process's mount namespace resolve in
// `root` (its /proc/PID/root) and never leave it; the host's debug directories are tried after it.
// The .gnu_debuglink directories (the object's own, its .debug/) are looked up in `root` only.
struct DebugFileSearch {
  FileRoot root = FileRoot::host();
  std::string object_path;  // the object's path as the process sees it, for .gnu_debuglink directories
  std::vector<std::string> debug_directories{"/usr/lib/debug"};
};

// What an object's .gnu_debuglink section says.
struct DebugLink {
  std::string name;  // as written; only a plain file name (is_plain_file_name) is ever looked up
  uint32_t crc = 0;
};

// What identifies the version of a file that was parsed: inode numbers are reused once a file is
// deleted, so (device, inode) alone could mistake a rebuilt binary for the one parsed before.
struct FileIdentity {
  uint64_t device = 0;
  uint64_t inode = 0;
  uint64_t size = 0;
  int64_t modified_ns = 0;
};

class ElfObject {
 public:
  // The file's bytes are copied into memory (never mapped: its owner may truncate it, and a mapping
  // would then end the tracer with SIGBUS) and the descriptor is closed: the copy keeps a deleted
  // file's contents reachable, and the tracer does not hold one descriptor per library.
  static std::shared_ptr<ElfObject> open_file(const OpenedFile& file, const DebugFileSearch& search);
  // A path memscope was given or chose (a library found by name, the loader's list), as
  // open_target_path() takes it: a host path or /proc/PID/root/…. A symlink at the end is followed
  // (libstdc++.so.6 is one), inside the root; the file must still be a regular one.
  static std::shared_ptr<ElfObject> open_path(const std::string& path, const DebugFileSearch& search);
  // For images without a file, i.e. the vdso copied out of a process; no debug file is looked for.
  static std::shared_ptr<ElfObject> from_memory(std::string image);

  ElfObject(const ElfObject&) = delete;
  ElfObject& operator=(const ElfObject&) = delete;
  ~ElfObject();

  // Translates a position in the file to the link-time address the symbols and DWARF use. Segments of
  // the mapping's kind win when two segments share file bytes.
  std::optional<uint64_t> vaddr_of_file_offset(uint64_t file_offset, bool executable_mapping) const;
  // The inverse, for uprobes: the kernel wants an offset into the file.
  std::optional<uint64_t> file_offset_of_vaddr(uint64_t vaddr) const;

  // The symbol whose range contains `vaddr`, or nullptr.
  const ElfSymbol* symbol_at(uint64_t vaddr) const;
  // Link-time address of a defined function symbol by its raw (mangled) name; "name@VERSION" entries
  // match "name", the default version winning. Searches every symbol, including aliases that
  // symbol_at() folds away.
  std::optional<uint64_t> symbol_address(std::string_view name) const;
  // The functions `vaddr` belongs to, innermost first: the inlined calls that lead to it, then the
  // function that contains the code (exactly one frame when nothing is inlined there). Empty without
  // debug info or when no line covers `vaddr`. The DWARF is opened on the first call, answers are
  // cached per address, and calls may come from several threads.
  std::vector<SourceFrame> source_frames(uint64_t vaddr) const;

  bool has_dwarf() const;
  // Of the file the object was read from; all zero for in-memory images.
  FileIdentity file_identity() const;
  const std::string& build_id() const { return build_id_; }                // lowercase hex, empty when absent
  const std::string& debug_file_path() const { return debug_file_path_; }  // empty when none was used
  const std::optional<DebugLink>& debug_link() const { return debug_link_; }
  size_t symbol_count() const { return symbols_.size(); }

 private:
  ElfObject();
  bool load(std::unique_ptr<detail::ElfImage> image, const DebugFileSearch* search);
  void attach_debug_file(const DebugFileSearch& search);
  void index_symbols();

  std::unique_ptr<detail::ElfImage> image_;
  std::unique_ptr<detail::ElfImage> debug_image_;
  std::vector<LoadSegment> segments_;
  std::vector<ElfSymbol> symbols_;  // sorted by start, one per address
  std::string build_id_;
  std::string debug_file_path_;
  std::optional<DebugLink> debug_link_;
  std::unique_ptr<detail::DwarfIndex> dwarf_;
};

// Symbol names as people read them: C++ names demangled, symbol versions ("@GLIBC_2.2.5") removed.
std::string readable_symbol_name(std::string_view raw_name);

// CRC-32 as used by .gnu_debuglink (the zlib/IEEE polynomial).
uint32_t debuglink_crc32(const unsigned char* data, size_t size, uint32_t crc = 0);

}  // namespace memscope::symbols
