/* One thread moves mappings with mremap() without pause (mmap 4 pages, mremap to 8 pages
 * MREMAP_MAYMOVE, munmap), while the main thread maps KEPT (argv[1], default 3000) blocks of 4
 * pages from keep_mapping() and keeps them all: the kernel hands the address a mremap just vacated
 * to the next mmap, often the main thread's. Exits when the main thread is done; outstanding at
 * exit: exactly KEPT mappings of 16384 bytes from keep_mapping(). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

static atomic_int done;

static void *mover(void *arg)
{
	while (!atomic_load(&done)) {
		char *p = mmap(NULL, 16384, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			continue;
		p[0] = 1;
		char *q = mremap(p, 16384, 32768, MREMAP_MAYMOVE);
		munmap(q == MAP_FAILED ? p : q, q == MAP_FAILED ? 16384 : 32768);
	}
	return arg;
}

__attribute__((noinline)) void *keep_mapping(void)
{
	return mmap(NULL, 16384, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

int main(int argc, char **argv)
{
	int kept = argc > 1 ? atoi(argv[1]) : 3000;
	void **blocks = calloc((size_t)kept, sizeof(void *));
	pthread_t thread;
	pthread_create(&thread, NULL, mover, NULL);
	int mapped = 0;
	for (int i = 0; i < kept; i++) {
		blocks[i] = keep_mapping();
		if (blocks[i] != MAP_FAILED)
			mapped++;
	}
	atomic_store(&done, 1);
	pthread_join(thread, NULL);
	printf("kept %d mappings\n", mapped);
	return 0;
}
