/* Takes page faults at a steady rate for bench/serve_bench.sh: maps a fresh anonymous region,
 * writes one byte per page (one fault each: MADV_NOHUGEPAGE), unmaps it, and paces itself to
 * RATE faults per second for SECONDS. Prints the faults taken and the rate achieved.
 *   fault_rate RATE SECONDS */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: fault_rate RATE SECONDS\n");
		return 2;
	}
	double rate = atof(argv[1]), seconds = atof(argv[2]);
	const size_t batch = 1000; /* pages per mapping */
	long page = sysconf(_SC_PAGESIZE);
	double start = now();
	unsigned long long faults = 0;
	while (now() - start < seconds) {
		char *memory = mmap(NULL, batch * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (memory == MAP_FAILED)
			return 1;
		madvise(memory, batch * page, MADV_NOHUGEPAGE);
		for (size_t i = 0; i < batch; i++)
			memory[i * page] = 1;
		munmap(memory, batch * page);
		faults += batch;
		double ahead = faults / rate - (now() - start);
		if (ahead > 0) {
			struct timespec pause = {(time_t)ahead, (long)((ahead - (time_t)ahead) * 1e9)};
			nanosleep(&pause, NULL);
		}
	}
	double elapsed = now() - start;
	printf("%llu faults in %.2f s: %.0f faults/s\n", faults, elapsed, faults / elapsed);
	return 0;
}
