/* A target that forks and execs without pause and never leaks: two threads free and allocate blocks
 * held in global slots (as scan_free_churn does), while the main thread forks a child every 2 ms
 * that either execs /bin/true or allocates, frees and _exits, and reaps them. Prints READY, then
 * runs until killed. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 64

static void *slots[2][SLOTS];

static void *churn(void *arg)
{
	void **mine = slots[(long)arg];
	unsigned seed = (unsigned)(long)arg + 7;
	for (;;) {
		for (unsigned slot = 0; slot < SLOTS; slot++) {
			free(mine[slot]);
			mine[slot] = NULL;
		}
		for (unsigned slot = 0; slot < SLOTS; slot++) {
			mine[slot] = malloc(16 + rand_r(&seed) % 2048);
			memset(mine[slot], 1, 16);
		}
	}
	return NULL;
}

int main(void)
{
	for (long i = 0; i < 2; i++) {
		pthread_t thread;
		pthread_create(&thread, NULL, churn, (void *)i);
	}
	printf("READY\n");
	fflush(stdout);
	for (unsigned long n = 0;; n++) {
		pid_t child = fork();
		if (child == 0) {
			if (n % 2)
				execl("/bin/true", "true", (char *)NULL);
			void *block = malloc(100);
			free(block);
			_exit(0);
		}
		struct timespec pause = {0, 2000000};
		nanosleep(&pause, NULL);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
}
