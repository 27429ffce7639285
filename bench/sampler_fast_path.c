/* sampler_fast_path: what libmemscope-sampler.so adds to each malloc/free pair, measured side by
 * side with libc's in one process.
 *
 *   sampler_fast_path LIBRARY...      (e.g. build/libmemscope-sampler.so and an older build)
 *   memscope memleak --sample-bytes N -c "sampler_fast_path --preloaded"
 *
 * --preloaded: the library memscope preloaded, traced as memscope traces it (its probes fire and
 * its samples are taken at the mean interval), against libc's own functions: the malloc loop's
 * cost of sampled heap profiling, untraced pairs and samples together. One state, as is.
 *
 * Otherwise:
 * Each library is loaded with dlopen (RTLD_LOCAL, as memleak -p injects it) and its malloc and
 * free are called through pointers, as are libc's for the baseline. Three states, each measured
 * for all of them in 50,000-pair slices that take turns, so that a slow stretch of a shared
 * machine slows every column alike (single runs of a program move by 10-25% here; these
 * differences by a few percent):
 *   untraced     no tracer: the probe's semaphore is 0
 *   one live     the semaphore set as a tracer sets it, one sampled block outstanding, the mean
 *                interval so large that nothing more is sampled: the countdown on every malloc,
 *                the filter on every free
 *   traced       the same with no sample outstanding: every free is one load
 * Prints each state's ns per pair and the difference to libc's. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_COLUMNS 8
#define ROUNDS 200
#define SLICE 50000

typedef void *(*malloc_function)(size_t);
typedef void (*free_function)(void *);

struct column {
	const char *name;
	malloc_function allocate;
	free_function release;
	unsigned short *semaphore;
	volatile uint64_t *interval;
	volatile uint64_t *live;
	double nanoseconds;
};

static double thread_cpu_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
	return now.tv_sec * 1e9 + now.tv_nsec;
}

static void *symbol(void *library, const char *path, const char *name)
{
	void *found = dlsym(library, name);
	if (!found) {
		fprintf(stderr, "sampler_fast_path: %s has no %s\n", path, name);
		exit(1);
	}
	return found;
}

/* Sizes 16-271 as in malloc_free, from a generator both sides of every slice share. */
static unsigned pair_loop(struct column *column, unsigned seed)
{
	for (int i = 0; i < SLICE; i++) {
		seed = seed * 1103515245u + 12345u;
		void *block = column->allocate(16 + (seed >> 24));
		__asm__ volatile("" : : "r"(block) : "memory");
		column->release(block);
	}
	return seed;
}

/* Prints each column's cost per pair; returns the last column's over the first's. */
static double measure(struct column *columns, int count, const char *state)
{
	unsigned seed = 1;
	for (int i = 0; i < count; i++)
		columns[i].nanoseconds = 0;
	for (int round = 0; round < ROUNDS; round++)
		for (int i = 0; i < count; i++) {
			double start = thread_cpu_ns();
			seed = pair_loop(&columns[i], seed);
			columns[i].nanoseconds += thread_cpu_ns() - start;
		}
	double base = columns[0].nanoseconds / (ROUNDS * (double)SLICE);
	printf("%s\n", state);
	for (int i = 0; i < count; i++) {
		double per_pair = columns[i].nanoseconds / (ROUNDS * (double)SLICE);
		printf("  %-50s %6.2f ns a pair  %+6.2f\n", columns[i].name, per_pair, per_pair - base);
	}
	fflush(stdout);
	return columns[count - 1].nanoseconds / columns[0].nanoseconds;
}

/* The library memscope preloaded, as the program's malloc and free, against libc's. */
static int measure_preloaded(void)
{
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	unsigned short *semaphore = dlsym(RTLD_DEFAULT, "ddheap_alloc_semaphore");
	if (!libc || !semaphore) {
		fprintf(stderr, "sampler_fast_path: --preloaded needs libc.so.6 and the sampler preloaded\n");
		return 1;
	}
	struct column columns[2] = {
		{.name = "libc", .allocate = (malloc_function)symbol(libc, "libc.so.6", "malloc"),
		 .release = (free_function)symbol(libc, "libc.so.6", "free")},
		{.name = "sampler (preloaded)", .allocate = (malloc_function)symbol(RTLD_DEFAULT, "-", "malloc"),
		 .release = (free_function)symbol(RTLD_DEFAULT, "-", "free")},
	};
	const char *interval = getenv("MEMSCOPE_SAMPLE_BYTES");
	char state[160];
	snprintf(state, sizeof(state), "preloaded, %s, mean interval %s bytes",
		 *semaphore ? "traced" : "not traced (no tracer attached)", interval ? interval : "?");
	double ratio = measure(columns, 2, state);
	printf("  ratio %.3f\n", ratio);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--preloaded") == 0)
		return measure_preloaded();
	if (argc < 2 || argc > MAX_COLUMNS) {
		fprintf(stderr, "usage: sampler_fast_path LIBRARY... (at most %d)\n", MAX_COLUMNS - 1);
		return 2;
	}
	struct column columns[MAX_COLUMNS] = {{
		.name = "libc",
		.allocate = (malloc_function)dlsym(RTLD_NEXT, "malloc"),
		.release = (free_function)dlsym(RTLD_NEXT, "free"),
	}};
	int count = 1;
	for (int i = 1; i < argc; i++, count++) {
		void *library = dlopen(argv[i], RTLD_NOW | RTLD_LOCAL);
		if (!library) {
			fprintf(stderr, "sampler_fast_path: %s\n", dlerror());
			return 1;
		}
		struct column *column = &columns[count];
		column->name = argv[i];
		column->allocate = (malloc_function)symbol(library, argv[i], "malloc");
		column->release = (free_function)symbol(library, argv[i], "free");
		column->semaphore = symbol(library, argv[i], "ddheap_alloc_semaphore");
		column->interval = symbol(library, argv[i], "memscope_sampler_interval");
		column->live = symbol(library, argv[i], "memscope_sampler_live");
		column->release(column->allocate(1)); /* the library finds the real functions */
	}

	measure(columns, count, "untraced (no tracer attached)");

	/* One sample each, kept: with the semaphore set as a tracer sets it and an interval of 1 byte,
	 * the next call is sampled (its probe is a nop without a tracer); then an interval so large
	 * that nothing more is. */
	void *kept[MAX_COLUMNS] = {0};
	for (int i = 1; i < count; i++) {
		*columns[i].semaphore = 1;
		*columns[i].interval = 1;
		for (int tries = 0; tries < 1000 && *columns[i].live == 0; tries++) {
			kept[i] = columns[i].allocate(64);
			if (*columns[i].live == 0)
				columns[i].release(kept[i]);
		}
		*columns[i].interval = 1ULL << 62;
		if (*columns[i].live == 0) {
			fprintf(stderr, "sampler_fast_path: %s took no sample\n", columns[i].name);
			return 1;
		}
	}
	measure(columns, count, "traced, one sample outstanding (every free looks at the filter)");

	for (int i = 1; i < count; i++)
		columns[i].release(kept[i]);
	measure(columns, count, "traced, nothing sampled (the countdown and the free check on every call)");
	return 0;
}
