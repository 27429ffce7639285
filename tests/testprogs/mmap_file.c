/* mmap_file DIR SIZE: known mmap() calls for the mmapsnoop tests.
 *
 * Before tracing (then prints "ready" and waits for a line on stdin):
 *   creates DIR/before.bin and DIR/after.bin of SIZE bytes each, and opens before.bin.
 * After the go line:
 *   1. mmap(SIZE, PROT_READ|PROT_WRITE, MAP_SHARED) of before.bin, opened before tracing began
 *   2. opens after.bin, mmap(SIZE - 4096, PROT_READ, MAP_PRIVATE) at file offset 4096
 *   3. mmap(3 pages, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)
 *   4. mmap(1 page, PROT_READ, MAP_PRIVATE) of fd 987, which is not open: fails with EBADF
 *   5. mremap of the anonymous mapping to 5 pages (MREMAP_MAYMOVE), then munmap of it
 * and prints one line per call: "<name> <returned address in hex>". */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static int create_file(const char *path, long size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, size) != 0) {
		perror(path);
		exit(1);
	}
	return fd;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s DIR SIZE\n", argv[0]);
		return 2;
	}
	long size = atol(argv[2]);
	long page = sysconf(_SC_PAGESIZE);
	char before_path[4096], after_path[4096];
	snprintf(before_path, sizeof(before_path), "%s/before.bin", argv[1]);
	snprintf(after_path, sizeof(after_path), "%s/after.bin", argv[1]);

	int before_fd = create_file(before_path, size);
	close(create_file(after_path, size));
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready\n");
	char line[16];
	if (!fgets(line, sizeof(line), stdin))
		return 1;

	void *shared = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, before_fd, 0);
	printf("shared_before %p\n", shared);

	int after_fd = open(after_path, O_RDONLY);
	void *private_after = mmap(NULL, size - page, PROT_READ, MAP_PRIVATE, after_fd, page);
	printf("private_after %p\n", private_after);

	void *anonymous = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	printf("anonymous %p\n", anonymous);

	void *failed = mmap(NULL, page, PROT_READ, MAP_PRIVATE, 987, 0);
	printf("failed %p\n", failed);

	void *moved = mremap(anonymous, 3 * page, 5 * page, MREMAP_MAYMOVE);
	printf("moved %p\n", moved);
	int unmapped = munmap(moved, 5 * page);
	printf("unmapped %d\n", unmapped);

	munmap(shared, size);
	munmap(private_after, size - page);
	close(before_fd);
	close(after_fd);
	return 0;
}
