// /proc/PID/maps lines: the path is whatever the process named its files (spaces, " (deleted)",
// newlines are its choice).
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "symbols/process_maps.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream maps(std::string(reinterpret_cast<const char*>(data), size));
  for (const auto& entry : memscope::symbols::parse_proc_maps(maps)) (void)entry.file_backed();
  return 0;
}
