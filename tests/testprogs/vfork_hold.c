/* Threads the kernel will not stop: THREADS (argv[1], default 3) threads each vfork() a child that
 * sleeps SECONDS (argv[2], default 30) and exits; until then each parent thread waits for it in an
 * uninterruptible (killable) sleep, where PTRACE_INTERRUPT does not reach it. Prints READY once all
 * of them wait, then reads stdin until EOF. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long seconds = 30;
static atomic_int forked;

static void *hold(void *arg)
{
	atomic_fetch_add(&forked, 1);
	pid_t child = vfork();
	if (child == 0) {
		struct timespec pause = {seconds, 0};
		syscall(SYS_nanosleep, &pause, NULL);
		syscall(SYS_exit, 0);
	}
	return arg;
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 3;
	if (argc > 2)
		seconds = atol(argv[2]);
	for (int i = 0; i < threads; i++) {
		pthread_t thread;
		pthread_create(&thread, NULL, hold, NULL);
	}
	while (atomic_load(&forked) < threads)
		usleep(1000);
	usleep(200000);
	printf("READY\n");
	fflush(stdout);
	char line[64];
	while (fgets(line, sizeof(line), stdin))
		;
	return 0;
}
