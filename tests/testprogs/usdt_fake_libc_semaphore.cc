// The probe of the fake libc that has a semaphore (an is-enabled counter the kernel raises while a
// uprobe with a reference counter is attached): the double-free check, fired only while traced so
// the test proves that mallocsnoop enables semaphores. Part of libusdt_fake_libc.so.
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

extern "C" {

unsigned short libc_memory_tcache_double_free_semaphore __attribute__((unused))
__attribute__((section(".probes")));

// _int_free: LIBC_PROBE (memory_tcache_double_free, 2, e, tc_idx); returns whether it fired.
__attribute__((noinline)) int fake_memory_tcache_double_free(void* entry, int tcache_index) {
  if (!libc_memory_tcache_double_free_semaphore) return 0;
  STAP_PROBE2(libc, memory_tcache_double_free, entry, tcache_index);
  return 1;
}
}
