/* leak_realloc_reuse LIBRARY ROUNDS: realloc's old address reused before realloc returned, every
 * time. LIBRARY is liballoc_reuse.so (dlopen()ed). Each round the main thread allocates 1000 bytes
 * in first_owner() and grows them to 3000 in grow_block() with reuse_realloc, which moves the block;
 * after the old block is free and before reuse_realloc returns, the second thread allocates 1000
 * bytes in second_owner() and gets the old address. Everything is kept. Outstanding at exit:
 * exactly ROUNDS blocks of 3000 bytes from grow_block() and ROUNDS of 1000 bytes from
 * second_owner() (at the addresses first_owner() had). Prints "rounds N reused M" (M: rounds in
 * which second_owner() got the old address). */
#include <dlfcn.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>

static void *(*reuse_malloc)(size_t);
static void *(*reuse_realloc)(void *, size_t);
static sem_t go_second, second_done;
static void *volatile second_block;

__attribute__((noinline)) void *first_owner(void)
{
	return reuse_malloc(1000);
}

__attribute__((noinline)) void *second_owner(void)
{
	return reuse_malloc(1000);
}

__attribute__((noinline)) void *grow_block(void *block)
{
	return reuse_realloc(block, 3000);
}

static void *second_thread(void *rounds)
{
	for (long i = 0; i < (long)rounds; i++) {
		sem_wait(&go_second);
		second_block = second_owner();
		sem_post(&second_done);
	}
	return NULL;
}

/* Inside reuse_realloc, the old block free: the other thread allocates now. */
static void while_realloc_runs(void)
{
	sem_post(&go_second);
	sem_wait(&second_done);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: leak_realloc_reuse LIBRARY ROUNDS\n");
		return 2;
	}
	long rounds = atol(argv[2]);
	void *library = dlopen(argv[1], RTLD_NOW);
	void (*set_hook)(void (*)(void)) = library ? dlsym(library, "reuse_set_realloc_hook") : NULL;
	reuse_malloc = library ? dlsym(library, "reuse_malloc") : NULL;
	reuse_realloc = library ? dlsym(library, "reuse_realloc") : NULL;
	if (!set_hook || !reuse_malloc || !reuse_realloc) {
		fprintf(stderr, "%s: %s\n", argv[1], dlerror());
		return 1;
	}
	set_hook(while_realloc_runs);
	sem_init(&go_second, 0, 0);
	sem_init(&second_done, 0, 0);
	pthread_t thread;
	pthread_create(&thread, NULL, second_thread, (void *)rounds);
	long reused = 0;
	void **kept = calloc((size_t)rounds, 2 * sizeof(void *));
	for (long i = 0; i < rounds; i++) {
		void *first = first_owner();
		void *grown = grow_block(first);
		reused += second_block == first && grown != first;
		kept[2 * i] = grown;
		kept[2 * i + 1] = second_block;
	}
	pthread_join(thread, NULL);
	printf("rounds %ld reused %ld\n", rounds, reused);
	return 0;
}
