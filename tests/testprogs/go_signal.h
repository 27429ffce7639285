/* What the unwind test programs share: markers on stderr (under `memscope memleak -c` stdout is
 * memscope's, and its JSON must stay parseable), and a wait for a line on stdin before and after
 * the work, so that a tracer can attach by PID first and read reports while the program lives.
 * End of input counts as the line: with stdin at /dev/null a program runs straight through.
 * read(2), not stdio: stdin's buffer would be one more allocation in the leak reports. */
#pragma once

#include <stdio.h>
#include <unistd.h>

static inline void wait_for_go(const char *marker)
{
	char c;
	fprintf(stderr, "%s\n", marker);
	while (read(0, &c, 1) == 1 && c != '\n')
		;
}
