/* Holds kernel memory on purpose, for memleak's kernel mode: N pipes (default 256), each with one
 * page of data in it. Every pipe costs a pipe_inode_info and its buffer array (kmalloc, in
 * alloc_pipe_info) and the page holding the data (page allocator, in pipe_write/anon_pipe_write).
 * Prints "holding N pipes" on stderr, then waits for a line on stdin, closes everything, prints
 * "released", and waits for another line before exiting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int count = argc > 1 ? atoi(argv[1]) : 256;
	struct rlimit limit;
	if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < (rlim_t)(2 * count + 16)) {
		limit.rlim_cur = limit.rlim_max;
		setrlimit(RLIMIT_NOFILE, &limit);
	}
	int (*pipes)[2] = calloc(count, sizeof(*pipes));
	char page[4096];
	memset(page, 'x', sizeof(page));
	for (int i = 0; i < count; i++) {
		if (pipe(pipes[i]) != 0 || write(pipes[i][1], page, sizeof(page)) != (ssize_t)sizeof(page)) {
			perror("pipe");
			return 1;
		}
	}
	fprintf(stderr, "holding %d pipes\n", count);
	char line[64];
	if (!fgets(line, sizeof(line), stdin))
		return 0;
	for (int i = 0; i < count; i++) {
		close(pipes[i][0]);
		close(pipes[i][1]);
	}
	fprintf(stderr, "released\n");
	if (!fgets(line, sizeof(line), stdin))
		return 0;
	return 0;
}
