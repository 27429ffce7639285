// libunwind_churn.so: what unwind_dlopen_churn loads, copied by the test to many files (each copy a
// distinct object to the unwinder: another inode). Built -O2 -g without frame pointers. The page
// faults of churn_touch() are taken in its own loop, so every fault's stack starts in this library.
// (.cc so that the test program glob does not build it as an executable; extern "C" keeps the
// names plain.)
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>

static volatile std::size_t touched;

extern "C" {

// Writes one byte into each of `pages` fresh anonymous pages: one fault per page.
__attribute__((visibility("default"), noinline)) int churn_touch(std::size_t pages) {
  std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  auto* memory = static_cast<volatile char*>(
      mmap(nullptr, pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (memory == MAP_FAILED) return -1;
  madvise(const_cast<char*>(memory), pages * page, MADV_NOHUGEPAGE);  // one fault per page
  for (std::size_t i = 0; i < pages; i++) memory[i * page] = 1;
  touched = touched + pages;  // after the loop: not a tail call
  return 0;
}
}
