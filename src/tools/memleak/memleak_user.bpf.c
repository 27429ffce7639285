// SPDX-License-Identifier: GPL-2.0
/* memleak, user mode: uprobes on the allocator functions of one process (pid-bound uprobes, plus
 * the in-kernel -p filter). An allocation is recorded when the outermost allocator call returns:
 * at that moment the user stack's first frame is the allocator's caller, even for libstdc++'s
 * operator new, which has no frame pointer. (BPF_KPROBE/BPF_KRETPROBE read the same pt_regs
 * for uprobes; libbpf 1.1 has no BPF_UPROBE macros.)
 *
 * Calls nest (realloc(NULL, n) -> malloc, malloc -> mmap for large blocks, new -> malloc), so
 * each thread's in-flight call carries a depth and only the outermost call is recorded. The
 * stack pointer at the outermost entry tells a nested call (deeper stack) from a fresh call
 * after an outer return probe was missed (e.g. a longjmp out of a malloc hook). */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "memscope.bpf.h"
#include "memscope_unwind.bpf.h"
#include "memleak_maps.bpf.h"

/* The in-flight call of each thread, in task local storage: found through the task itself (no
 * hashing), created on a thread's first allocator call and freed with the thread. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct memleak_inflight);
} inflight SEC(".maps");

static __always_inline int enter_allocator(struct pt_regs *ctx, __u64 size, __u64 old_address,
					   __u64 result_pointer, bool frees_on_zero, __u8 returns)
{
	if (!memscope_current_wanted())
		return 0;
	struct memleak_inflight *call = bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), 0,
							     BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!call) {
		memscope_count_drop(MEMSCOPE_DROP_MAP_FULL);
		return 0;
	}
	__u64 sp = PT_REGS_SP(ctx);
	if (call->depth && sp < call->outer_sp) {
		call->depth++;
		return 0;
	}
	call->size = size;
	call->old_address = old_address;
	call->result_pointer = result_pointer;
	call->outer_sp = sp;
	call->old_recorded = 0;
	if (old_address) {
		/* realloc/mremap: the old block's record goes now, while the block is still the
		 * caller's. At the return it would be too late to tell: a block that moved had its old
		 * address freed inside the call, and another thread's allocation may have got it and
		 * been recorded there before this call returns. */
		struct memleak_allocation *old = bpf_map_lookup_elem(&allocs, &old_address);
		if (old) {
			call->old_record = *old;
			call->old_recorded = 1;
		}
		memleak_forget_record(old_address, old);
	}
	call->depth = 1;
	call->tracked = memleak_should_track(size);
	call->frees_on_zero = frees_on_zero;
	call->returns = returns;
	return 0;
}

static __always_inline int exit_allocator(struct pt_regs *ctx, struct memleak_inflight *call, __u64 address,
					  bool failed)
{
	call->depth = 0;
	/* realloc/mremap: the old block is gone when the call succeeded, and realloc(ptr, 0)
	 * frees it while returning NULL; after any other failure it is still there. */
	if (call->old_recorded && failed && !(call->frees_on_zero && call->size == 0))
		memleak_put_back(call->old_address, &call->old_record);
	if (failed || !call->tracked)
		return 0;
	memleak_record(ctx, address, call->size, BPF_F_USER_STACK | BPF_F_FAST_STACK_CMP);
	return 0;
}

/* malloc, valloc, pvalloc, operator new/new[] and their nothrow and aligned forms: size first. */
SEC("uprobe")
int BPF_KPROBE(memleak_size_first_entry, size_t size)
{
	return enter_allocator(ctx, size, 0, 0, false, MEMLEAK_RETURNS_POINTER);
}

/* aligned_alloc(alignment, size), memalign(alignment, size). */
SEC("uprobe")
int BPF_KPROBE(memleak_size_second_entry, size_t alignment, size_t size)
{
	return enter_allocator(ctx, size, 0, 0, false, MEMLEAK_RETURNS_POINTER);
}

SEC("uprobe")
int BPF_KPROBE(memleak_calloc_entry, size_t count, size_t size)
{
	return enter_allocator(ctx, count * size, 0, 0, false, MEMLEAK_RETURNS_POINTER);
}

SEC("uprobe")
int BPF_KPROBE(memleak_realloc_entry, void *old, size_t size)
{
	return enter_allocator(ctx, size, (__u64)old, 0, true, MEMLEAK_RETURNS_POINTER);
}

SEC("uprobe")
int BPF_KPROBE(memleak_reallocarray_entry, void *old, size_t count, size_t size)
{
	return enter_allocator(ctx, count * size, (__u64)old, 0, true, MEMLEAK_RETURNS_POINTER);
}

SEC("uprobe")
int BPF_KPROBE(memleak_posix_memalign_entry, void **memptr, size_t alignment, size_t size)
{
	return enter_allocator(ctx, size, 0, (__u64)memptr, false, MEMLEAK_RETURNS_THROUGH_POINTER);
}

#define MEMLEAK_PROT_NONE 0x0
#define MEMLEAK_MAP_ANONYMOUS 0x20
#define MEMLEAK_MAP_NORESERVE 0x4000
#define MEMLEAK_MAP_STACK 0x20000

/* An mmap is an allocation when it is anonymous memory the process can use at once: not a view of
 * a file, not a reservation (PROT_NONE, as glibc reserves its arenas' 64 MiB heaps and other
 * allocators their address space; MAP_NORESERVE). glibc maps a thread stack PROT_NONE and opens it
 * with mprotect after placing the guard page: MAP_STACK mappings stay allocations. */
SEC("uprobe")
int BPF_KPROBE(memleak_mmap_entry, void *address, size_t length, int prot, int flags)
{
	enter_allocator(ctx, length, 0, 0, false, MEMLEAK_RETURNS_MAPPING);
	bool allocation = (flags & MEMLEAK_MAP_ANONYMOUS) && !(flags & MEMLEAK_MAP_NORESERVE) &&
			  (prot != MEMLEAK_PROT_NONE || (flags & MEMLEAK_MAP_STACK));
	if (allocation)
		return 0;
	struct memleak_inflight *call = bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), 0, 0);
	/* Only an outermost mmap: inside malloc the block is malloc's, tracked at its return. */
	if (call && call->depth == 1 && call->outer_sp == PT_REGS_SP(ctx))
		call->tracked = 0;
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(memleak_mremap_entry, void *old, size_t old_size, size_t new_size)
{
	return enter_allocator(ctx, new_size, (__u64)old, 0, false, MEMLEAK_RETURNS_MAPPING);
}

/* The return of every allocator function: the convention its entry recorded says where the block
 * is and what failure looks like. */
SEC("uretprobe")
int BPF_KRETPROBE(memleak_allocator_return, void *returned)
{
	struct memleak_inflight *call = bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), 0, 0);
	if (!call || !call->depth)
		return 0;
	if (call->depth > 1) {
		call->depth--;
		return 0;
	}
	__u64 address = (__u64)returned;
	bool failed;
	/* One call of exit_allocator, not one per convention: each call inlines the whole recording
	 * path with the stack unwinder, and the verifier walked all three copies (143k instructions,
	 * a quarter of a second of every memleak start). */
	switch (call->returns) {
	case MEMLEAK_RETURNS_MAPPING:
		failed = (long)address == -1;
		break;
	case MEMLEAK_RETURNS_THROUGH_POINTER:
		/* posix_memalign returns 0 and stores the block through its first argument. */
		failed = (int)address != 0;
		address = 0;
		if (!failed)
			bpf_probe_read_user(&address, sizeof(address), (void *)call->result_pointer);
		failed = failed || address == 0;
		break;
	default:
		failed = address == 0;
		break;
	}
	return exit_allocator(ctx, call, address, failed);
}

/* free, munmap, operator delete/delete[] in all their sized, aligned and nothrow forms. */
SEC("uprobe")
int BPF_KPROBE(memleak_free_entry, void *address)
{
	if (!address)
		return 0;
	if (filter_tgid && (bpf_get_current_pid_tgid() >> 32) != filter_tgid)
		return 0;
	memleak_forget((__u64)address);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
