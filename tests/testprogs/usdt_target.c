/* USDT probes with known arguments for the usdt tool's tests: `memscope_test:args` fires with
 * (int -42, unsigned long 0x123456789, signed char -1, unsigned short 65535) every 20 ms;
 * `memscope_test:guarded` checks its semaphore and fires (with the iteration number) only while a tracer
 * has it enabled. Exits after the guarded probe fired 5 times, or after 1500 firings of `args` (30 s);
 * `usdt_target N` stops after N firings of `args` instead, and `usdt_target N wait` first waits for
 * a line on stdin (a tracer of its PID can attach before the first firing): the VM tests count the
 * firings exactly. */
#define _SDT_HAS_SEMAPHORES 1
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sdt.h>
#include <time.h>

/* With _SDT_HAS_SEMAPHORES every probe of the file has a semaphore; only `guarded` checks its own. */
unsigned short memscope_test_args_semaphore __attribute__((unused)) __attribute__((section(".probes")));
unsigned short memscope_test_guarded_semaphore __attribute__((unused)) __attribute__((section(".probes")));

static void fire(int iteration)
{
	int signed_int = -42;
	unsigned long big = 0x123456789UL;
	signed char minus_one = -1;
	unsigned short all_ones = 65535;
	STAP_PROBE4(memscope_test, args, signed_int, big, minus_one, all_ones);
	if (memscope_test_guarded_semaphore)
		STAP_PROBE1(memscope_test, guarded, iteration);
}

int main(int argc, char **argv)
{
	struct timespec pause = {0, 20 * 1000 * 1000};
	int guarded_fired = 0, first_guarded = -1, iterations = argc > 1 ? atoi(argv[1]) : 1500;
	int iteration = 0;
	printf("ready\n");
	fflush(stdout);
	if (argc > 2 && strcmp(argv[2], "wait") == 0) {
		char line[16];
		if (!fgets(line, sizeof(line), stdin))
			return 1;
	}
	for (; iteration < iterations && guarded_fired < 5; iteration++) {
		if (memscope_test_guarded_semaphore && guarded_fired++ == 0)
			first_guarded = iteration;
		fire(iteration);
		nanosleep(&pause, NULL);
	}
	printf("guarded probe fired %d times from iteration %d\n", guarded_fired, first_guarded);
	printf("args probe fired %d times\n", iteration);
	return 0;
}
