/* Fragments free memory for the compaction tests: `compact_fragment [KEEP_MIB [MAX_MIB]]` maps all
 * of MemAvailable but KEEP_MIB (default 64), at most MAX_MIB (default: no limit), touches every page, then gives every other page back (MADV_DONTNEED) so that the
 * freed memory is in 4 KiB holes between pages it keeps. Prints "fragmented N MiB" and holds the
 * pages until stdin closes or sends a line; a huge page allocation meanwhile has to compact. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static long meminfo_kib(const char *key)
{
	FILE *meminfo = fopen("/proc/meminfo", "r");
	char line[256];
	long value = -1;
	size_t length = strlen(key);
	while (meminfo && fgets(line, sizeof(line), meminfo))
		if (strncmp(line, key, length) == 0 && line[length] == ':')
			value = strtol(line + length + 1, NULL, 10);
	if (meminfo)
		fclose(meminfo);
	return value;
}

int main(int argc, char **argv)
{
	long keep_mib = argc > 1 ? strtol(argv[1], NULL, 10) : 64;
	long available_mib = meminfo_kib("MemAvailable") / 1024;
	if (available_mib <= keep_mib + 16) {
		fprintf(stderr, "only %ld MiB available\n", available_mib);
		return 2;
	}
	long max_mib = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
	long mib = available_mib - keep_mib;
	if (max_mib > 0 && mib > max_mib)
		mib = max_mib;
	size_t size = (size_t)mib << 20;
	char *area = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	/* Base pages only: a THP would be freed (and kept) as a whole. */
	madvise(area, size, MADV_NOHUGEPAGE);
	long page = sysconf(_SC_PAGESIZE);
	for (size_t offset = 0; offset < size; offset += page)
		area[offset] = 1;
	for (size_t offset = page; offset < size; offset += 2 * page)
		madvise(area + offset, page, MADV_DONTNEED);
	printf("fragmented %zu MiB\n", size >> 20);
	fflush(stdout);
	char line[16];
	if (!fgets(line, sizeof(line), stdin))
		return 0;
	return 0;
}
