/* malloc_free: the allocator-heavy workload of bench/memleak_bench.sh. Times PAIRS malloc/free
 * pairs of small mixed sizes (16-271 bytes, the tcache fast path) and prints the cost per pair.
 *
 *   malloc_free [PAIRS [--now]]
 *
 * Without --now it prints "ready PID" and waits for SIGUSR1 before the timed loop, so that a tracer
 * can attach to it by PID first (memscope memleak -p, bpftrace -p, memleak-bpfcc -p). Prints
 * "pairs N ns_per_pair X" when done. Built with frame pointers, like the programs people trace
 * (malloc_free), and without, the way Debian builds code (malloc_free_nofp, bench/unwind_bench.sh). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* CPU time of the process (user and system, uprobe handling included): unlike the wall clock,
 * not stretched by other processes competing for the CPU. */
static double cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

__attribute__((noinline)) void allocate_and_free(long pairs)
{
	for (long i = 0; i < pairs; i++) {
		char *block = malloc(16 + (i & 255));
		*(volatile char *)block = (char)i;
		free(block);
	}
}

int main(int argc, char **argv)
{
	long pairs = argc > 1 ? atol(argv[1]) : 200000;
	int wait_for_signal = !(argc > 2 && strcmp(argv[2], "--now") == 0);
	if (wait_for_signal) {
		sigset_t start;
		int signal_number;
		sigemptyset(&start);
		sigaddset(&start, SIGUSR1);
		sigprocmask(SIG_BLOCK, &start, NULL);
		printf("ready %d\n", getpid());
		fflush(stdout);
		sigwait(&start, &signal_number);
	}
	allocate_and_free(1000); /* warm the allocator's caches */
	double begin = now_ns(), cpu_begin = cpu_ns();
	allocate_and_free(pairs);
	double elapsed = now_ns() - begin, cpu = cpu_ns() - cpu_begin;
	printf("pairs %ld ns_per_pair %.1f cpu_ns_per_pair %.1f\n", pairs, elapsed / pairs, cpu / pairs);
	return 0;
}
