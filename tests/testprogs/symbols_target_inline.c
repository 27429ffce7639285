// Optimised (-O2 -g, inlining left on) program for the symbolizer's inline-chain test: outer() calls the
// static inline middle(), which calls the always-inlined leaf(), so the code of all three is one
// function in the binary. Talks the protocol of symbols_target_pie.cpp:
//   record <label> <address of outer> <return address of the record() call> <line of that call>
//   ready
// and exits when stdin closes. The test finds the call lines by the "inline-test:" markers below.
#include <stdio.h>

// What leaf() and middle() do is stored here, so the compiler must keep their code.
volatile int observed;

int outer(int value);

__attribute__((noinline)) void record(const char* label, int line) {
  printf("record %s %p %p %d\n", label, (void*)&outer, __builtin_return_address(0), line);
}

static inline __attribute__((always_inline)) int leaf(int value) {
  record("leaf", __LINE__);  // inline-test: leaf records
  observed += value;
  return value * 3;
}

static inline int middle(int value) {
  int result = leaf(value + 1);  // inline-test: middle calls leaf
  observed += result;
  return result + 1;
}

__attribute__((noinline, noclone)) int outer(int value) {
  int result = middle(value);  // inline-test: outer calls middle
  record("outer", __LINE__);   // inline-test: outer records
  return result + observed;
}

int main(void) {
  printf("sum %d\n", outer(4));
  printf("ready\n");
  fflush(stdout);
  char line[256];
  while (fgets(line, sizeof line, stdin) != NULL) {
  }
  return 0;
}
