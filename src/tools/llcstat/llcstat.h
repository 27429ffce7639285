/* llcstat: last-level-cache references and misses sampled from hardware perf events, counted per
 * CPU and task; shared by llcstat.bpf.c and llcstat.cpp. */
#ifndef MEMSCOPE_LLCSTAT_H
#define MEMSCOPE_LLCSTAT_H

#include "memscope_shared.h"

struct llcstat_key {
	__u32 cpu;
	__u32 pid;
	__u32 tid;
	__u32 pad;
	char comm[MEMSCOPE_COMM_LEN];
};

struct llcstat_value {
	__u64 references; /* events: samples times the sample period */
	__u64 misses;
};

#endif
