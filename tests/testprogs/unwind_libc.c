/* unwind_libc: leaks through Debian's libc (built without frame pointers) from named functions of a
 * program built the way Debian builds code (-O2 -g, frame pointers omitted), each called once from
 * main:
 *   make_label()      strdup() of a 4000-character label       4001 bytes
 *   format_label()    asprintf() of a 5000-digit number        5001 bytes
 *   read_line_leak()  getline() of a 3000-character line       its buffer
 *   open_leak()       fopen("/dev/null") never closed          the FILE
 * Prints "ready" on stderr and waits for a line on stdin (go_signal.h), leaks, prints "leaked"
 * and waits again before exiting. The blocks stay reachable from `kept`, so both memleak (at exit)
 * and valgrind (--show-leak-kinds=all) list them. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "go_signal.h"

/* noclone as well as noinline: the stacks must name these functions, not a .constprop clone. The
 * stores after each call keep it from being a tail call, which would drop the caller's frame in
 * every unwinder alike. */
#define NAMED __attribute__((noinline, noclone))

static void *volatile kept[4];
static char label[4001];
static char line[3001];

NAMED void make_label(void) { kept[0] = strdup(label); }

NAMED void format_label(int digits)
{
	char *text = NULL;
	if (asprintf(&text, "%0*d", digits, 7) < 0)
		exit(3);
	kept[1] = text;
}

NAMED void read_line_leak(FILE *source)
{
	char *buffer = NULL;
	size_t size = 0;
	if (getline(&buffer, &size, source) < 0)
		exit(4);
	kept[2] = buffer;
}

NAMED void open_leak(void)
{
	FILE *file = fopen("/dev/null", "r");
	if (!file)
		exit(5);
	kept[3] = file;
}

int main(void)
{
	memset(label, 'l', sizeof(label) - 1);
	memset(line, 'x', sizeof(line) - 2);
	line[sizeof(line) - 2] = '\n';
	wait_for_go("ready");
	FILE *source = fmemopen(line, sizeof(line) - 1, "r");
	if (!source)
		return 2;
	make_label();
	format_label(5000);
	read_line_leak(source);
	fclose(source);
	open_leak();
	wait_for_go("leaked");
	return 0;
}
