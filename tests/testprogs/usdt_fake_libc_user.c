/* Loads the fake libc (argv[1]; "-" when it is linked into the executable itself) and, on each line read from stdin, fires its memory_* probes with
 * known arguments; mallocsnoop's tests trace it with -O/--lib. The double free is fired from
 * free_twice() so the test can find that frame in the reported user stack. */
#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#define SBRK_BRK ((void *)0x5555aaaa0000UL)
#define HEAP ((void *)0x7f0000000000UL)
#define ARENA ((void *)0x7f0000000020UL)
#define DOUBLE_FREED ((void *)0x5555aaab1230UL)

static void *symbol(void *library, const char *name)
{
	void *address = dlsym(library, name);
	if (!address) {
		fprintf(stderr, "missing %s\n", name);
		exit(2);
	}
	return address;
}

static int (*double_free)(void *, int);

__attribute__((noinline)) int free_twice(void)
{
	return double_free(DOUBLE_FREED, 3);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: usdt_fake_libc_user LIBRARY\n");
		return 2;
	}
	/* "-": the probes are built into this executable (usdt_fake_libc_builtin). */
	void *library = dlopen(argv[1][0] == '-' && !argv[1][1] ? NULL : argv[1], RTLD_NOW);
	if (!library) {
		fprintf(stderr, "%s\n", dlerror());
		return 2;
	}
	void (*sbrk_more)(void *, size_t) = symbol(library, "fake_memory_sbrk_more");
	void (*sbrk_less)(void *, size_t) = symbol(library, "fake_memory_sbrk_less");
	void (*heap_new)(void *, size_t) = symbol(library, "fake_memory_heap_new");
	void (*heap_more)(void *, size_t) = symbol(library, "fake_memory_heap_more");
	void (*arena_new)(void *, size_t) = symbol(library, "fake_memory_arena_new");
	void (*mallopt_probe)(int, int) = symbol(library, "fake_memory_mallopt");
	void (*malloc_retry)(size_t) = symbol(library, "fake_memory_malloc_retry");
	void (*arena_retry)(size_t, void *) = symbol(library, "fake_memory_arena_retry");
	double_free = symbol(library, "fake_memory_tcache_double_free");
	printf("ready\n");
	fflush(stdout);

	char line[64];
	while (fgets(line, sizeof(line), stdin)) {
		sbrk_more(SBRK_BRK, 135168);
		sbrk_less((char *)SBRK_BRK + 4096, 131072);
		heap_new(HEAP, 1 << 20);
		heap_more(HEAP, 2 << 20);
		arena_new(ARENA, 4096);
		mallopt_probe(-1 /* M_TRIM_THRESHOLD */, 65536);
		malloc_retry(1000);
		arena_retry(1000, ARENA);
		int fired = free_twice();
		printf("fired double_free=%d\n", fired);
		fflush(stdout);
	}
	return 0;
}
