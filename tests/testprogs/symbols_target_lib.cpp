// Shared library built with -g for the symbolizer tests: C++ names to demangle and DWARF lines.
// A function's signature and its record() call must stay on one line:
// clang-format off
extern "C" typedef void (*symbols_target_record)(const char* label, void* entry, int line);

namespace symbols_lib {

__attribute__((noinline)) int debug_function(int value, symbols_target_record record) { record("lib_debug_function", reinterpret_cast<void*>(&debug_function), __LINE__);
  return value * 5;
}

}  // namespace symbols_lib

extern "C" int symbols_lib_entry(int value, symbols_target_record record) {
  return symbols_lib::debug_function(value, record);
}
