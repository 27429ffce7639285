// SPDX-License-Identifier: GPL-2.0
/* memleak, kernel mode: the kmem and percpu tracepoints, as BCC's memleak uses them, with kernel
 * stacks. Allocations pass the -p/--comm/--cgroup filters of the allocating task; frees are never
 * filtered, since kernel memory is often freed by another task (RCU callbacks, kworkers).
 *
 * Layouts differ between kernels, and each difference is told apart without version checks:
 *  - tp_btf/raw_tp argument lists. kmalloc is (call_site, ptr, bytes_req, bytes_alloc, gfp_flags[, node])
 *    up to 5.18 and since 6.1, but (call_site, ptr, struct kmem_cache *s, bytes_req, bytes_alloc,
 *    gfp_flags) in 5.19-6.0. kmem_cache_alloc is (call_site, ptr, bytes_req, bytes_alloc, ...) up
 *    to 5.18 and has the cache third since 5.19 (in 6.1+ it no longer passes sizes at all:
 *    (call_site, ptr, s, gfp_flags, node)). User space reads the prototypes from BTF and sets
 *    the *_passes_cache flags. (6.1 and 6.18 have the same prototypes; what differs there is
 *    what the verifier accepts, see copied_arg.)
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
	if (!ptr || !memscope_current_wanted() || !memleak_should_track(bytes))
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

/* ---- tp_btf and raw_tp ----
 * Both pass the tracepoint's arguments as an array of u64; one body serves both.
 *
 * Arguments are copied out of that array with bpf_probe_read_kernel, not loaded from it, where
 *  - the argument is a `const void *` (kmalloc, kmem_cache_alloc, kfree, kmem_cache_free): the 6.1
 *    verifier resolves a tp_btf context load through the argument's BTF type and rejects a pointer
 *    to const-qualified void ("func 'kmalloc' arg1 type UNKNOWN is not a struct"); later kernels
 *    accept it;
 *  - the index depends on the layout flags: the compiler turns `flag ? args[4] : args[3]` into a
 *    load at a computed offset, which no verifier accepts from the context.
 * A copy goes through neither check, on any kernel. */
static __always_inline __u64 copied_arg(__u64 *args, int index)
{
	__u64 value = 0;
	bpf_probe_read_kernel(&value, sizeof(value), &args[index]);
	return value;
}

static __always_inline int on_kmalloc(void *ctx, __u64 *args)
{
	/* bytes_alloc: 4th argument, or 5th where the cache is passed third */
	__u64 bytes = copied_arg(args, kmalloc_passes_cache ? 4 : 3);
	return record_kernel_allocation(ctx, (const void *)copied_arg(args, 1), bytes);
}

static __always_inline int on_kmem_cache_alloc(void *ctx, __u64 *args)
{
	const void *object = (const void *)copied_arg(args, 1);
	if (kmem_cache_alloc_passes_cache) {
		struct kmem_cache *cache = (void *)copied_arg(args, 2);
		return record_kernel_allocation(ctx, object, BPF_CORE_READ(cache, size));
	}
	return record_kernel_allocation(ctx, object, copied_arg(args, 3));
}

/* kfree and kmem_cache_free: (call_site, ptr, ...) on every kernel. */
static __always_inline int on_slab_free(void *ctx, __u64 *args)
{
	return forget_kernel_allocation((const void *)copied_arg(args, 1));
}

/* Pages are keyed by their struct page pointer here, by pfn on the classic tracepoints; the
 * alloc and free programs of one alternative always attach together. */
static __always_inline int on_page_alloc(void *ctx, __u64 *args)
{
	return record_kernel_allocation(ctx, (const void *)args[0], page_size << (__u32)args[1]);
}

static __always_inline int on_page_free(void *ctx, __u64 *args)
{
	return forget_kernel_allocation((const void *)args[0]);
}

static __always_inline int on_percpu_alloc(void *ctx, __u64 *args)
{
	/* 6.0+: (call_site, reserved, is_atomic, size, align, base_addr, off, ptr, bytes_alloc, gfp);
	 * before: (reserved, is_atomic, size, align, base_addr, off, ptr). */
	if (percpu_alloc_passes_call_site)
		return record_kernel_allocation(ctx, (const void *)copied_arg(args, 7), copied_arg(args, 8));
	return record_kernel_allocation(ctx, (const void *)copied_arg(args, 6), copied_arg(args, 2));
}

static __always_inline int on_percpu_free(void *ctx, __u64 *args)
{
	/* (base_addr, off, ptr) */
	return forget_kernel_allocation((const void *)args[2]);
}

/* memleak_<name>_btf and memleak_<name>_raw_tp: the same body on either hook. */
#define MEMLEAK_TRACEPOINT_ARGS_PROGRAMS(name, body)                                           \
	SEC("tp_btf")                                                                          \
	int memleak_##name##_btf(__u64 *ctx)                                                   \
	{                                                                                      \
		return body(ctx, ctx);                                                         \
	}                                                                                      \
	SEC("raw_tp")                                                                          \
	int memleak_##name##_raw_tp(struct bpf_raw_tracepoint_args *ctx)                       \
	{                                                                                      \
		return body(ctx, ctx->args);                                                   \
	}

MEMLEAK_TRACEPOINT_ARGS_PROGRAMS(kmalloc, on_kmalloc)
MEMLEAK_TRACEPOINT_ARGS_PROGRAMS(kmalloc_node, on_kmalloc)
MEMLEAK_TRACEPOINT_ARGS_PROGRAMS(kmem_cache_alloc, on_kmem_cache_alloc)
MEMLEAK_TRACEPOINT_ARGS_PROGRAMS(kmem_cache_alloc_node, on_kmem_cache_alloc)
MEMLEAK_TRACEPOINT_ARGS_PROGRAMS(kfree, on_slab_free)
MEMLEAK_TRACEPOINT_ARGS_PROGRAMS(kmem_cache_free, on_slab_free)
MEMLEAK_TRACEPOINT_ARGS_PROGRAMS(page_alloc, on_page_alloc)
MEMLEAK_TRACEPOINT_ARGS_PROGRAMS(page_free, on_page_free)
MEMLEAK_TRACEPOINT_ARGS_PROGRAMS(percpu_alloc, on_percpu_alloc)
MEMLEAK_TRACEPOINT_ARGS_PROGRAMS(percpu_free, on_percpu_free)

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
