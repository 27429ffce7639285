/* unwind_touch PAGES: maps PAGES fresh anonymous pages and writes them with memset() from
 * touch_pages_here(), in a program built without frame pointers (-O2 -g): every page fault is taken
 * inside Debian's libc memset, a leaf without a frame of its own. Prints "ready" on stderr and
 * waits for a line on stdin (go_signal.h), touches, prints "touched", waits again. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "go_signal.h"

static volatile size_t touched;

__attribute__((noinline, noclone)) void touch_pages_here(char *memory, size_t bytes)
{
	memset(memory, 1, bytes);
	touched += bytes; /* after the call: not a tail call */
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: unwind_touch PAGES\n");
		return 2;
	}
	size_t bytes = strtoul(argv[1], NULL, 10) * (size_t)sysconf(_SC_PAGESIZE);
	char *memory = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (memory == MAP_FAILED)
		return 3;
	madvise(memory, bytes, MADV_NOHUGEPAGE); /* one fault per page */
	wait_for_go("ready");
	touch_pages_here(memory, bytes);
	wait_for_go("touched");
	return 0;
}
