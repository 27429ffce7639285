// SPDX-License-Identifier: GPL-2.0
/* faults: page faults per process and per stack, split by the CPU mode the fault was taken in.
 *
 * The fault exception itself is what the book counts (bpftrace's software:page-faults:1), so the
 * x86 exception tracepoints page_fault_user/page_fault_kernel come first; they exist on every
 * x86 kernel with BTF. The PERF_COUNT_SW_PAGE_FAULTS software event sees the same faults with the
 * faulting registers. handle_mm_fault (fentry/kprobe) is the last resort: it is also called by
 * get_user_pages() without an exception (regs == NULL, skipped here) and again on a retry
 * (FAULT_FLAG_TRIED, skipped here). */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "faults.h"
#include "memscope.bpf.h"
#include "memscope_page_fault.bpf.h"
#include "memscope_unwind.bpf.h"

/* Which faults to count (-U / -K) and whether to capture stacks (--no-stacks). */
const volatile bool count_user_mode = true;
const volatile bool count_kernel_mode = true;
const volatile bool capture_stacks = true;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct faults_process_counts);
} process_faults SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct faults_stack_key);
	__type(value, __u64);
} stack_faults SEC(".maps");

/* perf_event hook only: every sample, before filtering, to tell throttled faults apart. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} perf_samples SEC(".maps");

/* User space sets max_entries (--stack-storage-size) before load. */
MEMSCOPE_STACK_MAP(stacks, 16384);

static __always_inline void announce_process(__u32 pid, struct faults_process_counts *counts)
{
	struct faults_new_process *notice = memscope_reserve(sizeof(*notice));
	if (!notice)
		return;
	notice->pid = pid;
	notice->pad = 0;
	__builtin_memcpy(notice->comm, counts->comm, sizeof(notice->comm));
	notice->mm = counts->mm;
	bpf_ringbuf_submit(notice, 0);
}

/* Counts the fault for its process. A process's first fault is in the entry it creates: an
 * interval report takes entries out of the map as it reads them (faults.cpp), and a fresh entry
 * looked up again after the announcement could already be gone, with the fault. */
static __always_inline bool count_in_process(__u32 pid, bool kernel_mode)
{
	__u64 mm = (__u64)BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), mm);
	struct faults_process_counts *counts = bpf_map_lookup_elem(&process_faults, &pid);
	if (!counts) {
		struct faults_process_counts fresh = {.user = !kernel_mode, .kernel = kernel_mode, .mm = mm};
		bpf_get_current_comm(fresh.comm, sizeof(fresh.comm));
		long err = bpf_map_update_elem(&process_faults, &pid, &fresh, BPF_NOEXIST);
		if (err == 0) {
			/* First fault of this PID: tell user space while the process still runs. */
			announce_process(pid, &fresh);
			return true;
		}
		if (err != -MEMSCOPE_EEXIST) {
			memscope_count_drop(MEMSCOPE_DROP_MAP_FULL);
			return false;
		}
		counts = bpf_map_lookup_elem(&process_faults, &pid); /* another CPU created it */
		if (!counts)
			return false;
	}
	if (kernel_mode)
		__sync_fetch_and_add(&counts->kernel, 1);
	else
		__sync_fetch_and_add(&counts->user, 1);
	if (counts->mm != mm) {
		/* exec(): new mappings, perhaps under the same name. */
		counts->mm = mm;
		bpf_get_current_comm(counts->comm, sizeof(counts->comm));
		announce_process(pid, counts);
	}
	return true;
}

static __always_inline void count_stack(void *ctx, __u32 pid, bool kernel_mode)
{
	struct faults_stack_key key = {};
	key.pid = pid;
	key.kernel_mode = kernel_mode;
	key.user_stack_id = -1;
	key.kernel_stack_id = -1;

	/* Kernel threads have no user stack; asking for one would count as a capture failure. */
	struct task_struct *task = (void *)bpf_get_current_task();
	if (BPF_CORE_READ(task, mm))
		key.user_stack_id = memscope_user_stack_id(ctx, &stacks, BPF_F_USER_STACK);
	if (kernel_mode)
		key.kernel_stack_id = memscope_stack_id(ctx, &stacks, 0);

	page_fault_count(&stack_faults, &key);
}

static __always_inline void count_fault(void *ctx, bool kernel_mode)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (!count_in_process(pid, kernel_mode))
		return;
	if (capture_stacks)
		count_stack(ctx, pid, kernel_mode);
}

/* Walking a user stack reads frame pointers that are often garbage at the outermost frame; each
 * such read is a kernel-mode fault (fixed up, never handled) that the exception tracepoints report
 * while this program still runs. The task being traced on this CPU is remembered so that those
 * faults, which are memscope's own, are not counted. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} tracing_task SEC(".maps");

static __always_inline int record_fault(void *ctx, bool kernel_mode)
{
	if (kernel_mode ? !count_kernel_mode : !count_user_mode)
		return 0;
	if (!memscope_current_wanted())
		return 0;
	__u32 zero = 0;
	__u64 *busy_task = bpf_map_lookup_elem(&tracing_task, &zero);
	if (!busy_task)
		return 0;
	__u64 task = bpf_get_current_task();
	if (*busy_task == task)
		return 0;
	*busy_task = task;
	count_fault(ctx, kernel_mode);
	*busy_task = 0;
	return 0;
}

static __always_inline int record_fault_exception(void *ctx, __u64 address, bool kernel_mode)
{
	return record_fault(ctx, kernel_mode);
}

MEMSCOPE_PAGE_FAULT_PROGRAMS(faults, record_fault_exception)

/* PERF_COUNT_SW_PAGE_FAULTS with sample_period 1: ctx->regs are the faulting registers, so the
 * kernel stack starts at the faulting instruction. */
SEC("perf_event")
int faults_perf_event(struct bpf_perf_event_data *ctx)
{
	__u32 zero = 0;
	__u64 *samples = bpf_map_lookup_elem(&perf_samples, &zero);
	if (samples)
		*samples += 1;
	/* ctx->regs is the UAPI struct pt_regs (an ABI: cs is its 18th unsigned long), not the
	 * kernel's, whose cs field shrank to 16 bits in 6.x: no CO-RE here, and 8-byte reads only. */
	__u64 cs = ((__u64 *)&ctx->regs)[17];
	return record_fault(ctx, (cs & 3) == 0);
}

/* handle_mm_fault(vma, address, flags, regs): regs is NULL when get_user_pages() faults pages in
 * on a task's behalf, which is not a fault exception. */
static __always_inline int record_handle_mm_fault(void *ctx, unsigned int flags, struct pt_regs *regs)
{
	if (!regs || page_fault_is_retry(flags))
		return 0;
	return record_fault(ctx, (BPF_CORE_READ(regs, cs) & 3) == 0);
}

SEC("fentry")
int BPF_PROG(faults_fentry, struct vm_area_struct *vma, unsigned long address, unsigned int flags,
	     struct pt_regs *regs)
{
	return record_handle_mm_fault(ctx, flags, regs);
}

SEC("kprobe")
int BPF_KPROBE(faults_kprobe, struct vm_area_struct *vma, unsigned long address, unsigned int flags,
	       struct pt_regs *regs)
{
	return record_handle_mm_fault(ctx, flags, regs);
}

char LICENSE[] SEC("license") = "GPL";
