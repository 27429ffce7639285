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
#include "memscope_page_fault.bpf.h"

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
	if (err == -MEMSCOPE_EEXIST) {
		counts = bpf_map_lookup_elem(&hugetlb_faults, &pid);
		if (counts)
			__sync_fetch_and_add(&counts->faults, 1);
	} else if (err) {
		memscope_count_drop(MEMSCOPE_DROP_MAP_FULL);
	}
}

/* hugetlb_fault(mm, vma, address, flags). A retry after waiting without the mmap lock is the
 * same fault again. */
static __always_inline int record_hugetlb_fault(unsigned int flags)
{
	if (memscope_current_wanted() && !page_fault_is_retry(flags))
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

/* A fault whose mapping cannot be looked up is counted as unresolved by memscope_vma_lookup() and
 * reported as lost by user space: it may have been a hugetlb fault. A kernel-mode fault on a user
 * address (copy_to_user into a hugetlb buffer) is a hugetlb fault too. */
static __always_inline int record_address(void *ctx, __u64 address, bool kernel_mode)
{
	if (!memscope_current_wanted())
		return 0;
	struct memscope_vma vma = {};
	if (memscope_vma_lookup(address, &vma) == 0 && (vma.flags & HFAULTS_VM_HUGETLB))
		count_fault();
	return 0;
}

MEMSCOPE_PAGE_FAULT_PROGRAMS(hfaults, record_address)

char LICENSE[] SEC("license") = "GPL";
