// Exceptions through operator new under memleak: new[] of an impossible size throws std::bad_alloc
// (caught here), nothrow new of that size returns nullptr (libstdc++'s nothrow new calls the
// throwing one and catches), each ROUNDS (argv[1], default 50) times; then leak_after_throw() leaks
// one new int[100] (400 bytes) and new_in_loop() leaks ROUNDS new long (8 bytes each).
// Prints "caught N nothrow-null M" and exits 0; an unwinder that cannot cross a probe aborts it.
#include <cstdio>
#include <cstdlib>
#include <new>

static volatile size_t impossible = static_cast<size_t>(1) << 62;
static void* volatile sink;

__attribute__((noinline)) int throw_bad_alloc() {
  try {
    sink = new char[impossible];
  } catch (const std::bad_alloc&) {
    return 1;
  }
  return 0;
}

__attribute__((noinline)) int nothrow_null() { return new (std::nothrow) char[impossible] == nullptr ? 1 : 0; }

__attribute__((noinline)) void leak_after_throw() { sink = new int[100]; }

__attribute__((noinline)) void new_in_loop() { sink = new long(7); }

int main(int argc, char** argv) {
  int rounds = argc > 1 ? std::atoi(argv[1]) : 50;
  int caught = 0, null = 0;
  for (int i = 0; i < rounds; i++) {
    caught += throw_bad_alloc();
    null += nothrow_null();
    new_in_loop();
  }
  leak_after_throw();
  std::printf("caught %d nothrow-null %d\n", caught, null);
  return 0;
}
