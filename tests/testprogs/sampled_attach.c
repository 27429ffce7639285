/* A long-running target for memleak -p --sample-bytes (the sampler injected into a running
 * process). A second thread churns malloc/free the whole time and checks every block's contents,
 * so that redirecting the allocator under a running thread is exercised and any corruption counted.
 * Commands, one per line on stdin; each answer is one line on stdout, "#K " and then the text
 * below, K counting the commands from 1 (so that a reader tells each answer from earlier ones):
 *   where        "malloc-from PATH": the object whose code the executable's GOT entry for malloc
 *                points at now (libc, or the sampler while it is injected): an oracle that does
 *                not ask memscope
 *   leak N       N blocks of 4099 bytes from leak_after_attach(), unreachable: "leaked N"
 *   plugin N     dlopen("libsampled_plugin.so") by bare name (found through this executable's
 *                RUNPATH $ORIGIN), then N blocks of 5003 bytes from plugin_leak() inside it:
 *                "plugin-leaked N"
 *   status       "churn ROUNDS errors ERRORS"
 *   exit         exits 0 when the churn saw no corruption, 3 otherwise
 * Options: --seccomp installs an allow-everything seccomp filter first (a refusal case). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static volatile uint64_t churn_rounds, churn_errors;
static volatile int stopping;
static void *volatile last;

/* The GOT entry of malloc, read anew each call: a PIE takes a function's address from its GOT. */
__attribute__((noinline)) static void *malloc_entry(void)
{
	void *(*volatile entry)(size_t) = malloc;
	return (void *)entry;
}

__attribute__((noinline)) void leak_after_attach(int count)
{
	for (int i = 0; i < count; i++) {
		char *block = malloc(4099);
		memset(block, 0x5a, 4099);
		last = block;
	}
	last = NULL;
}

static void *churn(void *unused)
{
	(void)unused;
	while (!stopping) {
		for (int i = 0; i < 64; i++) {
			size_t size = 16 + (size_t)(i * 37 % 500);
			unsigned char *block = malloc(size);
			memset(block, i, size);
			unsigned char *bigger = realloc(block, size * 2);
			for (size_t k = 0; k < size; k++)
				if (bigger[k] != (unsigned char)i)
					churn_errors++;
			free(bigger);
		}
		churn_rounds++;
		usleep(20000);
	}
	return NULL;
}

static void allow_everything_seccomp(void)
{
	struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog program = {.len = 1, .filter = &allow};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
		perror("seccomp");
		exit(2);
	}
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--seccomp") == 0)
		allow_everything_seccomp();
	setvbuf(stdout, NULL, _IOLBF, 0);
	pthread_t thread;
	pthread_create(&thread, NULL, churn, NULL);
	printf("ready\n");
	char line[128];
	unsigned sequence = 0;
	while (fgets(line, sizeof(line), stdin)) {
		int count = 0;
		printf("#%u ", ++sequence);
		if (strncmp(line, "where", 5) == 0) {
			Dl_info info;
			printf("malloc-from %s\n", dladdr(malloc_entry(), &info) && info.dli_fname ? info.dli_fname : "?");
		} else if (sscanf(line, "leak %d", &count) == 1) {
			leak_after_attach(count);
			printf("leaked %d\n", count);
		} else if (sscanf(line, "plugin %d", &count) == 1) {
			void *plugin = dlopen("libsampled_plugin.so", RTLD_NOW);
			void (*leak)(int) = plugin ? (void (*)(int))dlsym(plugin, "plugin_leak") : NULL;
			if (!leak) {
				printf("plugin-failed %s\n", dlerror());
				continue;
			}
			leak(count);
			printf("plugin-leaked %d\n", count);
		} else if (strncmp(line, "status", 6) == 0) {
			printf("churn %llu errors %llu\n", (unsigned long long)churn_rounds,
			       (unsigned long long)churn_errors);
		} else if (strncmp(line, "exit", 4) == 0) {
			printf("bye\n");
			break;
		} else {
			printf("unknown\n");
		}
	}
	stopping = 1;
	pthread_join(thread, NULL);
	return churn_errors ? 3 : 0;
}
