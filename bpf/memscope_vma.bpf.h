/* Which mapping (VMA) holds a user address, for tools hooked where only the address is known: the
 * page fault exception tracepoints (ffaults, hfaults). Include after memscope.bpf.h.
 *
 * bpf_find_vma() (5.17+) takes the mmap lock for reading. At the fault tracepoints interrupts are
 * off, so it defers the unlock to an IRQ-work self-interrupt, which costs as much as a fault or
 * more (several times slower faults in a VM). Consecutive faults mostly hit the same mapping, so
 * the answer is cached per (mm, tgid) and trusted while mm->mm_lock_seq has not moved: per-VMA
 * locking (6.4+) bumps it whenever the mmap lock is released after writing, i.e. after every
 * change to the VMA tree. Kernels without that counter look up every time. */
#ifndef MEMSCOPE_VMA_BPF_H
#define MEMSCOPE_VMA_BPF_H

#define MEMSCOPE_ENOENT 2

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

/* Lookups answered from the cache [0] and by bpf_find_vma() [1], for -v. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
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

/* false when the kernel has no such counter or a writer holds the mmap lock right now. */
static __always_inline bool memscope_mm_lock_seq(struct mm_struct *mm, __u32 *seq)
{
	if (bpf_core_field_exists(((struct mm_struct___lock_seqcount *)0)->mm_lock_seq)) {
		*seq = BPF_CORE_READ((struct mm_struct___lock_seqcount *)mm, mm_lock_seq.sequence);
		return !(*seq & 1); /* odd: write in progress */
	}
	if (bpf_core_field_exists(((struct mm_struct___lock_seq_int *)0)->mm_lock_seq)) {
		*seq = BPF_CORE_READ((struct mm_struct___lock_seq_int *)mm, mm_lock_seq);
		return true;
	}
	return false;
}

static __always_inline void memscope_count_vma_lookup(__u32 slot)
{
	__u64 *counter = bpf_map_lookup_elem(&vma_lookups, &slot);
	if (counter)
		*counter += 1;
}

static long memscope_vma_fill(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	struct memscope_vma *out = data;
	out->start = BPF_CORE_READ(vma, vm_start);
	out->end = BPF_CORE_READ(vma, vm_end);
	out->flags = BPF_CORE_READ(vma, vm_flags);
	out->file = BPF_CORE_READ(vma, vm_file);
	if (out->file) {
		out->kind = MEMSCOPE_VMA_FILE;
		return 0;
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
	return 0;
}

/* 0 and *out filled; -ENOENT when no mapping holds the address; another negative error when the
 * lookup could not be done (mmap lock contended: -EBUSY). */
static __always_inline long memscope_vma_lookup(__u64 address, struct memscope_vma *out)
{
	/* The kernel half of the address space (x86-64, arm64): never a VMA, and not worth the lock. */
	if ((__s64)address < 0)
		return -MEMSCOPE_ENOENT;
	struct task_struct *task = bpf_get_current_task_btf();
	struct mm_struct *mm = task->mm;
	if (!mm)
		return -MEMSCOPE_ENOENT;
	struct memscope_vma_cache_key key = {.mm = (__u64)mm, .tgid = task->tgid};
	__u32 seq = 0;
	bool seq_known = memscope_mm_lock_seq(mm, &seq);

	if (seq_known) {
		struct memscope_vma *cached = bpf_map_lookup_elem(&vma_cache, &key);
		if (cached && cached->lock_seq == seq && address >= cached->start && address < cached->end) {
			*out = *cached;
			memscope_count_vma_lookup(0);
			return 0;
		}
	}
	memscope_count_vma_lookup(1);
	long err = bpf_find_vma(task, address, memscope_vma_fill, out, 0);
	if (err)
		return err;
	out->lock_seq = seq;
	if (seq_known)
		bpf_map_update_elem(&vma_cache, &key, out, BPF_ANY);
	return 0;
}

#endif
