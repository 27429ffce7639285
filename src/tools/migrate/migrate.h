/* migrate: page migrations counted per process, reason and mode; shared by migrate.bpf.c and
 * migrate.cpp. */
#ifndef MEMSCOPE_MIGRATE_H
#define MEMSCOPE_MIGRATE_H

#include "memscope_shared.h"

struct migrate_key {
	__u32 pid;
	__u32 reason; /* enum migrate_reason */
	__u32 mode;   /* enum migrate_mode */
	__u32 pad;
	char comm[MEMSCOPE_COMM_LEN];
};

struct migrate_counts {
	__u64 calls; /* migrate_pages() calls that ended in the tracepoint */
	__u64 succeeded; /* base pages; a THP counts as its base pages here too */
	__u64 failed;
	__u64 thp_succeeded;
	__u64 thp_failed;
	__u64 thp_split;
};

#endif
