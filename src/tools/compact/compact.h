/* compact: zone compactions and direct-compaction stalls, shared by compact.bpf.c and compact.cpp. */
#ifndef MEMSCOPE_COMPACT_H
#define MEMSCOPE_COMPACT_H

#include "memscope_shared.h"

enum compact_event_kind {
	COMPACT_EVENT_ZONE = 1,        /* one compact_zone() run, begin to end */
	COMPACT_EVENT_STALL_BEGIN = 2, /* try_to_compact_pages() entered (tracepoint hooks) */
	COMPACT_EVENT_STALL_END = 3,   /* try_to_compact_pages() returned (fexit/kretprobe hooks) */
	COMPACT_EVENT_DEFERRED = 4,    /* a zone skipped by a direct compaction: deferred */
};

struct compact_event {
	__u32 kind;
	__u32 pid;
	__u32 tid;
	__s32 order; /* -1: the whole zone (compact_memory, proactive compaction) */
	__u64 timestamp_ns; /* bpf_ktime_get_ns() at the event */
	__u64 duration_ns;  /* zone compaction; exact stall */
	__u64 gfp_mask;     /* stall */
	__s32 status;       /* enum compact_result of the zone compaction or of the stall */
	__s32 priority;     /* stall: enum compact_priority */
	__s32 nid;
	__s32 zone_idx; /* enum zone_type, -1 when unknown */
	__u8 sync;
	__u8 direct;    /* the zone compaction is part of a direct compaction */
	__u8 proactive; /* proactive compaction by kcompactd (BTF hooks only) */
	__u8 pad;
	char comm[MEMSCOPE_COMM_LEN];
};

#endif
