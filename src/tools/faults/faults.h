/* faults: page faults counted per process (user/kernel mode) and per stack; shared by faults.bpf.c
 * and faults.cpp. */
#ifndef MEMSCOPE_FAULTS_H
#define MEMSCOPE_FAULTS_H

#include "memscope_shared.h"

/* Value of the process_faults map, keyed by PID (tgid). */
struct faults_process_counts {
	__u64 user;   /* faults taken while the CPU was in user mode */
	__u64 kernel; /* faults taken in kernel mode: copy_{to,from}_user, GUP-less kernel access */
	char comm[MEMSCOPE_COMM_LEN]; /* the command of the first faulting thread seen */
	__u64 mm;                     /* the address space it was seen in: exec() replaces it */
};

/* Key of the stack_faults map; the value is a __u64 count. */
struct faults_stack_key {
	__u32 pid;
	__s32 user_stack_id;   /* -1 when not captured (kernel thread, stack map failure) */
	__s32 kernel_stack_id; /* -1 for user-mode faults: their kernel stack is only the fault path */
	__u32 kernel_mode;
};

/* Sent through the ring buffer the first time a PID faults (per report interval) and when it
 * faults in a new address space (it exec()ed, maybe the same program under the same name), so
 * user space can open the process's maps for symbolization while it still runs. */
struct faults_new_process {
	__u32 pid;
	__u32 pad;
	char comm[MEMSCOPE_COMM_LEN];
	__u64 mm;
};

#endif
