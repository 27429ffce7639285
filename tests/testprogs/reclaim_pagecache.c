/* reclaim_pagecache [--wait] CGROUP_PROCS_FILE|- FILE MIB [READ_PASSES]
 *
 * Joins the memory cgroup whose procs file is given ("-" for none), then writes MIB MiB to FILE,
 * syncs it, and reads it back READ_PASSES times (default 2). With --wait it prints
 * "reclaim_pagecache: ready PID" after joining the cgroup and waits for a line on stdin, so that a
 * tracer can be started with -p PID before any reclaim happens. Inside a cgroup whose
 * limit is smaller than the file, every charge of a new page-cache page beyond the limit makes this
 * process reclaim its own cgroup's pages (memcg reclaim): clean file pages, so no swap is needed.
 * Prints "reclaim_pagecache: done PID" when finished; the file is left for the caller to remove. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (1 << 20)

static int join_cgroup(const char *procs_file)
{
	if (strcmp(procs_file, "-") == 0)
		return 0;
	FILE *procs = fopen(procs_file, "w");
	if (!procs || fprintf(procs, "%d\n", getpid()) < 0 || fclose(procs) != 0) {
		perror(procs_file);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int wait_for_go = argc > 1 && strcmp(argv[1], "--wait") == 0;
	if (wait_for_go) {
		argv++;
		argc--;
	}
	if (argc < 4) {
		fprintf(stderr, "usage: reclaim_pagecache [--wait] CGROUP_PROCS_FILE|- FILE MIB [READ_PASSES]\n");
		return 2;
	}
	if (join_cgroup(argv[1]) != 0)
		return 3;
	if (wait_for_go) {
		char line[16];
		printf("reclaim_pagecache: ready %d\n", getpid());
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			return 9;
	}
	const char *path = argv[2];
	long mib = strtol(argv[3], NULL, 10);
	int passes = argc > 4 ? atoi(argv[4]) : 2;
	static char chunk[CHUNK];
	memset(chunk, 'r', sizeof(chunk));

	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		perror(path);
		return 4;
	}
	for (long i = 0; i < mib; i++) {
		if (write(fd, chunk, CHUNK) != CHUNK) {
			perror("write");
			return 5;
		}
	}
	if (fsync(fd) != 0) {
		perror("fsync");
		return 6;
	}
	for (int pass = 0; pass < passes; pass++) {
		if (lseek(fd, 0, SEEK_SET) != 0) {
			perror("lseek");
			return 7;
		}
		ssize_t got;
		while ((got = read(fd, chunk, CHUNK)) > 0)
			;
		if (got < 0) {
			perror("read");
			return 8;
		}
	}
	close(fd);
	printf("reclaim_pagecache: done %d\n", getpid());
	return 0;
}
