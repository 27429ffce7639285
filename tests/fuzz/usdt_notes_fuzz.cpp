// SystemTap SDT notes (.note.stapsdt) as `memscope usdt -l` and mallocsnoop read them: the ELF file,
// each note's descriptor and its argument string.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "runtime/usdt_notes.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace memscope::usdt;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto probes = read_image_probes(bytes, "fuzz");
  if (probes)
    for (const auto& probe : probes->probes)
      for (const auto& argument : probe.arguments) (void)format_argument(argument, 0x8000000000000001ull);
  // The same bytes as one note descriptor and as an argument string.
  for (int address_size : {4, 8}) (void)decode_note_descriptor(data, size, address_size);
  for (const auto& argument : parse_arguments(bytes)) (void)format_argument(argument, 0xffffffffull);
  return 0;
}
