/* memleak: maps and records shared by memleak_user.bpf.c, memleak_kernel.bpf.c and memleak.cpp. */
#ifndef MEMSCOPE_MEMLEAK_H
#define MEMSCOPE_MEMLEAK_H

#include "memscope_shared.h"

/* Stack ids of allocations whose stack could not be captured are aggregated under this key of
 * the per-stack totals, so their bytes are still reported. */
#define MEMLEAK_NO_STACK 0xffffffffu

/* Stack ids with this bit are ids of the `overflow_stacks` map (stacks whose bucket in `stacks`
 * was taken by another stack), without it of `stacks`. Overflow ids are a hash of the stack
 * (MEMLEAK_OVERFLOW_ID_MASK bits), probed linearly MEMLEAK_OVERFLOW_PROBES times. */
#define MEMLEAK_OVERFLOW_STACK 0x40000000
#define MEMLEAK_OVERFLOW_ID_MASK 0x1fffffffu
#define MEMLEAK_OVERFLOW_PROBES 8
#define MEMLEAK_OVERFLOW_STACKS 4096
/* Entries of the `stacks` stack trace map (user mode fits it to the stack mode at load). */
#define MEMLEAK_STACK_MAP_ENTRIES 16384

/* Value of the `overflow_stacks` map: the addresses, innermost first, and a 64-bit hash of them
 * independent of the id's, by which stored stacks are compared (as the unwinder's are). */
struct memleak_overflow_stack {
	__u64 frames;
	__u64 check;
	__u64 addresses[MEMSCOPE_MAX_STACK_DEPTH];
};

/* Value of the `allocs` map, keyed by address (user mode: the pointer returned by the allocator;
 * kernel mode: the object address, or the page pointer/pfn for page allocations). */
struct memleak_allocation {
	__u64 size;
	__u64 timestamp_ns; /* bpf_ktime_get_ns() at allocation: CLOCK_MONOTONIC */
	__s32 stack_id;     /* -1 when the stack was not captured */
	__u32 pad;
};

/* Value of the `stack_totals` map (--combined-only), keyed by stack id. */
struct memleak_stack_total {
	__u64 bytes;
	__u64 count;
};

/* An allocator call between its entry and return probe, keyed by pid_tgid. */
struct memleak_inflight {
	__u64 size;
	__u64 old_address;    /* realloc/reallocarray/mremap: the block being replaced */
	__u64 result_pointer; /* posix_memalign: where the allocator stores the address */
	__u64 outer_sp;       /* stack pointer at entry of the outermost allocator call */
	struct memleak_allocation old_record; /* the old block's record, taken out at entry */
	__u32 depth;          /* nested allocator calls (malloc -> mmap, new -> malloc) */
	__u8 tracked;         /* passed the size filters and the sampling */
	__u8 frees_on_zero;   /* realloc(ptr, 0) frees ptr and returns NULL */
	__u8 returns;         /* enum memleak_returns: how the outermost call reports its block */
	__u8 old_recorded;    /* old_record holds a record to put back if the call fails */
};

/* How an allocator function returns its block. One return program serves them all (it takes the
 * stack, and each program that unwinds costs its own verification at start-up). */
enum memleak_returns {
	MEMLEAK_RETURNS_POINTER = 0,        /* the block, NULL on failure */
	MEMLEAK_RETURNS_MAPPING = 1,        /* mmap, mremap: MAP_FAILED ((void *)-1) on failure */
	MEMLEAK_RETURNS_THROUGH_POINTER = 2 /* posix_memalign: 0, the block stored through its argument */
};

/* -t/--trace: one record per allocation or free, through the `events` ring buffer. */
enum memleak_call_kind {
	MEMLEAK_CALL_ALLOC = 0,
	MEMLEAK_CALL_FREE = 1,
};

struct memleak_call_event {
	__u32 kind;
	__u32 pid;
	__u32 tid;
	__u32 pad;
	__u64 address;
	__u64 size; /* free: the size recorded at allocation, 0 when the block was not tracked */
};

#endif
