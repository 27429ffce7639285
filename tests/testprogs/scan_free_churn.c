// scan_free_churn: THREADS threads (argv[1], default 4) allocate and free without pause and never
// leak: each keeps up to 64 blocks of 16..4111 bytes in its own slots (a global array), in rounds:
// free every block and clear its slot, then allocate all 64 again.
//   prints "READY" once every thread runs; stdin "count" -> "count <iterations so far>".
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 64
#define SLOTS 64

static void *slots[MAX_THREADS][SLOTS];
static atomic_long iterations;
static atomic_int running;

static void *churn(void *arg)
{
	void **mine = slots[(long)arg];
	unsigned seed = (unsigned)(long)arg * 2654435761u + 1;
	atomic_fetch_add(&running, 1);
	for (;;) {
		/* Rounds: free every block (clearing its slot), then allocate every slot again; a block
		 * freed is referenced by nothing, so a scan that lists it as outstanding calls it leaked. */
		for (unsigned slot = 0; slot < SLOTS; slot++) {
			free(mine[slot]);
			mine[slot] = NULL;
			for (volatile int spin = 0; spin < 200; spin++)
				;
			atomic_fetch_add_explicit(&iterations, 1, memory_order_relaxed);
		}
		for (unsigned slot = 0; slot < SLOTS; slot++) {
			size_t size = 16 + rand_r(&seed) % 4096;
			void *block = malloc(size);
			memset(block, 0x5a, size < 64 ? size : 64);
			mine[slot] = block;
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long threads = argc > 1 ? atol(argv[1]) : 4;
	if (threads < 1 || threads > MAX_THREADS)
		threads = 4;
	for (long i = 0; i < threads; i++) {
		pthread_t thread;
		pthread_create(&thread, NULL, churn, (void *)i);
	}
	while (atomic_load(&running) < threads)
		;
	printf("READY\n");
	fflush(stdout);
	char line[64];
	while (fgets(line, sizeof(line), stdin)) {
		if (strncmp(line, "count", 5) == 0) {
			printf("count %ld\n", atomic_load(&iterations));
			fflush(stdout);
		}
	}
	return 0;
}
