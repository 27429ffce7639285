/* Holds kernel percpu memory on purpose, for memleak --percpu: N BPF per-CPU array maps (default
 * 64) of 16 entries of 64 bytes each; every entry is one percpu allocation (alloc_percpu in
 * array_map_alloc). Prints "holding N maps" on stderr, then waits for a line on stdin, closes
 * them, prints "released", and waits for another line before exiting. Needs CAP_BPF (root). */
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int create_percpu_array(void)
{
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.map_type = BPF_MAP_TYPE_PERCPU_ARRAY;
	attr.key_size = 4;
	attr.value_size = 64;
	attr.max_entries = 16;
	return (int)syscall(__NR_bpf, BPF_MAP_CREATE, &attr, sizeof(attr));
}

int main(int argc, char **argv)
{
	int count = argc > 1 ? atoi(argv[1]) : 64;
	int *maps = calloc(count, sizeof(*maps));
	for (int i = 0; i < count; i++) {
		maps[i] = create_percpu_array();
		if (maps[i] < 0) {
			perror("bpf(BPF_MAP_CREATE)");
			return 1;
		}
	}
	fprintf(stderr, "holding %d maps\n", count);
	char line[64];
	if (!fgets(line, sizeof(line), stdin))
		return 0;
	for (int i = 0; i < count; i++)
		close(maps[i]);
	fprintf(stderr, "released\n");
	if (!fgets(line, sizeof(line), stdin))
		return 0;
	return 0;
}
