#include "symbols/cfi_table.hpp"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <gelf.h>
#include <libelf.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>

#include <fmt/format.h>

namespace memscope::symbols {
namespace {

// x86-64 DWARF register numbers.
constexpr int kRbp = 6;
constexpr int kRsp = 7;
constexpr int kReturnAddress = 16;

constexpr uint64_t kPcLimit = uint64_t{1} << 32;  // rows store pcs as u32
// A safety net for crafted or damaged CFI whose rows are cheap to describe but expensive to
// interpret: libdw replays an FDE's instructions up to the asked address (one pathological FDE makes
// the sweep quadratic) and sizes each frame by the highest register number the CFI mentions
// (a damaged register number costs a large allocation per row). Real libraries compile in tens of
// milliseconds.
constexpr auto kTimeBudget = std::chrono::seconds(10);

struct ElfCloser {
  void operator()(Elf* elf) const { elf_end(elf); }
};
using ElfHandle = std::unique_ptr<Elf, ElfCloser>;

struct CfiCloser {
  void operator()(Dwarf_CFI* cfi) const { dwarf_cfi_end(cfi); }
};
struct DwarfCloser {
  void operator()(Dwarf* dwarf) const { dwarf_end(dwarf); }
};

std::string elf_error() { return elf_errmsg(-1) ? elf_errmsg(-1) : "unknown libelf error"; }

// One source of CFI libdw can be asked about addresses.
struct CfiSource {
  std::string name;
  Dwarf_CFI* cfi = nullptr;  // owned by one of the handles below
  std::unique_ptr<Dwarf_CFI, CfiCloser> eh_frame;
  // .debug_frame is read from a small ELF image holding only that section, so that libdw, which
  // loads every debug section of the file it is given, reads no more than the one section needed.
  std::string debug_frame_image;
  ElfHandle debug_frame_elf;
  std::unique_ptr<Dwarf, DwarfCloser> debug_frame_dwarf;
};

struct Section {
  Elf_Scn* scn = nullptr;
  GElf_Shdr header{};
};

std::optional<Section> find_section(Elf* elf, std::string_view wanted) {
  size_t names_index = 0;
  if (elf_getshdrstrndx(elf, &names_index) != 0) return std::nullopt;
  for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn != nullptr; scn = elf_nextscn(elf, scn)) {
    Section section{scn, {}};
    if (gelf_getshdr(scn, &section.header) == nullptr) continue;
    const char* name = elf_strptr(elf, names_index, section.header.sh_name);
    if (name != nullptr && wanted == name) return section;
  }
  return std::nullopt;
}

// How many bytes the section holds once decompressed.
std::optional<uint64_t> content_size(const Section& section) {
  if (!(section.header.sh_flags & SHF_COMPRESSED)) return section.header.sh_size;
  GElf_Chdr compression{};
  if (gelf_getchdr(section.scn, &compression) == nullptr) return std::nullopt;
  return compression.ch_size;
}

std::string too_large(std::string_view name, uint64_t size, const CfiTableLimits& limits) {
  return fmt::format("{} has {} bytes, more than the limit of {}", name, size, limits.max_section_bytes);
}

// The section's bytes (decompressed if need be), or an error when they are absent, corrupt or
// larger than the limit allows.
Result<Elf_Data*> section_bytes(const Section& section, const CfiTableLimits& limits) {
  if (section.header.sh_type == SHT_NOBITS) return Error{"no contents in this file"};
  auto size = content_size(section);
  if (!size) return Error{elf_error()};
  if (*size > limits.max_section_bytes) return Error{too_large("the section", *size, limits)};
  if ((section.header.sh_flags & SHF_COMPRESSED) && elf_compress(section.scn, 0, 0) < 0) {
    return Error{elf_error()};
  }
  Elf_Data* data = elf_getdata(section.scn, nullptr);
  if (data == nullptr || data->d_buf == nullptr) return Error{elf_error()};
  return data;
}

Result<ElfHandle> check_object(Elf* raw_elf) {
  ElfHandle elf(raw_elf);
  if (!elf || elf_kind(elf.get()) != ELF_K_ELF) return Error{"not an ELF object"};
  GElf_Ehdr header{};
  if (gelf_getehdr(elf.get(), &header) == nullptr) return Error{"unreadable ELF header: " + elf_error()};
  if (header.e_ident[EI_CLASS] != ELFCLASS64 || header.e_machine != EM_X86_64) {
    return Error{"not an x86-64 object"};
  }
  if (header.e_type == ET_REL) return Error{"a relocatable object has no link-time addresses"};
  return elf;
}

// Rows store pcs as u32; objects whose code is linked above 4 GiB (rare: non-PIE executables
// linked high) are refused as a whole rather than described in part.
std::optional<Error> check_code_below_4g(Elf* elf) {
  size_t segment_count = 0;
  uint64_t code_end = 0;
  if (elf_getphdrnum(elf, &segment_count) == 0 && segment_count > 0) {
    for (size_t i = 0; i < segment_count; ++i) {
      GElf_Phdr segment{};
      if (gelf_getphdr(elf, static_cast<int>(i), &segment) == nullptr) continue;
      if (segment.p_type == PT_LOAD && (segment.p_flags & PF_X)) {
        code_end = std::max(code_end, segment.p_vaddr + segment.p_memsz);
      }
    }
  } else {
    for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn != nullptr; scn = elf_nextscn(elf, scn)) {
      GElf_Shdr header{};
      if (gelf_getshdr(scn, &header) != nullptr && (header.sh_flags & SHF_EXECINSTR)) {
        code_end = std::max(code_end, header.sh_addr + header.sh_size);
      }
    }
  }
  if (code_end > kPcLimit) {
    return Error{fmt::format("code is linked up to {:#x}, above the 4 GiB the unwind rows can address", code_end)};
  }
  return std::nullopt;
}

// ---- Where to ask libdw: the starts of FDEs, functions and code sections. ----

uint64_t read_little_endian(const unsigned char* bytes, size_t size) {
  uint64_t value = 0;
  for (size_t i = size; i-- > 0;) value = (value << 8) | bytes[i];
  return value;
}

// .eh_frame_hdr's binary-search table lists the initial location of every FDE. Only the encoding
// every x86-64 linker writes (datarel|sdata4 entries, udata4 count) is read; other tables are left
// to the symbol and section starts.
void add_eh_frame_hdr_starts(Elf* elf, const CfiTableLimits& limits, std::vector<uint64_t>& starts) {
  auto section = find_section(elf, ".eh_frame_hdr");
  if (!section) return;
  auto data = section_bytes(*section, limits);
  if (!data) return;
  const auto* bytes = static_cast<const unsigned char*>((*data)->d_buf);
  const size_t size = (*data)->d_size;
  constexpr unsigned char kUdata4 = DW_EH_PE_udata4, kTableEncoding = DW_EH_PE_datarel | DW_EH_PE_sdata4;
  if (size < 4 || bytes[0] != 1 || bytes[2] != kUdata4 || bytes[3] != kTableEncoding) return;
  // The header's pointer to .eh_frame comes first; only its size matters here.
  size_t pointer_size = 0;
  if (bytes[1] != DW_EH_PE_omit) {
    switch (bytes[1] & 0x0f) {
      case DW_EH_PE_udata2: case DW_EH_PE_sdata2: pointer_size = 2; break;
      case DW_EH_PE_udata4: case DW_EH_PE_sdata4: pointer_size = 4; break;
      case DW_EH_PE_absptr: case DW_EH_PE_udata8: case DW_EH_PE_sdata8: pointer_size = 8; break;
      default: return;
    }
  }
  size_t offset = 4 + pointer_size;
  if (offset + 4 > size) return;
  uint64_t count = read_little_endian(bytes + offset, 4);
  offset += 4;
  count = std::min<uint64_t>(count, (size - offset) / 8);
  for (uint64_t i = 0; i < count; ++i, offset += 8) {
    auto relative = static_cast<int32_t>(static_cast<uint32_t>(read_little_endian(bytes + offset, 4)));
    starts.push_back(section->header.sh_addr + static_cast<int64_t>(relative));
  }
}

void add_function_symbol_starts(Elf* elf, const CfiTableLimits& limits, std::vector<uint64_t>& starts) {
  for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn != nullptr; scn = elf_nextscn(elf, scn)) {
    Section section{scn, {}};
    if (gelf_getshdr(scn, &section.header) == nullptr) continue;
    if (section.header.sh_type != SHT_SYMTAB && section.header.sh_type != SHT_DYNSYM) continue;
    auto data = section_bytes(section, limits);
    if (!data) continue;
    const size_t count = (*data)->d_size / sizeof(Elf64_Sym);
    for (size_t i = 0; i < count; ++i) {
      GElf_Sym symbol{};
      if (gelf_getsym(*data, static_cast<int>(i), &symbol) == nullptr) break;
      const int type = GELF_ST_TYPE(symbol.st_info);
      if ((type == STT_FUNC || type == STT_GNU_IFUNC) && symbol.st_shndx != SHN_UNDEF && symbol.st_value != 0) {
        starts.push_back(symbol.st_value);
      }
    }
  }
}

void add_code_section_starts(Elf* elf, std::vector<uint64_t>& starts) {
  for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn != nullptr; scn = elf_nextscn(elf, scn)) {
    GElf_Shdr header{};
    if (gelf_getshdr(scn, &header) != nullptr && (header.sh_flags & SHF_EXECINSTR)) starts.push_back(header.sh_addr);
  }
}

// ---- CFI sources ----

// Sections over the limits refuse the object; sections libdw cannot read are only mentioned when no
// other source is usable.
struct SourceProblems {
  std::vector<std::string> refusals;
  std::vector<std::string> unreadable;
};

std::string dwarf_error() { return dwarf_errmsg(-1) ? dwarf_errmsg(-1) : "unknown libdw error"; }

std::optional<CfiSource> eh_frame_source(Elf* elf, const CfiTableLimits& limits, SourceProblems& problems) {
  auto section = find_section(elf, ".eh_frame");
  if (!section || section->header.sh_type == SHT_NOBITS) return std::nullopt;
  if (section->header.sh_size > limits.max_section_bytes) {
    problems.refusals.push_back(too_large(".eh_frame", section->header.sh_size, limits));
    return std::nullopt;
  }
  Dwarf_CFI* cfi = dwarf_getcfi_elf(elf);
  if (cfi == nullptr) {
    problems.unreadable.push_back(".eh_frame: " + dwarf_error());
    return std::nullopt;
  }
  CfiSource source;
  source.name = ".eh_frame";
  source.cfi = cfi;
  source.eh_frame.reset(cfi);
  return source;
}

// A minimal ELF image: the header, .debug_frame's bytes, a section-name table and three section
// headers (null, .debug_frame, .shstrtab).
std::string debug_frame_only_image(const GElf_Ehdr& original, const Elf_Data& debug_frame) {
  static constexpr char kNames[] = "\0.debug_frame\0.shstrtab";
  const size_t data_offset = sizeof(Elf64_Ehdr);
  const size_t names_offset = data_offset + debug_frame.d_size;
  const size_t headers_offset = (names_offset + sizeof(kNames) + 7) & ~size_t{7};
  std::string image(headers_offset + 3 * sizeof(Elf64_Shdr), '\0');

  Elf64_Ehdr header{};
  std::memcpy(header.e_ident, original.e_ident, EI_NIDENT);
  header.e_type = original.e_type;
  header.e_machine = original.e_machine;
  header.e_version = EV_CURRENT;
  header.e_ehsize = sizeof(Elf64_Ehdr);
  header.e_shoff = headers_offset;
  header.e_shentsize = sizeof(Elf64_Shdr);
  header.e_shnum = 3;
  header.e_shstrndx = 2;
  std::memcpy(image.data(), &header, sizeof(header));
  std::memcpy(image.data() + data_offset, debug_frame.d_buf, debug_frame.d_size);
  std::memcpy(image.data() + names_offset, kNames, sizeof(kNames));

  Elf64_Shdr sections[3]{};
  sections[1].sh_name = 1;  // ".debug_frame"
  sections[1].sh_type = SHT_PROGBITS;
  sections[1].sh_offset = data_offset;
  sections[1].sh_size = debug_frame.d_size;
  sections[1].sh_addralign = 1;
  sections[2].sh_name = 14;  // ".shstrtab"
  sections[2].sh_type = SHT_STRTAB;
  sections[2].sh_offset = names_offset;
  sections[2].sh_size = sizeof(kNames);
  sections[2].sh_addralign = 1;
  std::memcpy(image.data() + headers_offset, sections, sizeof(sections));
  return image;
}

std::optional<CfiSource> debug_frame_source(Elf* elf, std::string name, const CfiTableLimits& limits,
                                            SourceProblems& problems) {
  auto section = find_section(elf, ".debug_frame");
  if (!section) return std::nullopt;
  GElf_Ehdr header{};
  if (gelf_getehdr(elf, &header) == nullptr) return std::nullopt;
  if (auto size = content_size(*section); size && *size > limits.max_section_bytes) {
    problems.refusals.push_back(too_large(name, *size, limits));
    return std::nullopt;
  }
  auto data = section_bytes(*section, limits);
  if (!data) {
    problems.unreadable.push_back(fmt::format("{}: {}", name, data.error().message));
    return std::nullopt;
  }
  CfiSource source;
  source.name = std::move(name);
  source.debug_frame_image = debug_frame_only_image(header, **data);
  source.debug_frame_elf.reset(elf_memory(source.debug_frame_image.data(), source.debug_frame_image.size()));
  if (source.debug_frame_elf) {
    source.debug_frame_dwarf.reset(dwarf_begin_elf(source.debug_frame_elf.get(), DWARF_C_READ, nullptr));
  }
  if (source.debug_frame_dwarf) source.cfi = dwarf_getcfi(source.debug_frame_dwarf.get());  // owned by the Dwarf
  if (source.cfi == nullptr) {
    problems.unreadable.push_back(fmt::format("{}: {}", source.name, dwarf_error()));
    return std::nullopt;
  }
  return source;
}

// ---- Translating libdw's rules ----

bool fits_s16(int64_t value) { return value >= INT16_MIN && value <= INT16_MAX; }
bool fits_s32(int64_t value) { return value >= INT32_MIN && value <= INT32_MAX; }

// libdw spells "saved at CFA + N" as DW_OP_call_frame_cfa followed by an addition of N (N as an
// unsigned word that wraps for negative offsets); other producers' spellings are accepted too.
std::optional<int64_t> cfa_relative_offset(const Dwarf_Op* ops, size_t count) {
  if (count == 0 || ops[0].atom != DW_OP_call_frame_cfa) return std::nullopt;
  if (count == 1) return 0;
  if (count == 2 && ops[1].atom == DW_OP_plus_uconst) return static_cast<int64_t>(ops[1].number);
  if (count == 3 && (ops[1].atom == DW_OP_consts || ops[1].atom == DW_OP_constu)) {
    const auto value = static_cast<int64_t>(ops[1].number);
    if (ops[2].atom == DW_OP_plus) return value;
    if (ops[2].atom == DW_OP_minus) return -value;
  }
  return std::nullopt;
}

// `reg + N` as one operation: DW_OP_bregN or DW_OP_bregx.
std::optional<int64_t> register_relative_offset(const Dwarf_Op& op, int reg) {
  if (op.atom == DW_OP_breg0 + reg) return static_cast<int64_t>(op.number);
  if (op.atom == DW_OP_bregx && op.number == static_cast<Dwarf_Word>(reg)) return static_cast<int64_t>(op.number2);
  return std::nullopt;
}

// Where a register expression (DW_CFA_expression) says a register is saved, as an offset from rsp.
// libdw puts the DW_OP_call_frame_cfa the DWARF rules push first in front of the expression.
std::optional<int64_t> rsp_relative_save_slot(const Dwarf_Op* ops, size_t count) {
  if (count == 2 && ops[0].atom == DW_OP_call_frame_cfa) {
    ++ops;
    --count;
  }
  if (count != 1) return std::nullopt;
  return register_relative_offset(ops[0], kRsp);
}

enum class RegisterRule { kUndefined, kSameValue, kExpression, kError };

struct RegisterLocation {
  RegisterRule rule = RegisterRule::kError;
  const Dwarf_Op* ops = nullptr;
  size_t count = 0;
  bool is_value = false;  // the expression computes the value itself (ends with DW_OP_stack_value)
};

// `scratch` holds libdw's answer for simple rules: it must outlive the returned location.
RegisterLocation register_location(Dwarf_Frame* frame, int reg, Dwarf_Op (&scratch)[3]) {
  Dwarf_Op* ops = nullptr;
  size_t count = 0;
  if (dwarf_frame_register(frame, reg, scratch, &ops, &count) != 0) return {};
  if (count == 0) return {ops == nullptr ? RegisterRule::kSameValue : RegisterRule::kUndefined, nullptr, 0, false};
  const bool is_value = ops[count - 1].atom == DW_OP_stack_value;
  return {RegisterRule::kExpression, ops, is_value ? count - 1 : count, is_value};
}

// The PLT stubs' CFA: rsp + N, plus 8 once the stub has pushed its relocation index
// (rip & 15 >= threshold).
std::optional<std::pair<int64_t, uint8_t>> plt_rule(const Dwarf_Op* ops, size_t count) {
  if (count != 9) return std::nullopt;
  auto base = register_relative_offset(ops[0], kRsp);
  const auto threshold_atom = ops[4].atom;
  if (!base || !register_relative_offset(ops[1], kReturnAddress) || ops[1].number != 0 ||
      ops[2].atom != DW_OP_lit15 || ops[3].atom != DW_OP_and ||
      (threshold_atom != DW_OP_lit10 && threshold_atom != DW_OP_lit11) || ops[5].atom != DW_OP_ge ||
      ops[6].atom != DW_OP_lit3 || ops[7].atom != DW_OP_shl || ops[8].atom != DW_OP_plus) {
    return std::nullopt;
  }
  return std::pair{*base, static_cast<uint8_t>(threshold_atom - DW_OP_lit0)};
}

struct Translation {
  memscope_unwind_row row{};  // pc left 0
  bool unsupported = false;
};

Translation unsupported() {
  Translation translation;
  translation.unsupported = true;
  return translation;
}

// A signal trampoline's frame: the interrupted registers sit in a ucontext at rsp, so the CFA is
// *(rsp + N) and rbp and rip are read from their own slots.
Translation translate_signal_frame(Dwarf_Frame* frame, int64_t rsp_slot) {
  Dwarf_Op rip_scratch[3], rbp_scratch[3];
  auto rip = register_location(frame, kReturnAddress, rip_scratch);
  auto rip_slot = rip.rule == RegisterRule::kExpression && !rip.is_value ? rsp_relative_save_slot(rip.ops, rip.count)
                                                                          : std::nullopt;
  if (!rip_slot || !fits_s32(rsp_slot) || !fits_s16(*rip_slot)) return unsupported();
  Translation translation;
  translation.row.cfa_kind = MEMSCOPE_CFA_SIGNAL;
  translation.row.cfa_offset = static_cast<int32_t>(rsp_slot);
  translation.row.rip_offset = static_cast<int16_t>(*rip_slot);
  translation.row.rbp_kind = MEMSCOPE_RBP_UNDEFINED;
  auto rbp = register_location(frame, kRbp, rbp_scratch);
  auto rbp_slot = rbp.rule == RegisterRule::kExpression && !rbp.is_value ? rsp_relative_save_slot(rbp.ops, rbp.count)
                                                                          : std::nullopt;
  if (rbp_slot && fits_s16(*rbp_slot)) {
    translation.row.rbp_kind = MEMSCOPE_RBP_AT_CFA;
    translation.row.rbp_offset = static_cast<int16_t>(*rbp_slot);
  }
  return translation;
}

Translation translate(Dwarf_Frame* frame, bool signal_frame) {
  Dwarf_Op* cfa_ops = nullptr;
  size_t cfa_count = 0;
  if (dwarf_frame_cfa(frame, &cfa_ops, &cfa_count) != 0 || cfa_count == 0) return unsupported();

  Dwarf_Op return_address_scratch[3], rbp_scratch[3];
  auto return_address = register_location(frame, kReturnAddress, return_address_scratch);
  if (return_address.rule == RegisterRule::kUndefined) {
    Translation translation;
    translation.row.cfa_kind = MEMSCOPE_CFA_END;
    return translation;
  }
  if (cfa_count == 2 && cfa_ops[1].atom == DW_OP_deref) {
    auto rsp_slot = register_relative_offset(cfa_ops[0], kRsp);
    if (rsp_slot) return translate_signal_frame(frame, *rsp_slot);
  }
  if (signal_frame) return unsupported();  // a trampoline whose saved registers are not in a ucontext at rsp

  Translation translation;
  auto& row = translation.row;
  int64_t cfa_offset = 0;
  const auto rsp_based = cfa_count == 1 ? register_relative_offset(cfa_ops[0], kRsp) : std::nullopt;
  const auto rbp_based = cfa_count == 1 ? register_relative_offset(cfa_ops[0], kRbp) : std::nullopt;
  if (rsp_based) {
    row.cfa_kind = MEMSCOPE_CFA_RSP;
    cfa_offset = *rsp_based;
  } else if (rbp_based) {
    row.cfa_kind = MEMSCOPE_CFA_RBP;
    cfa_offset = *rbp_based;
  } else if (auto plt = plt_rule(cfa_ops, cfa_count)) {
    row.cfa_kind = MEMSCOPE_CFA_PLT;
    cfa_offset = plt->first;
    row.plt_threshold = plt->second;
  } else {
    return unsupported();
  }
  if (!fits_s32(cfa_offset)) return unsupported();
  row.cfa_offset = static_cast<int32_t>(cfa_offset);

  // The walker reads the return address at cfa - 8 without looking it up.
  if (return_address.rule != RegisterRule::kExpression || return_address.is_value ||
      cfa_relative_offset(return_address.ops, return_address.count) != -8) {
    return unsupported();
  }

  auto rbp = register_location(frame, kRbp, rbp_scratch);
  if (rbp.rule == RegisterRule::kSameValue) {
    row.rbp_kind = MEMSCOPE_RBP_SAME;
  } else if (rbp.rule == RegisterRule::kUndefined) {
    row.rbp_kind = MEMSCOPE_RBP_UNDEFINED;
  } else if (auto slot = rbp.rule == RegisterRule::kExpression && !rbp.is_value
                             ? cfa_relative_offset(rbp.ops, rbp.count)
                             : std::nullopt) {
    if (!fits_s16(*slot)) return unsupported();
    row.rbp_kind = MEMSCOPE_RBP_AT_CFA;
    row.rbp_offset = static_cast<int16_t>(*slot);
  } else {
    // Saved in another register or computed: the walker cannot follow it, later rbp-based frames
    // fail instead of using a wrong rbp.
    row.rbp_kind = MEMSCOPE_RBP_UNDEFINED;
    translation.unsupported = true;
  }
  return translation;
}

// ---- The sweep ----

struct Interval {
  uint64_t start = 0;
  uint64_t end = 0;
  memscope_unwind_row rule{};
};

struct FrameAnswer {
  uint64_t start = 0;
  uint64_t end = 0;
  Translation translation;
  size_t source_index = 0;
};

std::optional<FrameAnswer> frame_at(std::vector<CfiSource>& sources, uint64_t address) {
  for (size_t i = 0; i < sources.size(); ++i) {
    Dwarf_Frame* frame = nullptr;
    if (dwarf_cfi_addrframe(sources[i].cfi, address, &frame) != 0 || frame == nullptr) continue;
    std::unique_ptr<Dwarf_Frame, decltype(&free)> owned(frame, &free);
    Dwarf_Addr start = 0, end = 0;
    bool signal_frame = false;
    if (dwarf_frame_info(frame, &start, &end, &signal_frame) < 0 || end <= address) continue;
    return FrameAnswer{start, end, translate(frame, signal_frame), i};
  }
  return std::nullopt;
}

bool same_rule(const memscope_unwind_row& a, const memscope_unwind_row& b) {
  return a.cfa_offset == b.cfa_offset && a.rbp_offset == b.rbp_offset && a.rip_offset == b.rip_offset &&
         a.cfa_kind == b.cfa_kind && a.rbp_kind == b.rbp_kind && a.plt_threshold == b.plt_threshold;
}

Result<std::vector<CfiSource>> open_sources(Elf* object, Elf* debug_object, const CfiTableLimits& limits) {
  SourceProblems problems;
  std::vector<CfiSource> sources;
  if (auto source = eh_frame_source(object, limits, problems)) sources.push_back(std::move(*source));
  if (auto source = debug_frame_source(object, ".debug_frame", limits, problems)) sources.push_back(std::move(*source));
  if (debug_object != nullptr) {
    if (auto source = debug_frame_source(debug_object, "separate .debug_frame", limits, problems)) {
      sources.push_back(std::move(*source));
    }
  }
  if (!problems.refusals.empty()) {
    return Error{fmt::format("call-frame information refused: {}", fmt::join(problems.refusals, "; "))};
  }
  if (sources.empty() && !problems.unreadable.empty()) {
    return Error{fmt::format("unreadable call-frame information: {}", fmt::join(problems.unreadable, "; "))};
  }
  if (sources.empty()) return Error{"no .eh_frame or .debug_frame"};
  return sources;
}

// Sorted, distinct addresses where CFI may begin.
std::vector<uint64_t> sweep_starts(Elf* object, Elf* debug_object, const CfiTableLimits& limits) {
  std::vector<uint64_t> starts;
  add_eh_frame_hdr_starts(object, limits, starts);
  add_function_symbol_starts(object, limits, starts);
  add_code_section_starts(object, starts);
  if (debug_object != nullptr) add_function_symbol_starts(debug_object, limits, starts);
  std::sort(starts.begin(), starts.end());
  starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
  return starts;
}

// Asks the sources about every start not yet covered and follows the rows from there for as long
// as they are contiguous. The intervals come out sorted and disjoint.
Result<std::vector<Interval>> sweep(std::vector<CfiSource>& sources, const std::vector<uint64_t>& starts,
                                    const CfiTableLimits& limits, CfiTable& table) {
  std::vector<bool> source_used(sources.size(), false);
  std::vector<Interval> intervals;
  const auto deadline = std::chrono::steady_clock::now() + kTimeBudget;
  uint64_t covered_until = 0;
  for (uint64_t candidate : starts) {
    if (candidate < covered_until) continue;
    if (candidate >= kPcLimit) break;
    for (uint64_t address = candidate; address < kPcLimit;) {
      if (std::chrono::steady_clock::now() > deadline) return Error{"call-frame information too expensive to interpret"};
      auto answer = frame_at(sources, address);
      if (!answer) break;
      Interval interval{std::max(answer->start, covered_until), std::min(answer->end, kPcLimit), answer->translation.row};
      intervals.push_back(interval);
      if (intervals.size() > limits.max_rows) return Error{fmt::format("more than {} unwind rows", limits.max_rows)};
      source_used[answer->source_index] = true;
      ++table.fde_ranges;
      if (answer->translation.unsupported) ++table.unsupported_rows;
      covered_until = interval.end;
      address = interval.end;
    }
  }
  for (size_t i = 0; i < sources.size(); ++i) {
    if (!source_used[i]) continue;
    if (!table.source.empty()) table.source += " + ";
    table.source += sources[i].name;
  }
  return intervals;
}

// Each interval's rule, a NONE row where coverage stops, neighbours with one rule merged.
void assemble_rows(const std::vector<Interval>& intervals, std::vector<memscope_unwind_row>& rows) {
  auto append = [&rows](uint64_t pc, const memscope_unwind_row& rule) {
    if (!rows.empty() && same_rule(rows.back(), rule)) return;
    rows.push_back(rule);
    rows.back().pc = static_cast<uint32_t>(pc);
  };
  uint64_t previous_end = 0;
  for (const Interval& interval : intervals) {
    if (!rows.empty() && interval.start > previous_end) append(previous_end, memscope_unwind_row{});
    append(interval.start, interval.rule);
    previous_end = interval.end;
  }
  if (!intervals.empty() && previous_end < kPcLimit) append(previous_end, memscope_unwind_row{});
}

Result<CfiTable> compile(Elf* object, Elf* debug_object, const CfiTableLimits& limits) {
  if (auto error = check_code_below_4g(object)) return *error;
  auto sources = open_sources(object, debug_object, limits);
  if (!sources) return sources.error();
  CfiTable table;
  auto intervals = sweep(*sources, sweep_starts(object, debug_object, limits), limits, table);
  if (!intervals) return intervals.error();
  assemble_rows(*intervals, table.rows);
  if (table.rows.size() > limits.max_rows) return Error{fmt::format("more than {} unwind rows", limits.max_rows)};
  if (table.rows.empty()) return Error{"the call-frame information describes no code"};
  return table;
}

}  // namespace

Result<CfiTable> compile_cfi_table(int object_fd, int debug_fd, const CfiTableLimits& limits) {
  elf_version(EV_CURRENT);
  // ELF_C_READ reads headers and sections with pread as they are asked for, bounded by the file's size.
  auto object = check_object(elf_begin(object_fd, ELF_C_READ, nullptr));
  if (!object) return object.error();
  ElfHandle debug_object;
  if (debug_fd >= 0) {
    auto opened = check_object(elf_begin(debug_fd, ELF_C_READ, nullptr));
    if (opened) debug_object = std::move(*opened);  // an unusable debug file only loses .debug_frame
  }
  return compile(object->get(), debug_object.get(), limits);
}

Result<CfiTable> compile_cfi_table_from_image(std::string_view image, const CfiTableLimits& limits) {
  elf_version(EV_CURRENT);
  std::string copy(image);  // libelf wants writable memory
  auto object = check_object(elf_memory(copy.data(), copy.size()));
  if (!object) return object.error();
  return compile(object->get(), nullptr, limits);
}

const memscope_unwind_row* find_unwind_row(const CfiTable& table, uint64_t pc) {
  auto after = std::upper_bound(table.rows.begin(), table.rows.end(), pc,
                                [](uint64_t value, const memscope_unwind_row& row) { return value < row.pc; });
  if (after == table.rows.begin()) return nullptr;
  return &*(after - 1);
}

}  // namespace memscope::symbols
