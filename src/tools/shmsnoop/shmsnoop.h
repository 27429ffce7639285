/* shmsnoop: one record per System V shared memory syscall, shared by shmsnoop.bpf.c and
 * shmsnoop.cpp. */
#ifndef MEMSCOPE_SHMSNOOP_H
#define MEMSCOPE_SHMSNOOP_H

#include "memscope_shared.h"

enum shmsnoop_syscall {
	SHMSNOOP_SHMGET = 0,
	SHMSNOOP_SHMAT = 1,
	SHMSNOOP_SHMDT = 2,
	SHMSNOOP_SHMCTL = 3,
};

struct shmsnoop_event {
	__u64 args[3]; /* shmget(key, size, shmflg), shmat(shmid, shmaddr, shmflg), shmdt(shmaddr),
			  shmctl(shmid, cmd, buf) */
	__s64 ret;     /* shmid, address or 0; -errno on failure */
	__u32 pid;
	__u32 tid;
	__u32 syscall; /* enum shmsnoop_syscall */
	__u32 pad;
	char comm[MEMSCOPE_COMM_LEN];
};

#endif
