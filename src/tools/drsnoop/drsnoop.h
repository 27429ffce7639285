/* drsnoop: one record per direct (or memory cgroup) reclaim, shared by drsnoop.bpf.c and
 * drsnoop.cpp. */
#ifndef MEMSCOPE_DRSNOOP_H
#define MEMSCOPE_DRSNOOP_H

#include "memscope_shared.h"

enum drsnoop_kind {
	DRSNOOP_DIRECT = 0, /* mm_vmscan_direct_reclaim_begin/end: the page allocator ran short */
	DRSNOOP_MEMCG = 1,  /* mm_vmscan_memcg_reclaim_begin/end: a memory cgroup hit its limit */
	DRSNOOP_KINDS = 2,
};

struct drsnoop_start_key {
	__u32 tid;
	__u32 kind;
};

struct drsnoop_start {
	__u64 timestamp_ns;
	__u64 free_pages; /* global NR_FREE_PAGES when the reclaim began */
	__u32 free_pages_known;
	__u32 padding;
};

struct drsnoop_event {
	__u64 latency_ns;
	__u64 nr_reclaimed; /* pages */
	__u64 free_pages;
	__u64 memcg_id; /* the reclaiming task's memory cgroup (kernfs id), 0 if unknown */
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u32 kind;
	__u32 free_pages_known;
	__u32 padding;
	char comm[MEMSCOPE_COMM_LEN];
};

#endif
