/* The workloads of bench/event_overhead.sh, each timed inside the program:
 *
 *   event_loop faults N   write one byte into each of N fresh anonymous pages (one fault each)
 *   event_loop mmap N     N times mmap + munmap of one anonymous page
 *   event_loop usdt N     N hits of the USDT probe libc:memory_sbrk_more (glibc's name and
 *                         argument layout, so mallocsnoop decodes it as well as usdt)
 *
 * Prints "MODE N ns_per_op X". */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sdt.h>
#include <time.h>

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

__attribute__((noinline)) static void touch_pages(char *pages, long count)
{
	for (long i = 0; i < count; i++)
		pages[i * 4096] = 1;
}

__attribute__((noinline)) static void map_and_unmap(long count)
{
	for (long i = 0; i < count; i++) {
		void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (page == MAP_FAILED) {
			perror("mmap");
			exit(1);
		}
		munmap(page, 4096);
	}
}

__attribute__((noinline)) static void fire_probe(long count)
{
	for (long i = 0; i < count; i++) {
		void *brk = (void *)(0x555500000000UL + i * 4096);
		size_t size = 135168;
		STAP_PROBE2(libc, memory_sbrk_more, brk, size);
	}
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: event_loop faults|mmap|usdt N\n");
		return 2;
	}
	long count = atol(argv[2]);
	double start, end;
	if (count <= 0) {
		fprintf(stderr, "event_loop: N must be positive\n");
		return 2;
	}
	if (strcmp(argv[1], "faults") == 0) {
		char *pages = mmap(NULL, count * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (pages == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		madvise(pages, count * 4096, MADV_NOHUGEPAGE);
		start = now_ns();
		touch_pages(pages, count);
		end = now_ns();
	} else if (strcmp(argv[1], "mmap") == 0) {
		start = now_ns();
		map_and_unmap(count);
		end = now_ns();
	} else if (strcmp(argv[1], "usdt") == 0) {
		start = now_ns();
		fire_probe(count);
		end = now_ns();
	} else {
		fprintf(stderr, "event_loop: unknown mode %s\n", argv[1]);
		return 2;
	}
	printf("%s %ld ns_per_op %.1f\n", argv[1], count, (end - start) / count);
	return 0;
}
