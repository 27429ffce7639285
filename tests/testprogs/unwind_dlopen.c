/* unwind_dlopen LIBRARY: loads LIBRARY (libunwind_plugin.so) with dlopen() after the go line and
 * calls its plugin_leak(), which leaks 8001 bytes through plugin_make_record() and Debian's libc;
 * the library is mapped only after a tracer attached, so its unwind tables must be found then.
 * Built -O2 -g without frame pointers. Prints "ready" on stderr and waits for a line on stdin
 * (go_signal.h), loads and leaks, prints "leaked", waits again. The library stays loaded.
 *   unwind_dlopen LIBRARY early: loads LIBRARY before "ready" instead, and leaks after the go line
 *   (for a library whose file is replaced on disk while it is mapped).
 *   unwind_dlopen LIBRARY swap SECOND: after the leak, unloads LIBRARY with dlclose(), loads SECOND
 *   (libunwind_plugin_second.so, other code that tends to land at the same addresses) and calls its
 *   plugin_leak() too; prints both load addresses on stderr. */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "go_signal.h"

static volatile int calls;

int main(int argc, char **argv)
{
	bool early = argc == 3 && strcmp(argv[2], "early") == 0;
	bool swap = argc == 4 && strcmp(argv[2], "swap") == 0;
	if (argc != 2 && !early && !swap) {
		fprintf(stderr, "usage: unwind_dlopen LIBRARY [early | swap SECOND]\n");
		return 2;
	}
	if (!early)
		wait_for_go("ready");
	void *library = dlopen(argv[1], RTLD_NOW);
	if (!library) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 1;
	}
	void (*plugin_leak)(void) = (void (*)(void))dlsym(library, "plugin_leak");
	if (!plugin_leak) {
		fprintf(stderr, "dlsym: %s\n", dlerror());
		return 1;
	}
	if (early)
		wait_for_go("ready");
	plugin_leak();
	calls++; /* after the call: not a tail call */
	if (swap) {
		fprintf(stderr, "first plugin_leak at %p\n", (void *)plugin_leak);
		dlclose(library);
		library = dlopen(argv[3], RTLD_NOW);
		plugin_leak = library ? (void (*)(void))dlsym(library, "plugin_leak") : NULL;
		if (!plugin_leak) {
			fprintf(stderr, "second plugin: %s\n", dlerror());
			return 1;
		}
		fprintf(stderr, "second plugin_leak at %p\n", (void *)plugin_leak);
		plugin_leak();
		calls++;
	}
	wait_for_go("leaked");
	return 0;
}
