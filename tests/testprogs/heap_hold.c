/* Holds heap memory for memscope serve's heap profile test: prints "ready" and waits for a line on
 * stdin, then makes COUNT malloc(SIZE) calls in hold_blocks() (all kept), prints "holding", and
 * waits for another line before exiting.
 *   heap_hold COUNT SIZE */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void hold_blocks(void **blocks, int count, size_t size)
{
	for (int i = 0; i < count; i++) {
		blocks[i] = malloc(size);
		memset(blocks[i], 1, size);
	}
}

int main(int argc, char **argv)
{
	int count = argc > 1 ? atoi(argv[1]) : 100;
	size_t size = argc > 2 ? strtoul(argv[2], NULL, 10) : 4096;
	void **blocks = calloc(count, sizeof(*blocks));
	char line[64];
	printf("ready\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	hold_blocks(blocks, count, size);
	printf("holding\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	return blocks[0] == NULL;
}
