// The unwind-table compiler: turns an ELF object's call-frame information (.eh_frame, or
// .debug_frame where .eh_frame has none) into the compact rows the BPF user-stack unwinder walks
// (bpf/memscope_unwind_shared.h). x86-64 objects only. libdw interprets the CFI; this file only
// decides where to ask it and translates its answers into rows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "memscope_unwind_shared.h"
#include "runtime/result.hpp"

namespace memscope::symbols {

// Objects beyond these limits are refused; the caller falls back to frame pointers for them.
struct CfiTableLimits {
  size_t max_rows = 1'000'000;
  uint64_t max_section_bytes = 64ull << 20;  // any section read: .eh_frame, .debug_frame, symbol tables
};

struct CfiTable {
  // Sorted by pc, neighbours never equal in everything but pc. Every range CFI does not describe
  // (gaps between functions, code after the last FDE) starts with a MEMSCOPE_CFA_NONE row, so a
  // function without CFI never inherits the rule of the code before it.
  // MEMSCOPE_CFA_SIGNAL rows: rbp_kind is MEMSCOPE_RBP_AT_CFA when rbp is at rsp + rbp_offset,
  // MEMSCOPE_RBP_UNDEFINED when the trampoline's CFI does not say where rbp was saved.
  // MEMSCOPE_CFA_NONE and MEMSCOPE_CFA_END rows have every other field zero.
  std::vector<memscope_unwind_row> rows;
  // Where the rows came from: ".eh_frame", ".debug_frame", "separate .debug_frame", or several of
  // them joined by " + " when .debug_frame filled ranges .eh_frame left uncovered.
  std::string source;
  size_t fde_ranges = 0;        // [start, end) ranges libdw described (one per CFI row, before merging)
  size_t unsupported_rows = 0;  // of those, rules the BPF walker cannot run, emitted as MEMSCOPE_CFA_NONE
  size_t bytes() const { return rows.size() * sizeof(memscope_unwind_row); }
};

// Compiles the object at `object_fd` (read with pread through libelf, never mapped, not closed).
// `debug_fd` (-1 if none) is its separate debug file: its .debug_frame describes only the ranges the
// object's own .eh_frame and .debug_frame leave uncovered.
Result<CfiTable> compile_cfi_table(int object_fd, int debug_fd, const CfiTableLimits& limits = {});
// An image already in memory, i.e. the vDSO copied out of a process.
Result<CfiTable> compile_cfi_table_from_image(std::string_view image, const CfiTableLimits& limits = {});

// The row whose range contains `pc`, or nullptr before the first row.
const memscope_unwind_row* find_unwind_row(const CfiTable& table, uint64_t pc);

}  // namespace memscope::symbols
