/* memleak: the outstanding-allocation bookkeeping shared by the user-mode (uprobe) and kernel-mode
 * (tracepoint) programs. Include after vmlinux.h, the libbpf headers and memscope.bpf.h.
 *
 * Per call the work is kept to the minimum: an allocation is one hash update (plus the stack id),
 * a free one hash delete. Only --combined-only and -t need the freed block's size, and only they
 * pay for a lookup on free. */
#ifndef MEMSCOPE_MEMLEAK_MAPS_BPF_H
#define MEMSCOPE_MEMLEAK_MAPS_BPF_H

#include "memleak.h"

/* Set by user space before load. */
const volatile bool combined_only = false; /* keep per-stack totals in the kernel */
const volatile bool trace_calls = false;   /* -t: one ring buffer record per call */
const volatile __u64 sample_every = 1;     /* -s: track every Nth allocation */
const volatile __u64 min_size = 0;         /* -z */
const volatile __u64 max_size = ~0ULL;     /* -Z */

/* Outstanding allocations by address. In user mode not preallocated: user space sizes it for the
 * worst case (--max-allocations) and the kernel only spends memory on what is outstanding. Kernel
 * mode preallocates it (see memleak.cpp). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 18);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct memleak_allocation);
} allocs SEC(".maps");

/* --combined-only: outstanding bytes and count per stack id (MEMLEAK_NO_STACK for stacks that
 * were not captured). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384 + 2048 + 1);
	__type(key, __u32);
	__type(value, struct memleak_stack_total);
} stack_totals SEC(".maps");

MEMSCOPE_STACK_MAP(stacks, MEMLEAK_STACK_MAP_ENTRIES);

/* A stack trace map stores a stack in the bucket its hash selects (low bits of a jhash of the
 * addresses) and refuses (-EEXIST) a stack whose bucket holds another one; without
 * BPF_F_REUSE_STACKID (which would silently rewrite the stack of every allocation recorded with
 * that id) such a stack would be lost for the whole run. A second stack trace map would not help:
 * its buckets would be chosen by fewer low bits of the same hash, so two stacks that share a bucket
 * in `stacks` share one there too. Such stacks are stored here instead, under a hash of their own
 * (FNV-1a of the addresses, linear probing), whose ids carry MEMLEAK_OVERFLOW_STACK. Preallocated:
 * kernel mode must not allocate on update (see memleak.cpp). User space deletes entries no
 * outstanding allocation uses, as it does in `stacks`. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MEMLEAK_OVERFLOW_STACKS);
	__type(key, __u32);
	__type(value, struct memleak_overflow_stack);
} overflow_stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct memleak_overflow_stack);
} overflow_scratch SEC(".maps");

/* The kernel has bpf_loop: the verifier checks the hashing step a few times instead of once per
 * possible frame (127), which cost ~1.7k verified instructions in every allocation program. */
const volatile bool hash_with_bpf_loop = false;

struct memleak_overflow_hashing {
	struct memleak_overflow_stack *stack;
	__u64 id_hash;
};

static __always_inline void memleak_overflow_mix(struct memleak_overflow_hashing *hashing, __u64 address)
{
	hashing->id_hash = (hashing->id_hash ^ address) * 0x100000001b3ULL;
	hashing->id_hash ^= hashing->id_hash >> 31;
	hashing->stack->check = (hashing->stack->check ^ address) * 0x9e3779b97f4a7c15ULL;
	hashing->stack->check ^= hashing->stack->check >> 29;
}

static long memleak_overflow_hash_frame(__u32 frame, void *context)
{
	struct memleak_overflow_hashing *hashing = context;
	if (frame >= MEMSCOPE_MAX_STACK_DEPTH)
		return 1;
	memleak_overflow_mix(hashing, hashing->stack->addresses[frame]);
	return 0;
}

/* FNV-style hashes of the addresses: the id's (returned, folded to 32 bits) and stack->check. */
static __always_inline __u32 memleak_overflow_hash(struct memleak_overflow_stack *stack)
{
	struct memleak_overflow_hashing hashing = {.stack = stack, .id_hash = 0x84222325cbf29ce4ULL ^ stack->frames};
	stack->check = 0xcbf29ce484222325ULL;
	if (hash_with_bpf_loop) {
		bpf_loop(stack->frames, memleak_overflow_hash_frame, &hashing, 0);
	} else {
		for (int i = 0; i < MEMSCOPE_MAX_STACK_DEPTH; i++) {
			if (i >= stack->frames)
				break;
			memleak_overflow_mix(&hashing, stack->addresses[i]);
		}
	}
	return (__u32)(hashing.id_hash ^ (hashing.id_hash >> 32));
}

/* Stores the stack in this CPU's overflow_scratch (once) and returns its id with
 * MEMLEAK_OVERFLOW_STACK set, or -1 (the map is full or the probes found only other stacks). A
 * global function: the verifier checks the probes once per program rather than on each path that
 * stores a stack. It looks the scratch up itself: 6.1 refuses a bpf_loop context that holds the
 * memory pointer a global function gets as argument. */
__noinline __s32 memleak_overflow_store(void)
{
	__u32 zero = 0;
	struct memleak_overflow_stack *stack = bpf_map_lookup_elem(&overflow_scratch, &zero);
	if (!stack)
		return -1;
	__u32 hash = memleak_overflow_hash(stack);
	for (int probe = 0; probe < MEMLEAK_OVERFLOW_PROBES; probe++) {
		__u32 id = (hash + probe) & MEMLEAK_OVERFLOW_ID_MASK;
		struct memleak_overflow_stack *stored = bpf_map_lookup_elem(&overflow_stacks, &id);
		if (!stored) {
			if (bpf_map_update_elem(&overflow_stacks, &id, stack, BPF_NOEXIST) == 0)
				return (__s32)(id | MEMLEAK_OVERFLOW_STACK);
			stored = bpf_map_lookup_elem(&overflow_stacks, &id);
			if (!stored)
				return -1; /* full */
		}
		if (stored->frames == stack->frames && stored->check == stack->check)
			return (__s32)(id | MEMLEAK_OVERFLOW_STACK);
	}
	return -1;
}

/* The id of the current stack in `overflow_stacks` (MEMLEAK_OVERFLOW_STACK set), or -1. */
static __always_inline __s32 memleak_overflow_stack_id(void *ctx, __u64 stack_flags)
{
	__u32 zero = 0;
	struct memleak_overflow_stack *stack = bpf_map_lookup_elem(&overflow_scratch, &zero);
	if (!stack)
		return -1;
	long bytes = bpf_get_stack(ctx, stack->addresses, sizeof(stack->addresses),
				   stack_flags & (BPF_F_USER_STACK | BPF_F_SKIP_FIELD_MASK));
	if (bytes <= 0)
		return -1;
	stack->frames = (__u64)bytes / sizeof(__u64);
	return memleak_overflow_store();
}

/* Allocations recorded at an address that still held a recorded block: that block's free was
 * missed (a free the probes did not see: BPF recursion protection in kernel mode, a free through a
 * function not probed). Per CPU, summed by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} missed_frees SEC(".maps");

/* -s: a per-CPU counter of allocation calls; every sample_every-th one is tracked. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sample_counter SEC(".maps");

static __always_inline bool memleak_should_track(__u64 size)
{
	if (size < min_size || size > max_size)
		return false;
	if (sample_every > 1) {
		__u32 zero = 0;
		__u64 *calls = bpf_map_lookup_elem(&sample_counter, &zero);
		if (!calls)
			return false;
		*calls += 1;
		if (*calls % sample_every)
			return false;
	}
	return true;
}

static __always_inline void memleak_add_to_stack_total(__s32 stack_id, __u64 bytes)
{
	__u32 key = stack_id < 0 ? MEMLEAK_NO_STACK : (__u32)stack_id;
	struct memleak_stack_total *total = bpf_map_lookup_elem(&stack_totals, &key);
	if (!total) {
		struct memleak_stack_total first = {};
		/* Two CPUs may insert the same stack at once: the loser adds to the winner's entry. */
		if (bpf_map_update_elem(&stack_totals, &key, &first, BPF_NOEXIST) < 0 &&
		    !bpf_map_lookup_elem(&stack_totals, &key)) {
			memscope_count_drop(MEMSCOPE_DROP_MAP_FULL);
			return;
		}
		total = bpf_map_lookup_elem(&stack_totals, &key);
		if (!total)
			return;
	}
	__sync_fetch_and_add(&total->bytes, bytes);
	__sync_fetch_and_add(&total->count, 1);
}

static __always_inline void memleak_subtract_from_stack_total(__s32 stack_id, __u64 bytes)
{
	__u32 key = stack_id < 0 ? MEMLEAK_NO_STACK : (__u32)stack_id;
	struct memleak_stack_total *total = bpf_map_lookup_elem(&stack_totals, &key);
	if (!total)
		return;
	__sync_fetch_and_sub(&total->bytes, bytes);
	__sync_fetch_and_sub(&total->count, 1);
}

static __always_inline void memleak_emit_call(__u32 kind, __u64 address, __u64 size)
{
	struct memleak_call_event *event = memscope_reserve(sizeof(*event));
	if (!event)
		return;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	event->kind = kind;
	event->pid = pid_tgid >> 32;
	event->tid = (__u32)pid_tgid;
	event->pad = 0;
	event->address = address;
	event->size = size;
	bpf_ringbuf_submit(event, 0);
}

/* The stack id of the current allocation: -1 (counted) when neither map could store it. */
static __always_inline __s32 memleak_stack_id(void *ctx, __u64 stack_flags)
{
#ifdef MEMSCOPE_UNWIND_BPF_H
	/* User mode with --stack-mode dwarf: the unwinder stores stacks under hashed ids itself. */
	if (unwind_with_cfi && (stack_flags & BPF_F_USER_STACK))
		return memscope_user_stack_id(ctx, &stacks, stack_flags);
#endif
	long id = bpf_get_stackid(ctx, &stacks, stack_flags);
	if (id >= 0)
		return (__s32)id;
	id = memleak_overflow_stack_id(ctx, stack_flags);
	if (id >= 0)
		return (__s32)id;
	memscope_count_drop(MEMSCOPE_DROP_STACK);
	return -1;
}

/* The block at `address`, whose record (NULL: none) the caller looked up, is gone. */
static __always_inline void memleak_forget_record(__u64 address, struct memleak_allocation *info)
{
	__u64 size = 0;
	if (info) {
		size = info->size;
		if (combined_only)
			memleak_subtract_from_stack_total(info->stack_id, info->size);
		bpf_map_delete_elem(&allocs, &address);
	}
	if (trace_calls)
		memleak_emit_call(MEMLEAK_CALL_FREE, address, size);
}

/* A block is gone (free, munmap, kfree, page free). */
static __always_inline void memleak_forget(__u64 address)
{
	if (!combined_only && !trace_calls) {
		bpf_map_delete_elem(&allocs, &address);
		return;
	}
	memleak_forget_record(address, bpf_map_lookup_elem(&allocs, &address));
}

/* `record` is in `allocs` now: --combined-only's per-stack totals and -t follow. */
static __always_inline void memleak_recorded(__u64 address, struct memleak_allocation *record)
{
	if (combined_only)
		memleak_add_to_stack_total(record->stack_id, record->size);
	if (trace_calls)
		memleak_emit_call(MEMLEAK_CALL_ALLOC, address, record->size);
}

/* A block of `size` bytes at `address` is now outstanding; stack_flags selects the user or the
 * kernel stack. */
static __always_inline void memleak_record(void *ctx, __u64 address, __u64 size, __u64 stack_flags)
{
	struct memleak_allocation info = {
		.size = size,
		.timestamp_ns = bpf_ktime_get_ns(),
	};
	info.stack_id = memleak_stack_id(ctx, stack_flags);
	if (combined_only) {
		/* A block still recorded at this address had its free missed: retract it first so
		 * that the per-stack totals stay exact. */
		struct memleak_allocation *stale = bpf_map_lookup_elem(&allocs, &address);
		if (stale)
			memleak_subtract_from_stack_total(stale->stack_id, stale->size);
	}
	long updated = bpf_map_update_elem(&allocs, &address, &info, BPF_NOEXIST);
	if (updated == -17 /* EEXIST */) {
		__u32 zero = 0;
		__u64 *missed = bpf_map_lookup_elem(&missed_frees, &zero);
		if (missed)
			*missed += 1;
		updated = bpf_map_update_elem(&allocs, &address, &info, BPF_ANY);
	}
	if (updated < 0) {
		memscope_count_drop(MEMSCOPE_DROP_MAP_FULL);
		return;
	}
	memleak_recorded(address, &info);
}

/* A realloc/mremap failed: its old block, whose record the entry took out, is still there. Its
 * stack id is the one it had; user space may have released that id meanwhile if no other block
 * used it (a report between the entry and the failed return), then the block shows without its
 * stack. */
static __always_inline void memleak_put_back(__u64 address, struct memleak_allocation *record)
{
	if (bpf_map_update_elem(&allocs, &address, record, BPF_NOEXIST) == 0)
		memleak_recorded(address, record);
}

#endif
