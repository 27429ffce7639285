/* swapin: swap-ins counted per process, shared by swapin.bpf.c and swapin.cpp. */
#ifndef MEMSCOPE_SWAPIN_H
#define MEMSCOPE_SWAPIN_H

#include "memscope_shared.h"

struct swapin_key {
	__u32 pid;
	__u32 padding;
	char comm[MEMSCOPE_COMM_LEN];
};

#endif
