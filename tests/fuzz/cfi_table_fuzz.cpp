// Call-frame information (.eh_frame, .eh_frame_hdr, .debug_frame, symbol tables) compiled into the
// unwinder's rows, through libdw.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "symbols/cfi_table.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace memscope::symbols;
  CfiTableLimits limits;
  limits.max_rows = 100'000;
  limits.max_section_bytes = 8u << 20;
  auto table = compile_cfi_table_from_image(std::string_view(reinterpret_cast<const char*>(data), size), limits);
  if (table && !table->rows.empty()) {
    (void)find_unwind_row(*table, table->rows.front().pc);
    (void)find_unwind_row(*table, table->rows.back().pc + 1);
  }
  return 0;
}
