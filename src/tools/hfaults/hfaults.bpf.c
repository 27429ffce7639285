// SPDX-License-Identifier: GPL-2.0
/* hfaults: hugetlb page faults per process. The book's hfaults.bt counts calls of hugetlb_fault()
 * (fentry/kprobe here). Kernels without kprobes and fentry still have the page fault exception
 * tracepoints: there the faulting address is looked up with bpf_find_vma() and counted when its
 * mapping is a hugetlb one (VM_HUGETLB). */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "hfaults.h"
#include "memscope.bpf.h"
#include "memscope_vma.bpf.h"

#define EEXIST 17

/* VM_HUGETLB is a preprocessor constant, absent from BTF; its bit (22) has not moved since 2.6. */
#define HFAULTS_VM_HUGETLB 0x00400000UL

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct hfaults_counts);
} hugetlb_faults SEC(".maps");

static __always_inline void count_fault(void)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct hfaults_counts *counts = bpf_map_lookup_elem(&hugetlb_faults, &pid);
	if (counts) {
		__sync_fetch_and_add(&counts->faults, 1);
		return;
	}
	struct hfaults_counts fresh = {.faults = 1};
	bpf_get_current_comm(fresh.comm, sizeof(fresh.comm));
	long err = bpf_map_update_elem(&hugetlb_faults, &pid, &fresh, BPF_NOEXIST);
	if (err == -EEXIST) {
		counts = bpf_map_lookup_elem(&hugetlb_faults, &pid);
		if (counts)
			__sync_fetch_and_add(&counts->faults, 1);
	} else if (err) {
		memscope_count_drop(MEMSCOPE_DROP_MAP_FULL);
	}
}

/* hugetlb_fault(mm, vma, address, flags). A retry after waiting without the mmap lock
 * (FAULT_FLAG_TRIED) is the same fault again. */
static __always_inline int record_hugetlb_fault(unsigned int flags)
{
	if (!memscope_current_wanted())
		return 0;
	__u32 tried = 0x20; /* FAULT_FLAG_TRIED before it became enum fault_flag */
	if (bpf_core_enum_value_exists(enum fault_flag, FAULT_FLAG_TRIED))
		tried = bpf_core_enum_value(enum fault_flag, FAULT_FLAG_TRIED);
	if (flags & tried)
		return 0;
	count_fault();
	return 0;
}

SEC("fentry")
int BPF_PROG(hfaults_fentry, struct mm_struct *mm, struct vm_area_struct *vma, unsigned long address,
	     unsigned int flags)
{
	return record_hugetlb_fault(flags);
}

SEC("kprobe")
int BPF_KPROBE(hfaults_kprobe, struct mm_struct *mm, struct vm_area_struct *vma, unsigned long address,
	       unsigned int flags)
{
	return record_hugetlb_fault(flags);
}

static __always_inline int record_address(__u64 address)
{
	if (!memscope_current_wanted())
		return 0;
	struct memscope_vma vma = {};
	if (memscope_vma_lookup(address, &vma) == 0 && (vma.flags & HFAULTS_VM_HUGETLB))
		count_fault();
	return 0;
}

/* exceptions:page_fault_user / page_fault_kernel (address, regs, error_code): a kernel-mode fault
 * on a user address (copy_to_user into a hugetlb buffer) is a hugetlb fault too. */
SEC("tp_btf")
int BPF_PROG(hfaults_user_tp_btf, unsigned long address)
{
	return record_address(address);
}

SEC("tp_btf")
int BPF_PROG(hfaults_kernel_tp_btf, unsigned long address)
{
	return record_address(address);
}

SEC("raw_tp")
int hfaults_user_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
	return record_address(ctx->args[0]);
}

SEC("raw_tp")
int hfaults_kernel_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
	return record_address(ctx->args[0]);
}

/* exceptions:page_fault_{user,kernel} as tracefs lays them out; not in BTF, unchanged since 3.13. */
struct page_fault_tracepoint_args {
	struct trace_entry common;
	unsigned long address;
	unsigned long ip;
	unsigned long error_code;
};

SEC("tracepoint")
int hfaults_user_tracepoint(struct page_fault_tracepoint_args *ctx)
{
	return record_address(ctx->address);
}

SEC("tracepoint")
int hfaults_kernel_tracepoint(struct page_fault_tracepoint_args *ctx)
{
	return record_address(ctx->address);
}

char LICENSE[] SEC("license") = "GPL";
