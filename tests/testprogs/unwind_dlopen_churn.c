/* unwind_dlopen_churn [once] PAGES PER_CHILD LIBRARY...: short-lived children, each dlopen()ing libraries no
 * other child loads (the test passes distinct copies of libunwind_churn.so), for the unwinder's
 * tables of objects no live process maps any more. Built -O2 -g without frame pointers. Prints
 * "ready" on stderr, then reads commands on stdin, one a line:
 *   child  forks a child that dlopens the next PER_CHILD libraries of the list, touches one page in
 *          each (so that a tracer sees the new mappings), prints "child PID loaded" and waits for:
 *   prime  the child touches one more page in each library; "child PID primed"
 *   touch  the child calls churn_touch(PAGES) of each library through touch_library(); every fault
 *          is taken in the library, under touch_library() and main(); "child PID touched"
 *   exit   the child exits; "child PID reaped" once the parent waited for it
 * End of input ends the program. With `once`, the program does a child's work itself, without fork
 * and without commands (loads, touches, exits): for a debugger's view of the same stacks. */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef int (*touch_function)(size_t);

static volatile int calls;

__attribute__((noinline, noclone)) void touch_library(touch_function touch, size_t pages)
{
	if (touch(pages) != 0)
		fprintf(stderr, "mmap failed\n");
	calls++; /* after the call: not a tail call */
}

/* One line of `fd` into `line` (without the newline); 0 at end of input. read(2): no stdio buffer. */
static int read_line(int fd, char *line, size_t size)
{
	size_t length = 0;
	char c;
	while (read(fd, &c, 1) == 1) {
		if (c == '\n') {
			line[length] = 0;
			return 1;
		}
		if (length + 1 < size)
			line[length++] = c;
	}
	line[length] = 0;
	return length > 0;
}

__attribute__((noinline, noclone)) static void run_child(int commands, char **libraries, int count, size_t pages)
{
	touch_function touches[64];
	for (int i = 0; i < count; i++) {
		void *library = dlopen(libraries[i], RTLD_NOW | RTLD_LOCAL);
		touches[i] = library ? (touch_function)dlsym(library, "churn_touch") : NULL;
		if (!touches[i]) {
			fprintf(stderr, "%s: %s\n", libraries[i], dlerror());
			_exit(1);
		}
	}
	for (int i = 0; i < count; i++)
		touch_library(touches[i], 1);
	fprintf(stderr, "child %d loaded\n", (int)getpid());
	char line[64];
	while (read_line(commands, line, sizeof(line))) {
		if (strcmp(line, "prime") == 0) {
			for (int i = 0; i < count; i++)
				touch_library(touches[i], 1);
			fprintf(stderr, "child %d primed\n", (int)getpid());
		} else if (strcmp(line, "touch") == 0) {
			for (int i = 0; i < count; i++)
				touch_library(touches[i], pages);
			fprintf(stderr, "child %d touched\n", (int)getpid());
		} else if (strcmp(line, "exit") == 0) {
			break;
		}
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	bool once = argc > 1 && strcmp(argv[1], "once") == 0;
	if (once) {
		argv++;
		argc--;
	}
	if (argc < 4) {
		fprintf(stderr, "usage: unwind_dlopen_churn [once] PAGES PER_CHILD LIBRARY...\n");
		return 2;
	}
	size_t pages = strtoul(argv[1], NULL, 10);
	int per_child = atoi(argv[2]);
	if (per_child < 1 || per_child > 64)
		return 2;
	char **next = argv + 3, **end = argv + argc;
	if (once) {
		int script[2];
		if (end - next < per_child || pipe(script) != 0 || write(script[1], "touch\nexit\n", 11) != 11)
			return 1;
		run_child(script[0], next, per_child, pages);
	}
	int to_child = -1;
	pid_t child = 0;
	char line[64];
	fprintf(stderr, "ready\n");
	while (read_line(0, line, sizeof(line))) {
		if (strcmp(line, "child") == 0) {
			if (child || end - next < per_child) {
				fprintf(stderr, "no child started\n");
				continue;
			}
			int pipe_fds[2];
			if (pipe(pipe_fds) != 0)
				return 1;
			child = fork();
			if (child == 0) {
				close(pipe_fds[1]);
				run_child(pipe_fds[0], next, per_child, pages);
			}
			close(pipe_fds[0]);
			to_child = pipe_fds[1];
			next += per_child;
		} else if (child) {
			size_t length = strlen(line);
			line[length] = '\n';
			if (write(to_child, line, length + 1) != (ssize_t)(length + 1))
				return 1;
			line[length] = 0;
			if (strcmp(line, "exit") == 0) {
				close(to_child);
				waitpid(child, NULL, 0);
				fprintf(stderr, "child %d reaped\n", (int)child);
				child = 0;
			}
		}
	}
	return 0;
}
