// SPDX-License-Identifier: GPL-2.0
/* memleak --sample-bytes: the probes of libmemscope-sampler.so (or of any allocator that emits
 * them natively), ddheap:alloc(ptr, size, weight) and ddheap:free(ptr), fired in the process for
 * sampled blocks only (docs/sampled-heap.md). A sample goes into the same `allocs` map as a
 * full-fidelity allocation (so reports and the leak scan read it the same way), its weight (the
 * bytes it stands for) into `sample_weights`, and its weight into the per-stack `alloc_totals`
 * that are never decremented (Go's alloc_space). The user stack is taken at the probe: its first
 * frames are the sampler's own, which user space drops. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "memscope.bpf.h"
#include "memscope_unwind.bpf.h"
#include "memleak_maps.bpf.h"
#include "memleak_sampled.h"

/* Weight of each outstanding sample, by address; sized like `allocs` by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 18);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, __u64);
} sample_weights SEC(".maps");

/* Estimated bytes and allocations ever allocated, per stack id (MEMLEAK_NO_STACK: not captured). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384 + 2048 + 1);
	__type(key, __u32);
	__type(value, struct memleak_sampled_total);
} alloc_totals SEC(".maps");

static __always_inline void add_alloc_total(__s32 stack_id, __u64 size, __u64 weight)
{
	__u32 key = stack_id < 0 ? MEMLEAK_NO_STACK : (__u32)stack_id;
	struct memleak_sampled_total *total = bpf_map_lookup_elem(&alloc_totals, &key);
	if (!total) {
		struct memleak_sampled_total first = {};
		if (bpf_map_update_elem(&alloc_totals, &key, &first, BPF_NOEXIST) < 0 &&
		    !bpf_map_lookup_elem(&alloc_totals, &key)) {
			memscope_count_drop(MEMSCOPE_DROP_MAP_FULL);
			return;
		}
		total = bpf_map_lookup_elem(&alloc_totals, &key);
		if (!total)
			return;
	}
	__sync_fetch_and_add(&total->bytes, weight);
	/* Allocations this sample stands for, weight / size, in units of 1/MEMLEAK_COUNT_SCALE. */
	__sync_fetch_and_add(&total->scaled_count, size ? (weight * MEMLEAK_COUNT_SCALE + size / 2) / size : 0);
	__sync_fetch_and_add(&total->samples, 1);
}

SEC("usdt")
int memleak_sampled_alloc(struct pt_regs *ctx)
{
	if (!memscope_current_wanted())
		return 0;
	long address = 0, size = 0, weight = 0;
	bpf_usdt_arg(ctx, 0, &address);
	bpf_usdt_arg(ctx, 1, &size);
	bpf_usdt_arg(ctx, 2, &weight);
	if (!address)
		return 0;
	struct memleak_allocation info = {
		.size = (__u64)size,
		.timestamp_ns = bpf_ktime_get_ns(),
	};
	info.stack_id = memleak_stack_id(ctx, BPF_F_USER_STACK | BPF_F_FAST_STACK_CMP);
	__u64 key = (__u64)address, stored_weight = (__u64)weight;
	if (bpf_map_update_elem(&allocs, &key, &info, BPF_ANY) < 0 ||
	    bpf_map_update_elem(&sample_weights, &key, &stored_weight, BPF_ANY) < 0) {
		bpf_map_delete_elem(&allocs, &key);
		memscope_count_drop(MEMSCOPE_DROP_MAP_FULL);
		return 0;
	}
	add_alloc_total(info.stack_id, (__u64)size, stored_weight);
	if (trace_calls)
		memleak_emit_call(MEMLEAK_CALL_ALLOC, key, (__u64)size);
	return 0;
}

SEC("usdt")
int memleak_sampled_free(struct pt_regs *ctx)
{
	if (filter_tgid && (bpf_get_current_pid_tgid() >> 32) != filter_tgid)
		return 0;
	long address = 0;
	bpf_usdt_arg(ctx, 0, &address);
	if (!address)
		return 0;
	__u64 key = (__u64)address;
	bpf_map_delete_elem(&sample_weights, &key);
	memleak_forget(key);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
