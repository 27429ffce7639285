/* The leak from "BPF Performance Tools", memory chapter, as the memleak walkthrough uses it: a child
 * thread computes Fibonacci numbers, each in a fresh calloc'ed block of 1024 long longs (8 KiB)
 * that is never freed, one per second.
 *
 *   cc -g -fno-omit-frame-pointer -pthread -o leak examples/leak.c && ./leak &
 *   memscope memleak -p $!        # fibonacci+0x.. [leak] / child+0x.. [leak]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

long long *fibonacci(long long *n0, long long *n1)
{
	/* 1024 long longs, to make the growth easy to see */
	long long *v = (long long *)calloc(1024, sizeof(long long));
	*v = *n0 + *n1;
	return v;
}

void *child(void *arg)
{
	long long n0 = 0;
	long long n1 = 1;
	long long *v = NULL;
	int n = 2;
	(void)arg;
	for (n = 2; n > 0; n++) {
		v = fibonacci(&n0, &n1);
		n0 = n1;
		n1 = *v;
		printf("%dth => %lld\n", n, *v);
		sleep(1);
	}
	return NULL;
}

int main(void)
{
	pthread_t tid;
	pthread_create(&tid, NULL, child, NULL);
	pthread_join(tid, NULL);
	printf("main thread exit\n");
	return 0;
}
