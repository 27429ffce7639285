/* Stage 1 prints READY, after 1.5 s holds 16 blocks of 1000 bytes from hold_before_exec() (in a
 * global array) and, 1.5 s later, exec()s itself with "stage2". Stage 2 waits 1 s, holds 8 blocks of 2000 bytes
 * from hold_after_exec(), prints HELD and sleeps until killed. Nothing is ever leaked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *held[16];

__attribute__((noinline)) void hold_before_exec(void)
{
	for (int i = 0; i < 16; i++)
		held[i] = malloc(1000);
}

__attribute__((noinline)) void hold_after_exec(void)
{
	for (int i = 0; i < 8; i++)
		held[i] = malloc(2000);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "stage2") == 0) {
		usleep(1000000);
		hold_after_exec();
		printf("HELD\n");
		fflush(stdout);
		for (;;)
			pause();
	}
	printf("READY\n");
	fflush(stdout);
	usleep(1500000);
	hold_before_exec();
	usleep(1500000);
	execl("/proc/self/exe", argv[0], "stage2", (char *)NULL);
	perror("exec");
	return 1;
}
