// ELF objects as the symbolizer reads them: headers, load segments, .symtab/.dynsym with versions,
// build-id and .gnu_debuglink notes, and DWARF line and inline information through libdw.
#include <cstddef>
#include <cstdint>
#include <string>

#include "symbols/elf_object.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace memscope::symbols;
  auto object = ElfObject::from_memory(std::string(reinterpret_cast<const char*>(data), size));
  if (!object) return 0;
  (void)object->build_id();
  if (const auto& link = object->debug_link()) (void)is_plain_file_name(link->name);
  // Addresses the input itself suggests: its first bytes' worth of offsets and the symbols found.
  for (uint64_t offset : {uint64_t{0}, uint64_t{0x40}, uint64_t{0x1000}, uint64_t{size / 2}}) {
    auto vaddr = object->vaddr_of_file_offset(offset, true);
    if (!vaddr) continue;
    (void)object->file_offset_of_vaddr(*vaddr);
    if (const ElfSymbol* symbol = object->symbol_at(*vaddr)) (void)readable_symbol_name(symbol->name);
    for (const auto& frame : object->source_frames(*vaddr)) (void)frame.function.size();
  }
  for (const char* name : {"main", "malloc", "_dl_debug_state"}) {
    auto vaddr = object->symbol_address(name);
    if (!vaddr) continue;
    (void)object->file_offset_of_vaddr(*vaddr);
    if (const ElfSymbol* symbol = object->symbol_at(*vaddr)) (void)readable_symbol_name(symbol->name);
    (void)object->source_frames(*vaddr);
  }
  return 0;
}
