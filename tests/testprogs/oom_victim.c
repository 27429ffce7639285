/* Joins the cgroup whose procs file is argv[1] (if given), then touches argv[2] MiB of anonymous
 * memory one page at a time: inside a small memory cgroup this ends in an OOM kill of this process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: oom_victim CGROUP_PROCS_FILE|- MIB\n");
		return 2;
	}
	if (strcmp(argv[1], "-") != 0) {
		FILE *procs = fopen(argv[1], "w");
		if (!procs || fprintf(procs, "%d\n", getpid()) < 0 || fclose(procs) != 0) {
			perror(argv[1]);
			return 3;
		}
	}
	size_t bytes = strtoull(argv[2], NULL, 10) << 20;
	char *memory = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (memory == MAP_FAILED) {
		perror("mmap");
		return 4;
	}
	for (size_t offset = 0; offset < bytes; offset += 4096)
		memory[offset] = 1;
	printf("touched %zu MiB without being killed\n", bytes >> 20);
	return 0;
}
