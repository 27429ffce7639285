// memhog: allocate MIB MiB of anonymous memory, write every page, then read the pages back
// PASSES times and check their contents. Sized above RAM, this forces swap-out and swap-in.
//
//   memhog MIB [PASSES [READ_MIB]]   (PASSES defaults to 1; READ_MIB, default MIB, limits the read
//                                     passes to the first READ_MIB MiB, which were written first
//                                     and so are the ones swapped out: fewer, cheaper swap-ins)
//   memhog MIB hold                  (write the pages, print "holding", then wait to be killed:
//                                     the big process of a cgroup that another one pushes into OOM)
//
// Prints one line of timings; exits 1 if a page came back with the wrong contents. Without
// enough swap it is a reliable OOM-killer victim.
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t pattern(size_t page) { return 0x9e3779b97f4a7c15ULL * (page + 1); }

int main(int argc, char **argv) {
  if (argc < 2 || argc > 4) {
    fprintf(stderr, "usage: %s MIB [PASSES [READ_MIB]] | MIB hold\n", argv[0]);
    return 2;
  }
  char *end;
  unsigned long mib = strtoul(argv[1], &end, 10);
  if (*end || mib == 0) {
    fprintf(stderr, "memhog: bad size '%s'\n", argv[1]);
    return 2;
  }
  int hold = argc == 3 && strcmp(argv[2], "hold") == 0;
  unsigned long passes = argc >= 3 && !hold ? strtoul(argv[2], &end, 10) : 1;
  if (argc >= 3 && !hold && *end) {
    fprintf(stderr, "memhog: bad pass count '%s'\n", argv[2]);
    return 2;
  }
  unsigned long read_mib = argc >= 4 ? strtoul(argv[3], &end, 10) : mib;
  if ((argc >= 4 && *end) || read_mib > mib) {
    fprintf(stderr, "memhog: bad read size '%s'\n", argv[3]);
    return 2;
  }

  size_t page_size = (size_t)sysconf(_SC_PAGESIZE);
  size_t size = (size_t)mib << 20;
  size_t pages = size / page_size;
  size_t read_pages = ((size_t)read_mib << 20) / page_size;
  // MAP_NORESERVE: the default heuristic overcommit would refuse a map larger than RAM + swap,
  // and without swap that is exactly the case that should end in the OOM killer.
  unsigned char *mem =
      mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) {
    perror("memhog: mmap");
    return 1;
  }
  // Small pages only: a THP would be split on swap-out anyway, but keep the pattern simple.
  madvise(mem, size, MADV_NOHUGEPAGE);

  double t0 = now();
  for (size_t p = 0; p < pages; p++) {
    uint64_t *w = (uint64_t *)(mem + p * page_size);
    w[0] = pattern(p);
    w[page_size / sizeof(uint64_t) - 1] = ~pattern(p);
  }
  double t1 = now();
  if (hold) {
    printf("memhog: %lu MiB written in %.2f s, holding\n", mib, t1 - t0);
    fflush(stdout);
    for (;;) pause();
  }

  size_t bad = 0;
  for (unsigned long pass = 0; pass < passes; pass++) {
    for (size_t p = 0; p < read_pages; p++) {
      const uint64_t *w = (const uint64_t *)(mem + p * page_size);
      if (w[0] != pattern(p) || w[page_size / sizeof(uint64_t) - 1] != ~pattern(p)) bad++;
    }
  }
  double t2 = now();

  printf("memhog: %lu MiB (%zu pages): write %.2f s, %lu read pass(es) over %lu MiB %.2f s, "
         "bad pages %zu\n", mib, pages, t1 - t0, passes, read_mib, t2 - t1, bad);
  munmap(mem, size);
  return bad ? 1 : 0;
}
