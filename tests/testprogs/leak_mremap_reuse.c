/* leak_mremap_reuse ROUNDS: mremap's old address mapped again before mremap returned, every time.
 * Each round the main thread maps 4 pages in first_owner() and moves them to 8 pages in
 * move_mapping() with libc's mremap(MREMAP_MAYMOVE). That system call stops at a seccomp user
 * notification (the main thread's filter); a supervisor thread does the move itself (a raw system
 * call), maps 4 pages at the vacated address in second_owner() (libc's mmap, MAP_FIXED_NOREPLACE),
 * and only then lets the main thread's mremap return the new address. Everything is kept.
 * Outstanding at exit: exactly ROUNDS mappings of 32768 bytes from move_mapping() and ROUNDS of
 * 16384 bytes from second_owner(). Prints "rounds N reused M" (M: rounds in which second_owner()
 * got the old address). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <semaphore.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SMALL 16384
#define LARGE 32768

static int listener = -1;
static sem_t listener_ready;
static volatile long reused;

__attribute__((noinline)) void *first_owner(void)
{
	return mmap(NULL, SMALL, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

__attribute__((noinline)) void *second_owner(void *address)
{
	return mmap(address, SMALL, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
		    -1, 0);
}

__attribute__((noinline)) void *move_mapping(void *old)
{
	return mremap(old, SMALL, LARGE, MREMAP_MAYMOVE);
}

/* Answers each of the main thread's mremap calls: moves the mapping itself, maps the old address
 * again, then returns the moved address as the call's result. */
static void *supervisor(void *rounds)
{
	sem_wait(&listener_ready);
	struct seccomp_notif request;
	struct seccomp_notif_resp response;
	for (long i = 0; i < (long)rounds; i++) {
		memset(&request, 0, sizeof(request));
		if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &request) != 0) {
			perror("SECCOMP_IOCTL_NOTIF_RECV");
			exit(1);
		}
		void *old = (void *)request.data.args[0];
		long moved = syscall(SYS_mremap, old, request.data.args[1], request.data.args[2],
				     request.data.args[3], request.data.args[4]);
		memset(&response, 0, sizeof(response));
		response.id = request.id;
		if (moved == -1) {
			response.error = -errno;
		} else {
			response.val = moved;
			reused += second_owner(old) == old && (void *)moved != old;
		}
		if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &response) != 0) {
			perror("SECCOMP_IOCTL_NOTIF_SEND");
			exit(1);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long rounds = argc > 1 ? atol(argv[1]) : 100;
	sem_init(&listener_ready, 0, 0);
	pthread_t thread;
	pthread_create(&thread, NULL, supervisor, (void *)rounds);
	/* mremap of this thread only (no SECCOMP_FILTER_FLAG_TSYNC) goes to the supervisor. */
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mremap, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog program = {.len = sizeof(filter) / sizeof(filter[0]), .filter = filter};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return 1;
	listener = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &program);
	if (listener < 0) {
		perror("seccomp");
		return 1;
	}
	sem_post(&listener_ready);
	void **kept = calloc((size_t)rounds, sizeof(void *));
	for (long i = 0; i < rounds; i++) {
		void *first = first_owner();
		if (first == MAP_FAILED)
			return 1;
		kept[i] = move_mapping(first);
		if (kept[i] == MAP_FAILED)
			return 1;
	}
	pthread_join(thread, NULL);
	printf("rounds %ld reused %ld\n", rounds, reused);
	return 0;
}
