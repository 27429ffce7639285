// The unwind-table compiler's subject (tests/unit/cfi_table_test.cpp): optimised code without frame
// pointers, with one frame too big for 16-bit offsets and one that keeps rbp as frame pointer anyway.
#include <alloca.h>
#include <string.h>

// Kept out of line so that the callers' frames survive optimisation.
__attribute__((noinline)) int sum_bytes(const volatile char* bytes, int count) {
  int sum = 0;
  for (int i = 0; i < count; ++i) sum += bytes[i];
  return sum;
}

// A frame of more than 32 KiB: its CFA offset needs more than 16 bits.
__attribute__((noinline)) int big_frame(int count) {
  volatile char buffer[40000];
  for (int i = 0; i < count; ++i) buffer[i * 97 % 40000] = (char)i;
  return sum_bytes(buffer, count);
}

// A variable-sized allocation makes the compiler address the frame through rbp even with
// -fomit-frame-pointer.
__attribute__((noinline)) int rbp_frame(int count) {
  char* bytes = alloca((unsigned)count);
  memset(bytes, 1, (unsigned)count);
  return sum_bytes(bytes, count);
}

int main(int argc, char** argv) {
  (void)argv;
  return (big_frame(argc * 100) + rbp_frame(argc * 10)) == 42;
}
