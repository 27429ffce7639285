/* One leak through each allocator function memleak probes, each with its own size, so that the test
 * can check the exact outstanding bytes per function; allocations that are freed again (also on
 * another thread) and allocations that fail, which must not be outstanding. Prints nothing: it runs
 * under `memscope memleak -c --json`, whose stdout it shares.
 *
 * Expected outstanding at exit (function on top of the stack: bytes, 1 allocation each):
 *   leak_via_malloc 11001, leak_via_calloc 11011, leak_via_realloc 11021, leak_via_reallocarray 11031,
 *   leak_via_posix_memalign 11041, leak_via_aligned_alloc 11072, leak_via_memalign 11081,
 *   leak_via_valloc 11091, leak_via_pvalloc 11101, leak_via_mmap 12288, leak_via_mremap 20480,
 *   leak_on_thread 31013, leak_despite_failed_realloc 11121, leak_despite_failed_mremap 28672
 *   (a realloc and an mremap that fail leave their block where it was).
 * Not outstanding: sizes 21001-21111 (allocated then freed), 31001 (freed by another thread), and
 * the failed calls in fail_to_allocate(). */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Keeps the leaked pointers out of reach once the functions return: the stores below are
 * overwritten, so nothing refers to the blocks at exit. */
static void *volatile last;

void leak_via_malloc(void) { last = malloc(11001); }
void leak_via_calloc(void) { last = calloc(11, 1001); }
void leak_via_realloc(void)
{
	void *small = malloc(64); /* replaced by realloc: not outstanding */
	last = realloc(small, 11021);
}
void leak_via_reallocarray(void)
{
	void *small = malloc(32);
	last = reallocarray(small, 3, 3677);
}
void leak_via_posix_memalign(void)
{
	void *block = NULL;
	if (posix_memalign(&block, 64, 11041) == 0)
		last = block;
}
void leak_via_aligned_alloc(void) { last = aligned_alloc(64, 11072); }
void leak_via_memalign(void) { last = memalign(128, 11081); }
void leak_via_valloc(void) { last = valloc(11091); }
void leak_via_pvalloc(void) { last = pvalloc(11101); }
void leak_via_mmap(void)
{
	last = mmap(NULL, 12288, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}
void leak_via_mremap(void)
{
	void *first = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	last = mremap(first, 4096, 20480, MREMAP_MAYMOVE);
}

void allocate_and_free(void)
{
	void *block;
	free(malloc(21001));
	free(calloc(1, 21011));
	free(realloc(NULL, 21021));
	free(reallocarray(NULL, 1, 21031));
	if (posix_memalign(&block, 64, 21041) == 0)
		free(block);
	free(aligned_alloc(64, 21056));
	free(memalign(64, 21081));
	free(valloc(21091));
	free(pvalloc(21101));
	block = malloc(21111);
	(void)!realloc(block, 0); /* frees the block */
	block = mmap(NULL, 24576, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(block, 24576);
}

void fail_to_allocate(void)
{
	void *block;
	volatile size_t huge = (size_t)1 << 40; /* volatile: the compiler must not see the overflow */
	last = malloc((size_t)1 << 62);
	last = calloc(huge, huge); /* overflows */
	last = realloc(NULL, (size_t)1 << 62);
	if (posix_memalign(&block, 3, 41001) == 0) /* invalid alignment: EINVAL */
		last = block;
	last = mmap(NULL, 41011, PROT_READ, MAP_PRIVATE, -1, 0); /* no file: MAP_FAILED */
}

void leak_despite_failed_realloc(void)
{
	void *block = malloc(11121);
	if (realloc(block, (size_t)1 << 62) == NULL) /* ENOMEM: block is still allocated */
		last = block;
}

void leak_despite_failed_mremap(void)
{
	void *block = mmap(NULL, 28672, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	/* MREMAP_FIXED without MREMAP_MAYMOVE: EINVAL, the mapping stays as it is. */
	if (mremap(block, 28672, 32768, MREMAP_FIXED, (char *)block + (1 << 20)) == MAP_FAILED)
		last = block;
}

#define CROSS_THREAD_BLOCKS 8
static void *handed_over[CROSS_THREAD_BLOCKS];

void *allocate_for_other_thread(void *unused)
{
	(void)unused;
	for (int i = 0; i < CROSS_THREAD_BLOCKS; i++)
		handed_over[i] = malloc(31001);
	return NULL;
}

void *free_from_other_thread(void *unused)
{
	(void)unused;
	for (int i = 0; i < CROSS_THREAD_BLOCKS; i++)
		free(handed_over[i]);
	return NULL;
}

void *leak_on_thread(void *unused)
{
	(void)unused;
	last = malloc(31013);
	return NULL;
}

static void run_thread(void *(*body)(void *))
{
	pthread_t thread;
	pthread_create(&thread, NULL, body, NULL);
	pthread_join(thread, NULL);
}

int main(void)
{
	leak_via_malloc();
	leak_via_calloc();
	leak_via_realloc();
	leak_via_reallocarray();
	leak_via_posix_memalign();
	leak_via_aligned_alloc();
	leak_via_memalign();
	leak_via_valloc();
	leak_via_pvalloc();
	leak_via_mmap();
	leak_via_mremap();
	allocate_and_free();
	fail_to_allocate();
	leak_despite_failed_realloc();
	leak_despite_failed_mremap();
	run_thread(allocate_for_other_thread);
	run_thread(free_from_other_thread);
	run_thread(leak_on_thread);
	last = NULL;
	return 0;
}
