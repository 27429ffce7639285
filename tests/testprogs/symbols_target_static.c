/* Static, non-PIE executable for the symbolizer tests: link-time addresses are run-time addresses.
   Reports "record <label> <entry> <return address> <line>" for each function, then "ready", then
   waits for stdin to close. Each function's signature and its record() call share one line, so the
   entry and the call site map to that line. */
/* A function's signature and its record() call must stay on one line: */
/* clang-format off */
#include <stdio.h>
#include <unistd.h>

__attribute__((noinline)) static void record(const char* label, void* entry, int line) {
  printf("record %s %p %p %d\n", label, entry, __builtin_return_address(0), line);
}

__attribute__((noinline)) static int static_local(int value) { record("static_local", (void*)&static_local, __LINE__);
  return value * 3;
}

__attribute__((noinline)) int static_function(int value) { record("static_function", (void*)&static_function, __LINE__);
  return static_local(value) + 1;
}

int main(void) {
  int result = static_function(4);
  printf("result %d\nready\n", result);
  fflush(stdout);
  char buffer[64];
  while (read(STDIN_FILENO, buffer, sizeof buffer) > 0) {
  }
  return 0;
}
