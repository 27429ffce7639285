// SPDX-License-Identifier: GPL-2.0
/* memleak, kernel mode: the kmem and percpu tracepoints, as BCC's memleak uses them, with kernel
 * stacks. Allocations pass the -p/--comm/--cgroup filters of the allocating task; frees are never
 * filtered, since kernel memory is often freed by another task (RCU callbacks, kworkers).
 *
 * Layouts differ between kernels, and each difference is told apart without version checks:
 *  - tp_btf argument lists. kmalloc is (call_site, ptr, bytes_req, bytes_alloc, gfp_flags[, node])
 *    up to 5.18 and since 6.1, but (call_site, ptr, struct kmem_cache *s, bytes_req, bytes_alloc,
 *    gfp_flags) in 5.19-6.0. kmem_cache_alloc is (call_site, ptr, bytes_req, bytes_alloc, ...) up
 *    to 5.18 and has the cache third since 5.19 (in 6.1+ it no longer passes sizes at all:
 *    (call_site, ptr, s, gfp_flags, node)). User space reads the prototypes from BTF and sets
 *    the *_passes_cache flags.
 *  - kmalloc_node and kmem_cache_alloc_node exist up to 6.0 only (merged into kmalloc and
 *    kmem_cache_alloc in 6.1): optional programs.
 *  - classic tracepoint records: 6.1+ has trace_event_raw_kmalloc / trace_event_raw_kmem_cache_alloc,
 *    older kernels the shared trace_event_raw_kmem_alloc(_node) class (CO-RE type checks).
 *  - percpu_alloc_percpu gained call_site, bytes_alloc and gfp_flags in 6.0. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "memscope.bpf.h"
#include "memleak_maps.bpf.h"

const volatile bool kmalloc_passes_cache = false;
const volatile bool kmem_cache_alloc_passes_cache = true;
const volatile bool percpu_alloc_passes_call_site = true;
const volatile __u64 page_size = 4096;
/* memscope itself: its own allocations (reading maps, /proc) are not what the user is after. */
const volatile __u32 ignored_tgid = 0;

/* Classic tracepoint records of kernels before 6.1 (the ___pre61 suffix is dropped by CO-RE). */
struct trace_event_raw_kmem_alloc___pre61 {
	unsigned long call_site;
	const void *ptr;
	size_t bytes_req;
	size_t bytes_alloc;
} __attribute__((preserve_access_index));

struct trace_event_raw_kmem_alloc_node___pre61 {
	unsigned long call_site;
	const void *ptr;
	size_t bytes_req;
	size_t bytes_alloc;
} __attribute__((preserve_access_index));

/* percpu_alloc_percpu before 6.0: no bytes_alloc, the request size only. */
struct trace_event_raw_percpu_alloc_percpu___pre60 {
	size_t size;
	void *ptr;
} __attribute__((preserve_access_index));

static __always_inline int record_kernel_allocation(void *ctx, const void *ptr, __u64 bytes)
{
	if (!ptr || (bpf_get_current_pid_tgid() >> 32) == ignored_tgid || !memscope_current_wanted() ||
	    !memleak_should_track(bytes))
		return 0;
	memleak_record(ctx, (__u64)ptr, bytes, 0);
	return 0;
}

static __always_inline int forget_kernel_allocation(const void *ptr)
{
	if (ptr)
		memleak_forget((__u64)ptr);
	return 0;
}

/* ---- tp_btf ---- */

SEC("tp_btf")
int memleak_kmalloc_btf(__u64 *ctx)
{
	if (kmalloc_passes_cache)
		return record_kernel_allocation(ctx, (const void *)ctx[1], ctx[4]);
	return record_kernel_allocation(ctx, (const void *)ctx[1], ctx[3]);
}

SEC("tp_btf")
int memleak_kmalloc_node_btf(__u64 *ctx)
{
	if (kmalloc_passes_cache)
		return record_kernel_allocation(ctx, (const void *)ctx[1], ctx[4]);
	return record_kernel_allocation(ctx, (const void *)ctx[1], ctx[3]);
}

static __always_inline int record_cache_allocation_btf(__u64 *ctx)
{
	if (kmem_cache_alloc_passes_cache) {
		struct kmem_cache *cache = (void *)ctx[2];
		return record_kernel_allocation(ctx, (const void *)ctx[1], BPF_CORE_READ(cache, size));
	}
	return record_kernel_allocation(ctx, (const void *)ctx[1], ctx[3]);
}

SEC("tp_btf")
int memleak_kmem_cache_alloc_btf(__u64 *ctx)
{
	return record_cache_allocation_btf(ctx);
}

SEC("tp_btf")
int memleak_kmem_cache_alloc_node_btf(__u64 *ctx)
{
	return record_cache_allocation_btf(ctx);
}

/* kfree and kmem_cache_free: (call_site, ptr, ...) on every kernel. */
SEC("tp_btf")
int memleak_kfree_btf(__u64 *ctx)
{
	return forget_kernel_allocation((const void *)ctx[1]);
}

SEC("tp_btf")
int memleak_kmem_cache_free_btf(__u64 *ctx)
{
	return forget_kernel_allocation((const void *)ctx[1]);
}

/* Pages are keyed by their struct page pointer here, by pfn on the classic tracepoints; the
 * alloc and free programs of one alternative always attach together. */
SEC("tp_btf")
int memleak_page_alloc_btf(__u64 *ctx)
{
	return record_kernel_allocation(ctx, (const void *)ctx[0], page_size << (__u32)ctx[1]);
}

SEC("tp_btf")
int memleak_page_free_btf(__u64 *ctx)
{
	return forget_kernel_allocation((const void *)ctx[0]);
}

SEC("tp_btf")
int memleak_percpu_alloc_btf(__u64 *ctx)
{
	/* 6.0+: (call_site, reserved, is_atomic, size, align, base_addr, off, ptr, bytes_alloc, gfp);
	 * before: (reserved, is_atomic, size, align, base_addr, off, ptr). */
	if (percpu_alloc_passes_call_site)
		return record_kernel_allocation(ctx, (const void *)ctx[7], ctx[8]);
	return record_kernel_allocation(ctx, (const void *)ctx[6], ctx[2]);
}

SEC("tp_btf")
int memleak_percpu_free_btf(__u64 *ctx)
{
	/* (base_addr, off, ptr) */
	return forget_kernel_allocation((const void *)ctx[2]);
}

/* ---- classic tracepoints ---- */

SEC("tracepoint")
int memleak_kmalloc_tp(void *ctx)
{
	if (bpf_core_type_exists(struct trace_event_raw_kmalloc)) {
		struct trace_event_raw_kmalloc *args = ctx;
		return record_kernel_allocation(ctx, BPF_CORE_READ(args, ptr), BPF_CORE_READ(args, bytes_alloc));
	}
	struct trace_event_raw_kmem_alloc___pre61 *args = ctx;
	return record_kernel_allocation(ctx, BPF_CORE_READ(args, ptr), BPF_CORE_READ(args, bytes_alloc));
}

SEC("tracepoint")
int memleak_kmalloc_node_tp(void *ctx)
{
	struct trace_event_raw_kmem_alloc_node___pre61 *args = ctx;
	return record_kernel_allocation(ctx, BPF_CORE_READ(args, ptr), BPF_CORE_READ(args, bytes_alloc));
}

SEC("tracepoint")
int memleak_kmem_cache_alloc_tp(void *ctx)
{
	if (bpf_core_type_exists(struct trace_event_raw_kmem_cache_alloc)) {
		struct trace_event_raw_kmem_cache_alloc *args = ctx;
		return record_kernel_allocation(ctx, BPF_CORE_READ(args, ptr), BPF_CORE_READ(args, bytes_alloc));
	}
	struct trace_event_raw_kmem_alloc___pre61 *args = ctx;
	return record_kernel_allocation(ctx, BPF_CORE_READ(args, ptr), BPF_CORE_READ(args, bytes_alloc));
}

SEC("tracepoint")
int memleak_kmem_cache_alloc_node_tp(void *ctx)
{
	struct trace_event_raw_kmem_alloc_node___pre61 *args = ctx;
	return record_kernel_allocation(ctx, BPF_CORE_READ(args, ptr), BPF_CORE_READ(args, bytes_alloc));
}

SEC("tracepoint")
int memleak_kfree_tp(struct trace_event_raw_kfree *args)
{
	return forget_kernel_allocation(BPF_CORE_READ(args, ptr));
}

SEC("tracepoint")
int memleak_kmem_cache_free_tp(struct trace_event_raw_kmem_cache_free *args)
{
	return forget_kernel_allocation(BPF_CORE_READ(args, ptr));
}

SEC("tracepoint")
int memleak_page_alloc_tp(struct trace_event_raw_mm_page_alloc *args)
{
	__u64 pfn = BPF_CORE_READ(args, pfn);
	/* A failed allocation is traced with pfn -1UL (page_to_pfn of no page is not taken). */
	if (pfn == (__u64)-1)
		return 0;
	return record_kernel_allocation(args, (const void *)pfn, page_size << BPF_CORE_READ(args, order));
}

SEC("tracepoint")
int memleak_page_free_tp(struct trace_event_raw_mm_page_free *args)
{
	return forget_kernel_allocation((const void *)BPF_CORE_READ(args, pfn));
}

SEC("tracepoint")
int memleak_percpu_alloc_tp(void *ctx)
{
	struct trace_event_raw_percpu_alloc_percpu *args = ctx;
	if (bpf_core_field_exists(args->bytes_alloc))
		return record_kernel_allocation(ctx, BPF_CORE_READ(args, ptr), BPF_CORE_READ(args, bytes_alloc));
	struct trace_event_raw_percpu_alloc_percpu___pre60 *old = ctx;
	return record_kernel_allocation(ctx, BPF_CORE_READ(old, ptr), BPF_CORE_READ(old, size));
}

SEC("tracepoint")
int memleak_percpu_free_tp(struct trace_event_raw_percpu_free_percpu *args)
{
	return forget_kernel_allocation(BPF_CORE_READ(args, ptr));
}

char LICENSE[] SEC("license") = "GPL";
