/* oomkill: one record per OOM kill, shared by oomkill.bpf.c and oomkill.cpp. */
#ifndef MEMSCOPE_OOMKILL_H
#define MEMSCOPE_OOMKILL_H

#include "memscope_shared.h"

#define OOMKILL_STACK_DEPTH 32

enum oomkill_pages_source {
	OOMKILL_PAGES_TOTALPAGES = 0, /* oom_control->totalpages: the size of the OOM domain */
	OOMKILL_PAGES_VICTIM_RSS = 1, /* tracepoint path: the victim's resident pages */
};

enum oomkill_memcg_source {
	OOMKILL_MEMCG_NONE = 0,
	OOMKILL_MEMCG_OOM_CONTROL = 1, /* oom_control->memcg: exact */
	OOMKILL_MEMCG_VICTIM = 2,      /* the victim's memory cgroup; memcg OOM decided from the stack */
};

struct oomkill_event {
	__u32 triggered_pid;
	__u32 victim_pid;
	__u64 pages;
	__u64 memcg_id; /* cgroup v2 id (kernfs node id) */
	__u32 pages_source;
	__u32 memcg_source;
	__u32 kernel_stack_bytes;
	__u32 victim_comm_known;
	char triggered_comm[MEMSCOPE_COMM_LEN];
	char victim_comm[MEMSCOPE_COMM_LEN];
	__u64 kernel_stack[OOMKILL_STACK_DEPTH];
};

#endif
