// The hard places of the in-process sampler (memleak --sample-bytes 1 makes every allocation a
// sample, so the report is exact). Leaks, by the function on top of the stack:
//   thread_leak        4 threads started after the library loaded, 10 blocks of 1000 bytes each: 40000 B / 40
//   realloc_moves      malloc(100) grown by realloc to 200000 bytes (moves): 200000 B / 1
//   realloc_shrinks    malloc(5000) shrunk by realloc to 3000 bytes: 3000 B / 1
//   new_array          new char[5001]: 5001 B / 1
//   new_nothrow        new (std::nothrow) char[6001]: 6001 B / 1
//   new_aligned        new (std::align_val_t(256)) char[7001]: 7001 B / 1
//   new_object         new Widget (4008 bytes): 4008 B / 1
// and frees, all of which must not be outstanding: new/delete pairs, malloc freed by operator
// delete and operator new freed by free (one set for every name), 100000 malloc/free pairs on
// each thread, a forked child that allocates, frees and leaks 9999 bytes in child_leak (another
// process: not reported) and must exit 0. Exits 0 when every check held.
// Mismatched names on purpose: the sampler must follow a block across them.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

struct Widget {
  char payload[4008];
};

// Drops the pointer without the compiler knowing (a leak the optimizer cannot remove).
static void keep(void* pointer) { __asm__ volatile("" : : "r"(pointer) : "memory"); }

__attribute__((noinline)) static void churn() {
  for (int i = 0; i < 100000; i++) {
    void* pointer = std::malloc(16 + i % 200);
    static_cast<volatile char*>(pointer)[0] = 1;
    std::free(pointer);
  }
}

__attribute__((noinline)) void thread_leak() {
  for (int i = 0; i < 10; i++) {
    void* block = std::malloc(1000);
    std::memset(block, 1, 1000);
    keep(block);
  }
}

static void* thread_main(void*) {
  thread_leak();
  churn();
  return nullptr;
}

__attribute__((noinline)) void realloc_moves() {
  char* block = static_cast<char*>(std::malloc(100));
  void* blocker = std::malloc(100);  // the block cannot grow in place
  std::memset(block, 5, 100);
  block = static_cast<char*>(std::realloc(block, 200000));
  if (block[99] != 5) std::exit(3);
  std::free(blocker);
  keep(block);
}

__attribute__((noinline)) void realloc_shrinks() {
  char* block = static_cast<char*>(std::malloc(5000));
  block = static_cast<char*>(std::realloc(block, 3000));
  keep(block);
}

__attribute__((noinline)) void new_array() { keep(new char[5001]); }
__attribute__((noinline)) void new_nothrow() { keep(new (std::nothrow) char[6001]); }
__attribute__((noinline)) void new_aligned() {
  char* block = new (std::align_val_t(256)) char[7001];
  if (reinterpret_cast<uintptr_t>(block) % 256) std::exit(4);
  keep(block);
}
__attribute__((noinline)) void new_object() { keep(new Widget); }

__attribute__((noinline)) void freed_pairs() {
  delete new Widget;
  delete[] new char[3333];
  operator delete(std::malloc(4444));
  std::free(operator new(5555));
  ::operator delete[](new (std::align_val_t(64)) char[6666], std::align_val_t(64));
}

__attribute__((noinline)) void child_leak() { keep(std::malloc(9999)); }

int main() {
  pthread_t threads[4];
  for (auto& thread : threads)
    if (pthread_create(&thread, nullptr, thread_main, nullptr) != 0) return 2;
  for (auto& thread : threads) pthread_join(thread, nullptr);
  realloc_moves();
  realloc_shrinks();
  new_array();
  new_nothrow();
  new_aligned();
  new_object();
  freed_pairs();
  churn();
  pid_t child = fork();
  if (child == 0) {
    churn();
    child_leak();
    freed_pairs();
    _exit(0);
  }
  int status = 0;
  if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return 5;
  std::printf("sampled_hard ok\n");
  return 0;
}
