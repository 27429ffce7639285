/* brk_grow COUNT BYTES: moves the program break up COUNT times by BYTES each, from
 * grow_heap_from_here(), then lingers briefly and exits.
 *
 * Stacks are walked with frame pointers. glibc's brk() wrapper has no frame of its own, so the
 * function that calls it directly is missing from a captured stack (the frame-pointer chain starts
 * at that function's caller); __sbrk() is worse, it keeps the old break in rbp and no frame after
 * brk() can be found. So grow_heap_from_here() calls brk() through move_break_up(), and is the first
 * frame after brk() in the stack. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((noinline)) static int move_break_up(long bytes)
{
	char *current = sbrk(0); /* cached by glibc after the first call: no syscall */
	return brk(current + bytes);
}

__attribute__((noinline)) void grow_heap_from_here(long bytes)
{
	if (move_break_up(bytes) != 0) {
		perror("brk");
		exit(1);
	}
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s COUNT BYTES\n", argv[0]);
		return 2;
	}
	int count = atoi(argv[1]);
	long bytes = atol(argv[2]);
	setvbuf(stdout, NULL, _IONBF, 0);
	/* The first sbrk() may ask the kernel for the break (brk(0)): do it outside the counted stack. */
	char *start = sbrk(0);
	for (int i = 0; i < count; i++)
		grow_heap_from_here(bytes);
	printf("grew %ld bytes from %p to %p\n", (long)((char *)sbrk(0) - start), (void *)start, sbrk(0));
	/* Long enough for memscope to read /proc/PID/maps after the first brk() it saw. */
	usleep(300 * 1000);
	return 0;
}
