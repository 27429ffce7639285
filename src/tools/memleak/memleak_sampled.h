/* memleak --sample-bytes: records shared by memleak_sampled.bpf.c and user space. */
#ifndef MEMSCOPE_MEMLEAK_SAMPLED_H
#define MEMSCOPE_MEMLEAK_SAMPLED_H

#include "memscope_shared.h"

/* alloc_totals counts allocations in units of 1/MEMLEAK_COUNT_SCALE (a sample of weight w and
 * size n stands for w/n allocations, rarely a whole number). */
#define MEMLEAK_COUNT_SCALE 1024

/* Value of `alloc_totals`, keyed by stack id: everything allocated since tracing began. */
struct memleak_sampled_total {
	__u64 bytes;        /* sum of the samples' weights */
	__u64 scaled_count; /* sum of weight * MEMLEAK_COUNT_SCALE / size */
	__u64 samples;
};

#endif
