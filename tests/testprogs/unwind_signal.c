/* unwind_signal: a 7001-byte malloc() inside a signal handler, on_signal(), for SIGUSR1 raised from
 * raise_here(), called from main; built without frame pointers (-O2 -g). Above the handler is the
 * kernel's signal frame (glibc's __restore_rt), then the interrupted raise() in libc. Prints
 * "ready" on stderr and waits for a line on stdin (go_signal.h), raises, prints "raised", waits
 * again. (malloc is not async-signal-safe; it is safe here because the signal is raised
 * synchronously, outside the allocator.) */
#include <signal.h>
#include <stdlib.h>

#include "go_signal.h"

static void *volatile kept;
static volatile int raised;

__attribute__((noinline, noclone)) void on_signal(int signo)
{
	kept = malloc(7001);
	(void)signo;
}

__attribute__((noinline, noclone)) void raise_here(void)
{
	raise(SIGUSR1);
	raised++; /* after the call: not a tail call */
}

int main(void)
{
	struct sigaction action = {.sa_handler = on_signal};
	sigemptyset(&action.sa_mask);
	sigaction(SIGUSR1, &action, NULL);
	wait_for_go("ready");
	raise_here();
	wait_for_go("raised");
	return 0;
}
