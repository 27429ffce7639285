/* A burst of file mappings: opens FILE (argv[2], default its own executable), prints "ready",
 * waits for a line on stdin, then maps the first page of it COUNT (argv[1], default 5000) times as
 * fast as it can (unmapping each at once), prints "mapped COUNT" and waits for another line before
 * exiting. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int count = argc > 1 ? atoi(argv[1]) : 5000;
	const char *file = argc > 2 ? argv[2] : "/proc/self/exe";
	int fd = open(file, O_RDONLY);
	if (fd < 0) {
		perror(file);
		return 3;
	}
	char line[64];
	printf("ready\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 0;
	int mapped = 0;
	for (int i = 0; i < count; i++) {
		void *page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
		if (page == MAP_FAILED)
			continue;
		mapped++;
		munmap(page, 4096);
	}
	printf("mapped %d\n", mapped);
	fflush(stdout);
	fgets(line, sizeof(line), stdin);
	return 0;
}
