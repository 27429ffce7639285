/* unwind_sbrk COUNT BYTES: moves the program break up COUNT times by BYTES each with sbrk() from
 * grow_heap_here(), in a program built without frame pointers (-O2 -g) calling into Debian's libc,
 * whose __sbrk() keeps the old break in rbp: a frame-pointer walk from brk() cannot get past it.
 * Prints "ready" on stderr and waits for a line on stdin (go_signal.h), grows, prints "grown",
 * waits again. */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "go_signal.h"

static void *volatile last_break;

__attribute__((noinline, noclone)) void grow_heap_here(intptr_t bytes)
{
	void *old = sbrk(bytes);
	if (old == (void *)-1)
		exit(3);
	last_break = old; /* after the call: not a tail call */
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: unwind_sbrk COUNT BYTES\n");
		return 2;
	}
	int count = atoi(argv[1]);
	intptr_t bytes = atol(argv[2]);
	last_break = sbrk(0); /* may ask the kernel for the break: outside the counted stack */
	wait_for_go("ready");
	for (int i = 0; i < count; i++)
		grow_heap_here(bytes);
	wait_for_go("grown");
	return 0;
}
