/* Many distinct short-lived call paths, then one leak: BATCHES batches (argv[1], default 32) of
 * 4096 paths each, every path a different chain of 17 step_left/step_right calls that mallocs and
 * frees 48 bytes at its end (so 4096 * BATCHES distinct stacks, none outstanding afterwards), a
 * pause of PAUSE_MS (argv[2], default 250) after each batch, then leak_after_churn() leaks one block
 * of 4242 bytes and the program exits. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define LEVELS 17
#define PATHS_PER_BATCH 4096

static void *volatile sink;

static void descend(int level, unsigned path);

__attribute__((noinline)) static void step_left(int level, unsigned path)
{
	descend(level + 1, path);
	__asm__ volatile("" ::: "memory"); /* keeps the call from becoming a tail call */
}

__attribute__((noinline)) static void step_right(int level, unsigned path)
{
	descend(level + 1, path);
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void descend(int level, unsigned path)
{
	if (level == LEVELS) {
		sink = malloc(48);
		free(sink);
		return;
	}
	if (path & (1u << level))
		step_right(level, path);
	else
		step_left(level, path);
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void leak_after_churn(void)
{
	sink = malloc(4242);
}

int main(int argc, char **argv)
{
	unsigned batches = argc > 1 ? (unsigned)atoi(argv[1]) : 32;
	long pause_ms = argc > 2 ? atol(argv[2]) : 250;
	if (batches > (1u << (LEVELS - 12)))
		batches = 1u << (LEVELS - 12);
	for (unsigned batch = 0; batch < batches; batch++) {
		for (unsigned i = 0; i < PATHS_PER_BATCH; i++)
			descend(0, batch * PATHS_PER_BATCH + i);
		struct timespec pause = {pause_ms / 1000, (pause_ms % 1000) * 1000000};
		nanosleep(&pause, NULL);
	}
	leak_after_churn();
	printf("leaked 4242 bytes after %u distinct paths\n", batches * PATHS_PER_BATCH);
	return 0;
}
