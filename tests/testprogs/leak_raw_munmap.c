/* Frees memleak cannot see: ROUNDS (argv[1], default 10) times, mmap 16 KiB, unmap it with the raw
 * system call (no libc munmap, so no probe), mmap 16 KiB again and, when the kernel gave the same
 * address back (it usually does), count it; then munmap it through libc. Prints "reused N": the
 * number of allocations recorded over a block whose free was missed. Nothing stays mapped. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 10;
	int reused = 0;
	for (int i = 0; i < rounds; i++) {
		void *first = mmap(NULL, 16384, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		syscall(SYS_munmap, first, 16384);
		void *second = mmap(NULL, 16384, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (second == first)
			reused++;
		munmap(second, 16384);
	}
	printf("reused %d\n", reused);
	return 0;
}
