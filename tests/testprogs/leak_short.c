/* Lives a few milliseconds: leaks two blocks in main's callee and one in an atexit handler, which
 * runs after main returned. memleak -c must see all three (it attaches before the first
 * instruction and reports at PTRACE_EVENT_EXIT, after the atexit handlers). Prints nothing. */
#include <stdlib.h>

static void *volatile last;

void leak_at_exit(void) { last = malloc(40981); }

void leak_briefly(void)
{
	last = malloc(40961);
	last = calloc(1, 40973);
}

int main(void)
{
	atexit(leak_at_exit);
	leak_briefly();
	last = NULL;
	return 0;
}
