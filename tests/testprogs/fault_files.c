/* Faults on files that come and go: prints "ready", waits for a line on stdin, then for i = 1..COUNT
 * (argv[2]) creates DIR/file_i (argv[1]) of i pages, maps it MAP_SHARED, writes one byte into each
 * page (i write faults), unmaps, closes and unlinks it and waits 30 ms (the kernel frees the inode
 * after an RCU grace period, and the next file may get its memory). Prints "done" and waits for
 * another line before exiting. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	int count = atoi(argv[2]);
	long page = sysconf(_SC_PAGESIZE);
	char line[64];
	printf("ready\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 0;
	for (int i = 1; i <= count; i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/file_%d", argv[1], i);
		int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || ftruncate(fd, i * page) != 0) {
			perror(path);
			return 3;
		}
		volatile char *memory = mmap(NULL, (size_t)i * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (memory == MAP_FAILED) {
			perror("mmap");
			return 4;
		}
		for (int p = 0; p < i; p++)
			memory[p * page] = 1;
		munmap((void *)memory, (size_t)i * page);
		close(fd);
		unlink(path);
		usleep(30000);
	}
	printf("done\n");
	fflush(stdout);
	fgets(line, sizeof(line), stdin);
	return 0;
}
