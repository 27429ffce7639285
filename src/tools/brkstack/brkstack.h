/* brkstack: brk() calls aggregated in the kernel by process and user stack, shared by
 * brkstack.bpf.c and brkstack.cpp. */
#ifndef MEMSCOPE_BRKSTACK_H
#define MEMSCOPE_BRKSTACK_H

#include "memscope_shared.h"

struct brkstack_key {
	__u32 pid;
	__s32 user_stack_id; /* -1: not captured (counted as a drop) */
};

struct brkstack_value {
	__u64 calls;   /* brk() calls, including brk(0) queries and shrinks */
	__u64 growths; /* calls that moved the break up */
	__u64 bytes;   /* bytes the break moved up, summed */
	__u64 failed;  /* calls that asked for a new break and did not get it */
	char comm[MEMSCOPE_COMM_LEN];
};

/* Sent through the ring buffer when a (process, stack) pair is first counted, so user space can
 * snapshot the process's mappings while it still lives and symbolize the stack after it exits. */
struct brkstack_new_stack_event {
	__u32 pid;
	__s32 user_stack_id;
};

#endif
