/* mallocsnoop: one record per glibc memory_* probe hit, shared by mallocsnoop.bpf.c and
 * mallocsnoop.cpp. */
#ifndef MEMSCOPE_MALLOCSNOOP_H
#define MEMSCOPE_MALLOCSNOOP_H

#include "memscope_shared.h"

/* glibc's memory probes have at most 3 arguments; keep room for future ones. */
#define MALLOCSNOOP_MAX_ARGS 6

/* Set in a probe's cookie when its hits should carry the user stack (the double-free check). */
#define MALLOCSNOOP_COOKIE_STACK (1ULL << 62)
#define MALLOCSNOOP_COOKIE_INDEX_MASK 0xffffffffULL

struct mallocsnoop_event {
	__u64 cookie;
	__u32 pid;
	__u32 tid;
	__u32 arg_count;
	__s32 user_stack_id; /* -1: no stack wanted or not captured */
	char comm[MEMSCOPE_COMM_LEN];
	__u64 args[MALLOCSNOOP_MAX_ARGS]; /* bpf_usdt_arg(): sign-extended to 64 bits */
};

#endif
