// scan_cache: a cache that only grows and is never freed, but stays referenced: every 100 ms
// cache_add() allocates a 256-byte node and links it at the head of a global list. Long-lived
// memory, growing, and not a leak. Runs for `argv[1]` seconds (default 10), then exits.
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct entry {
  struct entry* next;
  char value[248];
};

struct entry* cache;  // the only root: every node is reachable through it

static void __attribute__((noinline)) cache_add(int key) {
  struct entry* added = malloc(sizeof *added);
  memset(added->value, key & 0xff, sizeof added->value);
  added->next = cache;
  cache = added;
}

int main(int argc, char** argv) {
  int seconds = argc > 1 ? atoi(argv[1]) : 10;
  struct timespec tick = {0, 100 * 1000 * 1000};
  for (int i = 0; i < seconds * 10; ++i) {
    cache_add(i);
    nanosleep(&tick, NULL);
  }
  return 0;
}
