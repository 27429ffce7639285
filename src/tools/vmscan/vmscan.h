/* vmscan: per-CPU totals and latency histograms of page reclaim, shared by vmscan.bpf.c and
 * vmscan.cpp. Nothing goes through the ring buffer: user space reads these maps each interval. */
#ifndef MEMSCOPE_VMSCAN_H
#define MEMSCOPE_VMSCAN_H

#include "memscope_shared.h"

/* The timed phases: each has a begin and an end tracepoint, paired by thread id. */
enum vmscan_phase {
	VMSCAN_SLAB_SHRINK = 0,	   /* mm_shrink_slab_start/end */
	VMSCAN_DIRECT_RECLAIM = 1, /* mm_vmscan_direct_reclaim_begin/end */
	VMSCAN_MEMCG_RECLAIM = 2,  /* mm_vmscan_memcg_reclaim_begin/end */
	VMSCAN_PHASES = 3,
};

/* log2 buckets of nanoseconds: bucket i counts [2^(i-1), 2^i), bucket 0 counts 0. */
#define VMSCAN_HIST_BUCKETS 64

/* Cumulative since attach; user space reports the difference between two reads. */
struct vmscan_totals {
	__u64 phase_ns[VMSCAN_PHASES];
	__u64 phase_count[VMSCAN_PHASES];
	__u64 kswapd_wakeups;
	__u64 reclaim_writes; /* mm_vmscan_write_folio (folios) or mm_vmscan_writepage (pages) */
};

struct vmscan_start_key {
	__u32 tid;
	__u32 phase;
};

#endif
