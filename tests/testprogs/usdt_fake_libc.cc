// A stand-in for a glibc built with --enable-systemtap (Debian's is not): the memory_* probes of
// provider "libc" with glibc's argument layouts (malloc/malloc.c and malloc/arena.c LIBC_PROBE
// calls), each behind a function the test program calls with known values. Built as the shared
// library libusdt_fake_libc.so by tests/testprogs/usdt.cmake.
#include <stddef.h>
#include <sys/sdt.h>

extern "C" {

// sysmalloc: LIBC_PROBE (memory_sbrk_more, 2, brk, size)
void fake_memory_sbrk_more(void* brk, size_t size) { STAP_PROBE2(libc, memory_sbrk_more, brk, size); }

// systrim: LIBC_PROBE (memory_sbrk_less, 2, new_brk, extra)
void fake_memory_sbrk_less(void* new_brk, size_t extra) {
  STAP_PROBE2(libc, memory_sbrk_less, new_brk, extra);
}

// new_heap: LIBC_PROBE (memory_heap_new, 2, h, h->size)
void fake_memory_heap_new(void* heap, size_t size) { STAP_PROBE2(libc, memory_heap_new, heap, size); }

// grow_heap: LIBC_PROBE (memory_heap_more, 2, h, h->size)
void fake_memory_heap_more(void* heap, size_t new_size) {
  STAP_PROBE2(libc, memory_heap_more, heap, new_size);
}

// _int_new_arena: LIBC_PROBE (memory_arena_new, 2, a, size)
void fake_memory_arena_new(void* arena, size_t size) { STAP_PROBE2(libc, memory_arena_new, arena, size); }

// __libc_mallopt: LIBC_PROBE (memory_mallopt, 2, param_number, value)
void fake_memory_mallopt(int param_number, int value) {
  STAP_PROBE2(libc, memory_mallopt, param_number, value);
}

// __libc_malloc: LIBC_PROBE (memory_malloc_retry, 1, bytes)
void fake_memory_malloc_retry(size_t bytes) { STAP_PROBE1(libc, memory_malloc_retry, bytes); }

// arena_get_retry: LIBC_PROBE (memory_arena_retry, 2, bytes, ar_ptr)
void fake_memory_arena_retry(size_t bytes, void* arena) {
  STAP_PROBE2(libc, memory_arena_retry, bytes, arena);
}
}
