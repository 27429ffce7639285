/* usdt: one record per USDT probe hit, shared by usdt.bpf.c and usdt.cpp. */
#ifndef MEMSCOPE_USDT_H
#define MEMSCOPE_USDT_H

#include "memscope_shared.h"

/* libbpf's USDT support decodes at most 12 arguments (BPF_USDT_MAX_ARG_CNT). */
#define USDT_MAX_ARGS 12

struct usdt_event {
	__u64 cookie; /* index of the attached probe in user space's table */
	__u32 pid;
	__u32 tid;
	__u32 arg_count;
	__u32 pad;
	char comm[MEMSCOPE_COMM_LEN];
	__u64 args[USDT_MAX_ARGS]; /* as bpf_usdt_arg() returns them: sign-extended to 64 bits */
};

#endif
