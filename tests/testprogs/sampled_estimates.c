/* Known totals for memleak --sample-bytes estimates: leak_blocks() leaks 64 MiB in 16384 blocks of
 * 4 KiB (pointers dropped, contents without pointers), keep_blocks() keeps 32 MiB in 8192 blocks of
 * 4 KiB reachable through a heap array that a global points to, and churn() allocates and frees
 * 1 GiB in blocks of 64..8191 bytes (65536 bytes per step, 16384 steps) keeping at most 16 of them
 * alive at a time. The three are interleaved so that every thread-local countdown sees all three.
 * Exits 0 after checking the kept blocks' contents. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 4096
#define LEAKED_BLOCKS 16384
#define KEPT_BLOCKS 8192
#define CHURN_STEP (64 * 1024)

static unsigned char **kept;

__attribute__((noinline)) void leak_blocks(int index)
{
	unsigned char *block = malloc(BLOCK);
	memset(block, (unsigned char)index, BLOCK);
	__asm__ volatile("" : : "r"(block) : "memory");
}

__attribute__((noinline)) void keep_blocks(int index)
{
	kept[index] = malloc(BLOCK);
	memset(kept[index], (unsigned char)(index * 7), BLOCK);
}

__attribute__((noinline)) void churn(uint64_t step)
{
	static void *window[16];
	uint64_t done = 0;
	for (uint64_t i = 0; done < CHURN_STEP; i++) {
		size_t size = 64 + (size_t)((step * 131 + i * 37) % 8128);
		if (done + size > CHURN_STEP)
			size = CHURN_STEP - done;
		size_t slot = (step + i) % 16;
		free(window[slot]);
		window[slot] = malloc(size);
		((volatile char *)window[slot])[0] = 1;
		done += size;
	}
	if (step == LEAKED_BLOCKS - 1)
		for (int slot = 0; slot < 16; slot++) {
			free(window[slot]);
			window[slot] = NULL;
		}
}

int main(void)
{
	kept = malloc(KEPT_BLOCKS * sizeof(*kept));
	for (int i = 0; i < LEAKED_BLOCKS; i++) {
		leak_blocks(i);
		if (i % 2 == 0)
			keep_blocks(i / 2);
		churn((uint64_t)i);
	}
	for (int i = 0; i < KEPT_BLOCKS; i++)
		if (kept[i][BLOCK - 1] != (unsigned char)(i * 7)) {
			fprintf(stderr, "kept block %d corrupted\n", i);
			return 1;
		}
	return 0;
}
