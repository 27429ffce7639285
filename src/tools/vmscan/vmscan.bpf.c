// SPDX-License-Identifier: GPL-2.0
/* vmscan: time spent shrinking slab caches, in direct reclaim and in memory cgroup reclaim, kswapd
 * wake-ups and pages written by reclaim, from the vmscan tracepoints (the book's vmscan.bt).
 *
 * Every hook here is a tracepoint, offered in three flavours (tp_btf, raw_tp, classic) with the
 * same body: none of the programs reads a tracepoint argument, so the arguments' layout, which did
 * change (the book's mm_vmscan_writepage(struct page *) became mm_vmscan_write_folio(struct folio *)
 * when pageout() moved to folios, before 6.1), does not matter. Begin and end are paired by thread
 * id: each phase runs in one task. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "memscope.bpf.h"
#include "vmscan.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct vmscan_start_key);
	__type(value, __u64);
} phase_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vmscan_totals);
} totals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VMSCAN_PHASES * VMSCAN_HIST_BUCKETS);
	__type(key, __u32);
	__type(value, __u64);
} latency_hist SEC(".maps");

/* Number of significant bits: 0 for 0, 1 for 1, 2 for 2..3, …; the bucket rule of
 * output/histogram.hpp's log2_bucket(). */
static __always_inline __u32 significant_bits(__u64 value)
{
	__u32 bits = 0;
	if (value >> 32) {
		value >>= 32;
		bits += 32;
	}
	if (value >> 16) {
		value >>= 16;
		bits += 16;
	}
	if (value >> 8) {
		value >>= 8;
		bits += 8;
	}
	if (value >> 4) {
		value >>= 4;
		bits += 4;
	}
	if (value >> 2) {
		value >>= 2;
		bits += 2;
	}
	if (value >> 1) {
		value >>= 1;
		bits += 1;
	}
	return bits + (__u32)value;
}

static __always_inline struct vmscan_totals *cpu_totals(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&totals, &zero);
}

static __always_inline int phase_begin(__u32 phase)
{
	if (!memscope_current_wanted())
		return 0;
	struct vmscan_start_key key = {.tid = (__u32)bpf_get_current_pid_tgid(), .phase = phase};
	__u64 now = bpf_ktime_get_ns();
	memscope_update_or_count(&phase_start, &key, &now, BPF_ANY);
	return 0;
}

static __always_inline int phase_end(__u32 phase)
{
	struct vmscan_start_key key = {.tid = (__u32)bpf_get_current_pid_tgid(), .phase = phase};
	__u64 *start = bpf_map_lookup_elem(&phase_start, &key);
	if (!start)
		return 0; /* began before we attached, or filtered out */
	__u64 elapsed = bpf_ktime_get_ns() - *start;
	bpf_map_delete_elem(&phase_start, &key);

	struct vmscan_totals *sums = cpu_totals();
	if (sums && phase < VMSCAN_PHASES) {
		sums->phase_ns[phase] += elapsed;
		sums->phase_count[phase] += 1;
	}
	__u32 bucket = significant_bits(elapsed);
	if (bucket >= VMSCAN_HIST_BUCKETS)
		bucket = VMSCAN_HIST_BUCKETS - 1;
	__u32 slot = phase * VMSCAN_HIST_BUCKETS + bucket;
	__u64 *count = bpf_map_lookup_elem(&latency_hist, &slot);
	if (count)
		*count += 1;
	return 0;
}

static __always_inline int count_kswapd_wakeup(void)
{
	if (!memscope_current_wanted())
		return 0;
	struct vmscan_totals *sums = cpu_totals();
	if (sums)
		sums->kswapd_wakeups += 1;
	return 0;
}

static __always_inline int count_reclaim_write(void)
{
	if (!memscope_current_wanted())
		return 0;
	struct vmscan_totals *sums = cpu_totals();
	if (sums)
		sums->reclaim_writes += 1;
	return 0;
}

/* One handler, three program flavours; user space keeps the one the kernel offers. */
#define VMSCAN_TRACEPOINT_PROGRAMS(name, handler)                                                  \
	SEC("tp_btf")                                                                              \
	int name##_tp_btf(void *ctx)                                                               \
	{                                                                                          \
		return handler;                                                                    \
	}                                                                                          \
	SEC("raw_tp")                                                                              \
	int name##_raw_tp(void *ctx)                                                               \
	{                                                                                          \
		return handler;                                                                    \
	}                                                                                          \
	SEC("tracepoint")                                                                          \
	int name##_tracepoint(void *ctx)                                                           \
	{                                                                                          \
		return handler;                                                                    \
	}

VMSCAN_TRACEPOINT_PROGRAMS(vmscan_slab_start, phase_begin(VMSCAN_SLAB_SHRINK))
VMSCAN_TRACEPOINT_PROGRAMS(vmscan_slab_end, phase_end(VMSCAN_SLAB_SHRINK))
VMSCAN_TRACEPOINT_PROGRAMS(vmscan_direct_begin, phase_begin(VMSCAN_DIRECT_RECLAIM))
VMSCAN_TRACEPOINT_PROGRAMS(vmscan_direct_end, phase_end(VMSCAN_DIRECT_RECLAIM))
VMSCAN_TRACEPOINT_PROGRAMS(vmscan_memcg_begin, phase_begin(VMSCAN_MEMCG_RECLAIM))
VMSCAN_TRACEPOINT_PROGRAMS(vmscan_memcg_end, phase_end(VMSCAN_MEMCG_RECLAIM))
VMSCAN_TRACEPOINT_PROGRAMS(vmscan_kswapd_wakeup, count_kswapd_wakeup())
VMSCAN_TRACEPOINT_PROGRAMS(vmscan_write, count_reclaim_write())

char LICENSE[] SEC("license") = "GPL";
