/* Takes a known number of page faults for the faults, ffaults and hfaults tests.
 *
 *   fault_touch anon PAGES            write one byte into each of PAGES fresh anonymous pages
 *   fault_touch file PATH PAGES       write one byte into each of the first PAGES pages of the
 *                                     existing file PATH, mapped MAP_SHARED
 *   fault_touch memfd NAME PAGES      write one byte into each of PAGES pages of a fresh memfd
 *                                     named NAME, mapped MAP_SHARED
 *   fault_touch hugetlb HUGEPAGES     write one byte into each of HUGEPAGES fresh MAP_HUGETLB pages
 *   fault_touch read PAGES            read() PAGES pages from /dev/zero into a fresh anonymous
 *                                     buffer: the kernel takes the faults (copy_to_user)
 *
 * It prints "pid N" and waits for a line on stdin before touching (so the tracer attaches first),
 * prints "touched N" and waits for another line before exiting (so the tracer can read the
 * process's mappings). Every fault is taken in touch_pages_from_here().
 *
 * One fault per page: anonymous memory is fresh (no MAP_POPULATE) and madvise(MADV_NOHUGEPAGE)
 * keeps transparent huge pages from serving 512 pages with one fault. File pages are written,
 * not read: a read fault maps up to 16 neighbouring cached pages at once (fault-around), while a
 * write fault to a shared mapping maps exactly one page. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MAP_HUGETLB
#define MAP_HUGETLB 0x40000
#endif

static void wait_for_line(void)
{
	char line[64];
	if (!fgets(line, sizeof(line), stdin))
		exit(0);
}

/* noinline and a volatile store so the faulting instruction is in this function at any -O. */
__attribute__((noinline)) void touch_pages_from_here(volatile char *memory, size_t pages, size_t page_size)
{
	for (size_t i = 0; i < pages; i++)
		memory[i * page_size] = 1;
}

__attribute__((noinline)) void read_pages_from_here(int fd, char *memory, size_t pages, size_t page_size)
{
	for (size_t i = 0; i < pages; i++) {
		if (read(fd, memory + i * page_size, page_size) != (ssize_t)page_size) {
			perror("read");
			exit(6);
		}
	}
}

static size_t parse_count(const char *text)
{
	char *end;
	unsigned long long value = strtoull(text, &end, 10);
	if (*end || value == 0) {
		fprintf(stderr, "not a positive count: %s\n", text);
		exit(2);
	}
	return value;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: fault_touch anon PAGES | file PATH PAGES | memfd NAME PAGES | hugetlb HUGEPAGES | "
				"read PAGES\n");
		return 2;
	}
	const char *mode = argv[1];
	size_t page_size = (size_t)sysconf(_SC_PAGESIZE);
	size_t pages;
	char *memory;
	int fd = -1;

	if (strcmp(mode, "anon") == 0 || strcmp(mode, "read") == 0) {
		pages = parse_count(argv[2]);
		memory = mmap(NULL, pages * page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (memory == MAP_FAILED) {
			perror("mmap");
			return 4;
		}
		madvise(memory, pages * page_size, MADV_NOHUGEPAGE);
		if (strcmp(mode, "read") == 0) {
			fd = open("/dev/zero", O_RDONLY);
			if (fd < 0) {
				perror("/dev/zero");
				return 3;
			}
		}
	} else if ((strcmp(mode, "file") == 0 || strcmp(mode, "memfd") == 0) && argc >= 4) {
		pages = parse_count(argv[3]);
		if (strcmp(mode, "file") == 0)
			fd = open(argv[2], O_RDWR);
		else
			fd = memfd_create(argv[2], 0);
		if (fd < 0 || (strcmp(mode, "memfd") == 0 && ftruncate(fd, pages * page_size) != 0)) {
			perror(argv[2]);
			return 3;
		}
		memory = mmap(NULL, pages * page_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (memory == MAP_FAILED) {
			perror("mmap");
			return 4;
		}
	} else if (strcmp(mode, "hugetlb") == 0) {
		pages = parse_count(argv[2]);
		page_size = 2 << 20;
		memory = mmap(NULL, pages * page_size, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		if (memory == MAP_FAILED) {
			perror("mmap(MAP_HUGETLB)");
			return 5;
		}
	} else {
		fprintf(stderr, "unknown mode %s\n", mode);
		return 2;
	}

	printf("pid %d\n", getpid());
	fflush(stdout);
	wait_for_line();
	if (strcmp(mode, "read") == 0)
		read_pages_from_here(fd, memory, pages, page_size);
	else if (getenv("FAULT_TOUCH_SPREAD_MS")) {
		long spread_ms = atol(getenv("FAULT_TOUCH_SPREAD_MS"));
		size_t chunks = (pages + 63) / 64;
		long pause_ns = chunks ? spread_ms * 1000000L / (long)chunks : 0;
		for (size_t done = 0; done < pages; done += 64) {
			touch_pages_from_here(memory + done * page_size, pages - done < 64 ? pages - done : 64, page_size);
			struct timespec pause = {pause_ns / 1000000000L, pause_ns % 1000000000L};
			nanosleep(&pause, NULL);
		}
	} else
		touch_pages_from_here(memory, pages, page_size);
	printf("touched %zu\n", pages);
	fflush(stdout);
	wait_for_line();
	return 0;
}
