/* Which mapping (VMA) holds a user address, for tools hooked where only the address is known: the
 * page fault exception tracepoints (ffaults, hfaults). Include after memscope.bpf.h.
 *
 * bpf_find_vma() (5.17+) takes the mmap lock for reading. At the fault tracepoints interrupts are
 * off, so it defers the unlock to an IRQ-work self-interrupt, which costs as much as a fault or
 * more (several times slower faults in a VM). Consecutive faults mostly hit the same mapping, so
 * the answer is cached per (mm, tgid) and trusted while mm->mm_lock_seq has not moved: per-VMA
 * locking (6.4+) bumps it whenever the mmap lock is released after writing, i.e. after every
 * change to the VMA tree. Kernels without that counter look up every time.
 *
 * The deferred unlock uses one IRQ work per CPU: while it is pending, every other bpf_find_vma()
 * on that CPU fails with -EBUSY. That is the normal case when two BPF programs look up a mapping
 * in the same fault (ffaults and hfaults running at once): the second always finds the first's
 * unlock pending. It then walks the mm's maple tree itself, without the lock, the way the kernel
 * looks up a VMA under RCU for per-VMA locking, and trusts the answer only when mm_lock_seq was
 * the same, with no writer, before and after the walk (as the kernel's own speculative lookup for
 * uprobes does). What cannot be validated so is counted as unresolved, never silently lost. */
#ifndef MEMSCOPE_VMA_BPF_H
#define MEMSCOPE_VMA_BPF_H

#include "memscope_vma_shared.h"

#define MEMSCOPE_ENOENT 2
#define MEMSCOPE_EBUSY 16

enum memscope_vma_kind {
	MEMSCOPE_VMA_FILE = 0,  /* file-backed (including shmem, memfd) */
	MEMSCOPE_VMA_ANON = 1,  /* anonymous, outside heap and main stack */
	MEMSCOPE_VMA_HEAP = 2,  /* the brk heap, as /proc/PID/maps prints [heap] */
	MEMSCOPE_VMA_STACK = 3, /* the main thread's stack, as /proc/PID/maps prints [stack] */
};

struct memscope_vma {
	__u64 start;
	__u64 end;
	__u64 flags;       /* vm_flags */
	struct file *file; /* NULL for anonymous memory */
	__u32 kind;        /* enum memscope_vma_kind */
	__u32 lock_seq;    /* mm->mm_lock_seq when looked up */
};

struct memscope_vma_cache_key {
	__u64 mm;
	__u32 tgid;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct memscope_vma_cache_key);
	__type(value, struct memscope_vma);
} vma_cache SEC(".maps");

/* Lookups by how they were answered (enum memscope_vma_lookup_source): -v, and drops. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MEMSCOPE_VMA_LOOKUP_SOURCES);
	__type(key, __u32);
	__type(value, __u64);
} vma_lookups SEC(".maps");

/* 6.13+: seqcount_t; 6.4-6.12: int; before: absent. */
struct mm_struct___lock_seqcount {
	seqcount_t mm_lock_seq;
} __attribute__((preserve_access_index));
struct mm_struct___lock_seq_int {
	int mm_lock_seq;
} __attribute__((preserve_access_index));

/* rw_semaphore's count: bit 0 is set while a writer holds it (RWSEM_WRITER_LOCKED, since 4.20). */
#define MEMSCOPE_RWSEM_WRITER_LOCKED 1UL

/* false when the kernel has no such counter or a writer holds the mmap lock right now. */
static __always_inline bool memscope_mm_lock_seq(struct mm_struct *mm, __u32 *seq)
{
	if (bpf_core_field_exists(((struct mm_struct___lock_seqcount *)0)->mm_lock_seq)) {
		*seq = BPF_CORE_READ((struct mm_struct___lock_seqcount *)mm, mm_lock_seq.sequence);
		return !(*seq & 1); /* odd: write in progress */
	}
	if (bpf_core_field_exists(((struct mm_struct___lock_seq_int *)0)->mm_lock_seq)) {
		/* 6.4-6.12 bump the int when the writer unlocks, not when it locks: a writer that holds
		 * the lock now may be changing the tree under an unchanged count. */
		*seq = BPF_CORE_READ((struct mm_struct___lock_seq_int *)mm, mm_lock_seq);
		return !(BPF_CORE_READ(mm, mmap_lock.count.counter) & MEMSCOPE_RWSEM_WRITER_LOCKED);
	}
	return false;
}

static __always_inline void memscope_count_vma_lookup(__u32 slot)
{
	__u64 *counter = bpf_map_lookup_elem(&vma_lookups, &slot);
	if (counter)
		*counter += 1;
}

static __always_inline void memscope_vma_describe(struct vm_area_struct *vma, struct memscope_vma *out)
{
	out->start = BPF_CORE_READ(vma, vm_start);
	out->end = BPF_CORE_READ(vma, vm_end);
	out->flags = BPF_CORE_READ(vma, vm_flags);
	out->file = BPF_CORE_READ(vma, vm_file);
	if (out->file) {
		out->kind = MEMSCOPE_VMA_FILE;
		return;
	}
	/* The tests /proc/PID/maps uses for [heap] and [stack]. */
	struct mm_struct *mm = BPF_CORE_READ(vma, vm_mm);
	unsigned long start_stack = BPF_CORE_READ(mm, start_stack);
	if (out->start <= BPF_CORE_READ(mm, brk) && out->end >= BPF_CORE_READ(mm, start_brk))
		out->kind = MEMSCOPE_VMA_HEAP;
	else if (out->start <= start_stack && out->end >= start_stack)
		out->kind = MEMSCOPE_VMA_STACK;
	else
		out->kind = MEMSCOPE_VMA_ANON;
}

/* bpf_find_vma()'s callback. */
static long memscope_vma_fill(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	memscope_vma_describe(vma, data);
	return 0;
}

/* The maple tree's encoding (lib/maple_tree.c, include/linux/maple_tree.h, unchanged since 6.1):
 * a node pointer ("enode") is a 256-byte aligned node address with its type in bits 3-6; the root
 * pointer also has bit 1 set (an XArray-style internal entry). Leaves hold the VMA pointers, NULL
 * for the gaps between mappings. */
#define MEMSCOPE_MAPLE_NODE_MASK 255UL
#define MEMSCOPE_MAPLE_TYPE_SHIFT 3
#define MEMSCOPE_MAPLE_TYPE_MASK 0x0FUL
#define MEMSCOPE_MAPLE_LEAF_64 1
#define MEMSCOPE_MAPLE_RANGE_64 2
#define MEMSCOPE_MAPLE_ARANGE_64 3
#define MEMSCOPE_MAPLE_RANGE64_PIVOTS 15
#define MEMSCOPE_MAPLE_ARANGE64_PIVOTS 9
/* A tree of 65530 mappings (the default vm.max_map_count) is at most 7 levels high. */
#define MEMSCOPE_MAPLE_MAX_HEIGHT 10

static __always_inline bool memscope_maple_is_internal(__u64 entry)
{
	return (entry & 3) == 2;
}

/* The walk's state from one tree level to the next (a bpf_loop callback's context). */
struct memscope_maple_walk_state {
	__u64 address;
	__u64 entry;  /* the node to look into next */
	__u64 vma;    /* the answer, when result is 0 */
	long result;  /* -EBUSY until a leaf answers */
	__u32 range_pivots, range_slots, arange_pivots, arange_slots; /* field offsets */
};

/* One level of the walk: 0 to go down to state->entry, 1 when done (state->result says how). */
static long memscope_maple_walk_level(__u32 level, void *context)
{
	struct memscope_maple_walk_state *state = context;
	unsigned long pivots[MEMSCOPE_MAPLE_RANGE64_PIVOTS];
	__u64 entry = state->entry, address = state->address;
	if (entry <= 4096)
		return 1; /* an empty slot where a node was: a concurrent change */
	void *node = (void *)(entry & ~MEMSCOPE_MAPLE_NODE_MASK);
	__u32 type = (entry >> MEMSCOPE_MAPLE_TYPE_SHIFT) & MEMSCOPE_MAPLE_TYPE_MASK;
	if (type < MEMSCOPE_MAPLE_LEAF_64 || type > MEMSCOPE_MAPLE_ARANGE_64)
		return 1; /* dense nodes are not used by the mm tree */
	/* Without branches from here to the slot (memscope_at_least): an if/else per node type and a
	 * scan that breaks out gave the verifier paths to walk per pivot. */
	__u64 arange = type & (type >> 1) & 1; /* type 3 (ARANGE_64) of 1..3 */
	barrier_var(arange);
	__u32 pivots_at = state->range_pivots + (__u32)arange * (state->arange_pivots - state->range_pivots);
	__u32 slots = state->range_slots + (__u32)arange * (state->arange_slots - state->range_slots);
	if (bpf_probe_read_kernel(pivots, sizeof(pivots), node + pivots_at))
		return 1;
	/* The first slot whose pivot (inclusive upper bound) reaches the address, as
	 * mtree_lookup_walk() finds it: the number of pivots before the first one that reaches it.
	 * The node's last slot in use reaches its maximum: its pivot is 0 (implicit) or that maximum,
	 * and a 0 past the first pivot marks it (pivots in use only increase); past the node type's
	 * pivot count there is only the last slot. Unrolled, so that the verifier tracks no loop
	 * counter either. */
	__u64 offset = 0, not_reached = 1;
#pragma unroll
	for (__u32 i = 0; i < MEMSCOPE_MAPLE_RANGE64_PIVOTS; i++) {
		__u64 pivot = pivots[i], negated = 0 - pivot;
		barrier_var(negated); /* else clang sees pivot != 0, and branches */
		__u64 nonzero = (pivot | negated) >> 63;
		__u64 reached = memscope_at_least(pivot, address) | (i >= 1 ? nonzero ^ 1 : 0) |
				(i >= MEMSCOPE_MAPLE_ARANGE64_PIVOTS ? arange : 0);
		not_reached &= reached ^ 1;
		offset += not_reached;
	}
	__u64 next = 0;
	if (bpf_probe_read_kernel(&next, sizeof(next), node + slots + offset * sizeof(void *)))
		return 1;
	/* ma_dead_node(): a node replaced by a writer points to itself as its parent. */
	__u64 parent = 0;
	if (bpf_probe_read_kernel(&parent, sizeof(parent), node) || (parent & ~MEMSCOPE_MAPLE_NODE_MASK) == (__u64)node)
		return 1;
	if (type == MEMSCOPE_MAPLE_LEAF_64) {
		if (!memscope_maple_is_internal(next)) { /* else a marker (XA_ZERO_ENTRY of a failed fork) */
			state->vma = next;
			state->result = 0;
		}
		return 1;
	}
	state->entry = next;
	return 0;
}

/* mtree_lookup_walk() in BPF, in the current task's mm: the VMA that holds `address` in *vma (0 in
 * a gap between mappings), or -EBUSY when the tree is not laid out as expected (a node freed by a
 * concurrent writer, a kernel before the maple tree). Only meaningful when validated by the caller.
 * A global function, so that the verifier checks it once per program rather than once for every
 * path its callers reach it on; the levels are a bpf_loop (every kernel with bpf_find_vma, which
 * the callers need, has it), whose step the verifier checks a few times instead of once per level
 * (~4k instructions per program with ten unrolled levels). */
__noinline long memscope_maple_walk(__u64 address, __u64 *vma)
{
	struct mm_struct *mm = BPF_CORE_READ(bpf_get_current_task_btf(), mm); /* see memscope_vma_lookup() */
	if (!mm || !vma) /* the verifier checks a global function for any caller */
		return -MEMSCOPE_EBUSY;
	if (!bpf_core_field_exists(mm->mm_mt))
		return -MEMSCOPE_EBUSY;
	struct memscope_maple_walk_state state = {
		.address = address,
		.entry = (__u64)BPF_CORE_READ(mm, mm_mt.ma_root),
		.result = -MEMSCOPE_EBUSY,
		.range_pivots = bpf_core_field_offset(struct maple_range_64, pivot),
		.range_slots = bpf_core_field_offset(struct maple_range_64, slot),
		.arange_pivots = bpf_core_field_offset(struct maple_arange_64, pivot),
		.arange_slots = bpf_core_field_offset(struct maple_arange_64, slot),
	};
	/* A root that is no node holds index 0 only: never a user mapping. */
	if (!memscope_maple_is_internal(state.entry) || state.entry <= 4096)
		return -MEMSCOPE_EBUSY;
	bpf_loop(MEMSCOPE_MAPLE_MAX_HEIGHT, memscope_maple_walk_level, &state, 0);
	if (state.result == 0)
		*vma = state.vma;
	return state.result;
}

/* The lockless lookup for when bpf_find_vma() is busy: 0 and *out filled, -ENOENT in a gap,
 * -EBUSY when the answer cannot be trusted. */
static __always_inline long memscope_vma_walk_validated(struct mm_struct *mm, __u64 address,
							struct memscope_vma *out)
{
	__u32 before = 0, after = 0;
	if (!memscope_mm_lock_seq(mm, &before))
		return -MEMSCOPE_EBUSY;
	__u64 found = 0;
	long err = memscope_maple_walk(address, &found);
	struct vm_area_struct *vma = (struct vm_area_struct *)found;
	if (err == 0 && vma) {
		memscope_vma_describe(vma, out);
		if (address < out->start || address >= out->end)
			err = -MEMSCOPE_EBUSY;
	} else if (err == 0) {
		err = -MEMSCOPE_ENOENT;
	}
	/* Everything above was read while no writer held the mmap lock and none released it. */
	if (!memscope_mm_lock_seq(mm, &after) || after != before)
		return -MEMSCOPE_EBUSY;
	out->lock_seq = before;
	return err;
}

/* 0 and *out filled; -ENOENT when no mapping holds the address; -EBUSY when the lookup could not
 * be done (bpf_find_vma() busy and the lockless walk not validated), counted as unresolved. */
static __always_inline long memscope_vma_lookup(__u64 address, struct memscope_vma *out)
{
	/* The kernel half of the address space (x86-64, arm64): never a VMA, and not worth the lock. */
	if ((__s64)address < 0)
		return -MEMSCOPE_ENOENT;
	struct task_struct *task = bpf_get_current_task_btf();
	/* Read, not dereferenced: the verifier checks each load through a BTF pointer against the
	 * kernel's "__safe_trusted" types by name, a scan of all of vmlinux's BTF each time (~1 ms). */
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	if (!mm)
		return -MEMSCOPE_ENOENT;
	struct memscope_vma_cache_key key = {.mm = (__u64)mm, .tgid = BPF_CORE_READ(task, tgid)};
	__u32 seq = 0;
	bool seq_known = memscope_mm_lock_seq(mm, &seq);

	if (seq_known) {
		struct memscope_vma *cached = bpf_map_lookup_elem(&vma_cache, &key);
		if (cached && cached->lock_seq == seq && address >= cached->start && address < cached->end) {
			*out = *cached;
			memscope_count_vma_lookup(MEMSCOPE_VMA_FROM_CACHE);
			return 0;
		}
	}
	long err = bpf_find_vma(task, address, memscope_vma_fill, out, 0);
	if (err == -MEMSCOPE_EBUSY) {
		err = memscope_vma_walk_validated(mm, address, out);
		if (err == -MEMSCOPE_EBUSY) {
			memscope_count_vma_lookup(MEMSCOPE_VMA_UNRESOLVED);
			return err;
		}
		memscope_count_vma_lookup(MEMSCOPE_VMA_FROM_WALK);
		seq = out->lock_seq;
	} else {
		memscope_count_vma_lookup(MEMSCOPE_VMA_FROM_FIND_VMA);
	}
	if (err)
		return err;
	out->lock_seq = seq;
	if (seq_known)
		bpf_map_update_elem(&vma_cache, &key, out, BPF_ANY);
	return 0;
}

#endif
