// A call made from inside an inlined function, in the unit test binary itself, for the tests of how
// sinks show an address's inline chain. GCC inlines always_inline functions at every optimisation
// level and describes the inlined copy in DWARF, so this holds for Debug and release builds alike.
#pragma once

#include <cstdint>

namespace memscope::inlined_call {

// The full names the symbol table and DWARF give the functions below.
inline constexpr const char* kCallee = "memscope::inlined_call::callee(memscope::inlined_call::Site&)";
inline constexpr const char* kCaller = "memscope::inlined_call::caller()";

struct Site {
  uint64_t return_address = 0;  // in callee()'s code, which is inside caller()
  int callee_line = 0;          // the line of callee()'s call
  int caller_line = 0;          // the line of caller()'s call to callee()
};

__attribute__((noinline)) inline uint64_t return_address_of_call() {
  return reinterpret_cast<uint64_t>(__builtin_return_address(0));
}

// Each call shares its line with the __LINE__ that records it.
// clang-format off
__attribute__((always_inline)) inline void callee(Site& site) {
  site.return_address = return_address_of_call(); site.callee_line = __LINE__;
  asm volatile("" ::: "memory");  // code after the call: it must not become a tail call
}

__attribute__((noinline)) inline Site caller() {
  Site site;
  callee(site); site.caller_line = __LINE__;
  asm volatile("" ::: "memory");
  return site;
}
// clang-format on

}  // namespace memscope::inlined_call
