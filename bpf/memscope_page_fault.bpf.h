/* What the page fault tools' BPF sides (faults, ffaults, hfaults) share. The program names follow
 * src/tools/faults/page_fault_hooks.hpp, which lists them for the probe resolver. Include after
 * memscope.bpf.h. */
#ifndef MEMSCOPE_PAGE_FAULT_BPF_H
#define MEMSCOPE_PAGE_FAULT_BPF_H

#define MEMSCOPE_EEXIST 17

/* exceptions:page_fault_{user,kernel} as tracefs lays them out; not in BTF, unchanged since 3.13. */
struct page_fault_tracepoint_args {
	struct trace_entry common;
	unsigned long address;
	unsigned long ip;
	unsigned long error_code;
};

/* Which of the two tracepoints fired, for the one raw_tp program attached to both: the kernel
 * picks page_fault_user exactly when user_mode(regs), whose x86-64 test is the privilege level in
 * the saved CS. */
static __always_inline bool page_fault_regs_user_mode(__u64 regs)
{
	return (BPF_CORE_READ((struct pt_regs *)regs, cs) & 3) == 3;
}

/* PREFIX_{user,kernel}_{tp_btf,tracepoint} and PREFIX_raw_tp on exceptions:page_fault_user/page_fault_kernel
 * (address, regs, error_code), each calling record(ctx, address, kernel_mode): ctx for stack
 * capture, the faulting address, and whether the kernel faulted (on a user address when it touches
 * user memory on the task's behalf, copy_to_user; or on a kernel address). */
#define MEMSCOPE_PAGE_FAULT_PROGRAMS(prefix, record)                                              \
	SEC("tp_btf")                                                                              \
	int BPF_PROG(prefix##_user_tp_btf, unsigned long address)                                  \
	{                                                                                          \
		return record(ctx, address, false);                                                \
	}                                                                                          \
	SEC("tp_btf")                                                                              \
	int BPF_PROG(prefix##_kernel_tp_btf, unsigned long address)                                \
	{                                                                                          \
		return record(ctx, address, true);                                                 \
	}                                                                                          \
	SEC("raw_tp")                                                                              \
	int prefix##_raw_tp(struct bpf_raw_tracepoint_args *ctx)                                   \
	{                                                                                          \
		return record(ctx, ctx->args[0], !page_fault_regs_user_mode(ctx->args[1]));        \
	}                                                                                          \
	SEC("tracepoint")                                                                          \
	int prefix##_user_tracepoint(struct page_fault_tracepoint_args *ctx)                       \
	{                                                                                          \
		return record(ctx, ctx->address, false);                                           \
	}                                                                                          \
	SEC("tracepoint")                                                                          \
	int prefix##_kernel_tracepoint(struct page_fault_tracepoint_args *ctx)                     \
	{                                                                                          \
		return record(ctx, ctx->address, true);                                            \
	}

/* A fault retried after waiting without the mmap lock carries FAULT_FLAG_TRIED: it is the same
 * fault again, for the hooks inside the fault handler (handle_mm_fault, filemap_fault, ...). */
static __always_inline bool page_fault_is_retry(unsigned int flags)
{
	__u32 tried = 0x20; /* FAULT_FLAG_TRIED before it became enum fault_flag */
	if (bpf_core_enum_value_exists(enum fault_flag, FAULT_FLAG_TRIED))
		tried = bpf_core_enum_value(enum fault_flag, FAULT_FLAG_TRIED);
	return flags & tried;
}

/* Adds one to the __u64 counter at key in a hash map, creating it at 1. true when this call created
 * it; a full map is counted as a drop. */
static __always_inline bool page_fault_count(void *map, const void *key)
{
	__u64 *counter = bpf_map_lookup_elem(map, key);
	if (counter) {
		__sync_fetch_and_add(counter, 1);
		return false;
	}
	__u64 one = 1;
	long err = bpf_map_update_elem(map, key, &one, BPF_NOEXIST);
	if (err == 0)
		return true;
	if (err == -MEMSCOPE_EEXIST) {
		/* Another CPU created it meanwhile. */
		counter = bpf_map_lookup_elem(map, key);
		if (counter)
			__sync_fetch_and_add(counter, 1);
	} else {
		memscope_count_drop(MEMSCOPE_DROP_MAP_FULL);
	}
	return false;
}

#endif
