/* An executable with its own allocator (a bump allocator over a static arena), as programs that
 * link an allocator statically do: glibc and every library call it, directly from the executable,
 * so there is no GOT entry for memleak -p --sample-bytes to redirect (a refusal case).
 * Prints "ready", waits for a line on stdin, exits. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static char arena[64 << 20] __attribute__((aligned(16)));
static size_t used;

void *malloc(size_t size)
{
	size_t start = (__atomic_fetch_add(&used, (size + 31) & ~(size_t)15, __ATOMIC_RELAXED) + 15) & ~(size_t)15;
	if (start + size + 16 > sizeof(arena)) {
		errno = ENOMEM;
		return NULL;
	}
	*(size_t *)(arena + start) = size;
	return arena + start + 16;
}
void free(void *block) { (void)block; }
void *calloc(size_t count, size_t size)
{
	return count && size > SIZE_MAX / count ? NULL : malloc(count * size); /* the arena is zero */
}
void *realloc(void *old, size_t size)
{
	void *block = malloc(size);
	if (block && old) {
		size_t old_size = *(size_t *)((char *)old - 16);
		memcpy(block, old, old_size < size ? old_size : size);
	}
	return block;
}

int main(void)
{
	char line[64];
	printf("ready\n");
	fflush(stdout);
	return fgets(line, sizeof(line), stdin) ? 0 : 1;
}
