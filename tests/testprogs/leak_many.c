/* 10000 leaked blocks of 100 bytes from one function, for -s (sampling): every Nth is tracked.
 * Prints nothing. */
#include <stdlib.h>

#define BLOCKS 10000

static void *volatile last;

void leak_many_blocks(void)
{
	for (int i = 0; i < BLOCKS; i++)
		last = malloc(100);
}

int main(void)
{
	leak_many_blocks();
	return 0;
}
