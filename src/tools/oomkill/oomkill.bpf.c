// SPDX-License-Identifier: GPL-2.0
/* oomkill: the OOM killer's choice. Preferred hook: fentry/kprobe on oom_kill_process, which sees
 * struct oom_control (domain size, the memcg when the OOM is a cgroup's). Kernels without kprobes
 * and fentry still have the oom:mark_victim tracepoint; there the victim's RSS stands in for the
 * domain size and the memcg is the victim's (found by PID on the classic tracepoint), with the
 * kernel stack telling a memcg OOM apart. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "memscope.bpf.h"
#include "oomkill.h"

/* mark_victim's arguments changed in 6.8: (int pid) became (struct task_struct *task, uid_t uid).
 * User space reads the tracepoint's BTF prototype and says which one this kernel has. */
const volatile bool mark_victim_passes_task = true;

/* Before 6.2, mm->rss_stat was struct mm_rss_stat of atomics; since then, percpu counters. */
struct mm_rss_stat___old {
	atomic_long_t count[4];
} __attribute__((preserve_access_index));
struct mm_struct___old {
	struct mm_rss_stat___old rss_stat;
} __attribute__((preserve_access_index));

static __always_inline __u64 task_rss_pages(struct task_struct *task)
{
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	__u64 pages = 0;
	if (!mm)
		return 0;
	/* Counted: MM_FILEPAGES (0), MM_ANONPAGES (1), MM_SHMEMPAGES (3); not MM_SWAPENTS (2). */
	if (bpf_core_type_exists(struct mm_rss_stat___old)) {
		struct mm_struct___old *old = (void *)mm;
		pages = BPF_CORE_READ(old, rss_stat.count[0].counter) +
			BPF_CORE_READ(old, rss_stat.count[1].counter) +
			BPF_CORE_READ(old, rss_stat.count[3].counter);
	} else {
		pages = BPF_CORE_READ(mm, rss_stat[0].count) + BPF_CORE_READ(mm, rss_stat[1].count) +
			BPF_CORE_READ(mm, rss_stat[3].count);
	}
	return pages;
}

static __always_inline __u64 task_memcg_id(struct task_struct *task)
{
	int memory_id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	return BPF_CORE_READ(task, cgroups, subsys[memory_id], cgroup, kn, id);
}

static __always_inline struct oomkill_event *start_event(void *ctx)
{
	struct oomkill_event *event = memscope_reserve(sizeof(*event));
	if (!event)
		return 0;
	__builtin_memset(event, 0, sizeof(*event));
	event->triggered_pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(event->triggered_comm, sizeof(event->triggered_comm));
	long bytes = bpf_get_stack(ctx, event->kernel_stack, sizeof(event->kernel_stack), 0);
	event->kernel_stack_bytes = bytes > 0 ? bytes : 0;
	return event;
}

static __always_inline void fill_victim(struct oomkill_event *event, struct task_struct *victim)
{
	event->victim_pid = BPF_CORE_READ(victim, tgid);
	event->victim_comm_known = 1;
	BPF_CORE_READ_STR_INTO(&event->victim_comm, victim, comm);
}

static __always_inline int record_oom_control(void *ctx, struct oom_control *oc)
{
	struct oomkill_event *event = start_event(ctx);
	if (!event)
		return 0;
	struct task_struct *victim = BPF_CORE_READ(oc, chosen);
	if (victim)
		fill_victim(event, victim);
	event->pages = BPF_CORE_READ(oc, totalpages);
	event->pages_source = OOMKILL_PAGES_TOTALPAGES;
	struct mem_cgroup *memcg = BPF_CORE_READ(oc, memcg);
	if (memcg) {
		event->memcg_id = BPF_CORE_READ(memcg, css.cgroup, kn, id);
		event->memcg_source = OOMKILL_MEMCG_OOM_CONTROL;
	}
	bpf_ringbuf_submit(event, 0);
	return 0;
}

SEC("fentry")
int BPF_PROG(oomkill_fentry, struct oom_control *oc, const char *message)
{
	return record_oom_control(ctx, oc);
}

SEC("kprobe")
int BPF_KPROBE(oomkill_kprobe, struct oom_control *oc)
{
	return record_oom_control(ctx, oc);
}

/* The classic tracepoint's record has the victim's PID (and, since 6.8 or its backports, its
 * command and RSS) but no task pointer, and before 6.8 mark_victim's only argument is that PID, so
 * the memcg would be unknown. The task is looked up by PID
 * the way find_task_by_pid_ns() does it: the initial PID namespace's IDR (a radix tree of struct
 * pid, 64 slots per level) maps the global PID to its struct pid, whose first PIDTYPE_PID task is
 * the thread. The initial namespace is numbers[0].ns of any task's struct pid (no kallsyms: data
 * symbols need CONFIG_KALLSYMS_ALL). */
#define OOMKILL_XA_CHUNK_SHIFT 6
#define OOMKILL_XA_CHUNK_MASK ((1UL << OOMKILL_XA_CHUNK_SHIFT) - 1)
#define OOMKILL_XA_MAX_LEVELS 6 /* 6 bits per level: 36 bits, past PID_MAX_LIMIT's 22 */

static __always_inline bool xa_entry_is_node(const void *entry)
{
	/* xa_is_node(): an internal entry (low bits 10) above the small internal values. */
	return ((unsigned long)entry & 3) == 2 && (unsigned long)entry > 4096;
}

static __always_inline struct task_struct *task_by_global_pid(__u32 pid)
{
	struct task_struct *current = (void *)bpf_get_current_task();
	struct pid_namespace *ns = BPF_CORE_READ(current, thread_pid, numbers[0].ns);
	if (!ns || pid == 0)
		return 0;
	/* PID namespaces' IDRs start at 0 (idr_base), so the radix tree index is the PID itself. */
	void *entry = BPF_CORE_READ(ns, idr.idr_rt.xa_head);
	if (!xa_entry_is_node(entry))
		return 0; /* an empty tree, or only index 0 */
	for (int level = 0; level < OOMKILL_XA_MAX_LEVELS; level++) {
		struct xa_node *node = (void *)((unsigned long)entry - 2);
		unsigned char shift = BPF_CORE_READ(node, shift);
		if (level == 0 && ((__u64)pid >> shift) > OOMKILL_XA_CHUNK_MASK)
			return 0; /* beyond what the tree covers */
		unsigned long slot = ((__u64)pid >> (shift & 63)) & OOMKILL_XA_CHUNK_MASK;
		entry = BPF_CORE_READ(node, slots[slot]);
		if (!xa_entry_is_node(entry))
			break;
	}
	if (!entry || ((unsigned long)entry & 3) == 2)
		return 0; /* no such PID (or a retry/sibling marker: give up rather than guess) */
	struct pid *found = entry;
	struct hlist_node *first = BPF_CORE_READ(found, tasks[PIDTYPE_PID].first);
	if (!first)
		return 0;
	/* container_of(first, struct task_struct, pid_links[PIDTYPE_PID]) */
	struct task_struct *task = (void *)first - bpf_core_field_offset(struct task_struct, pid_links);
	if (BPF_CORE_READ(task, pid) != (pid_t)pid)
		return 0;
	return task;
}

/* The victim is often the task that ran into the OOM: no lookup then. */
static __always_inline struct task_struct *victim_by_pid(__u32 pid)
{
	struct task_struct *current = (void *)bpf_get_current_task();
	if (BPF_CORE_READ(current, pid) == (pid_t)pid)
		return current;
	return task_by_global_pid(pid);
}

static __always_inline int record_mark_victim(void *ctx, __u64 first_arg)
{
	struct oomkill_event *event = start_event(ctx);
	if (!event)
		return 0;
	event->pages_source = OOMKILL_PAGES_VICTIM_RSS;
	if (mark_victim_passes_task) {
		struct task_struct *victim = (void *)first_arg;
		fill_victim(event, victim);
		event->pages = task_rss_pages(victim);
		event->memcg_id = task_memcg_id(victim);
		event->memcg_source = OOMKILL_MEMCG_VICTIM;
	} else {
		/* Before 6.8 (and its backports) only the victim's PID. */
		__u32 pid = (__u32)first_arg;
		event->victim_pid = pid;
		struct task_struct *victim = victim_by_pid(pid);
		if (victim) {
			fill_victim(event, victim);
			event->pages = task_rss_pages(victim);
			event->memcg_id = task_memcg_id(victim);
			event->memcg_source = OOMKILL_MEMCG_VICTIM;
		}
	}
	bpf_ringbuf_submit(event, 0);
	return 0;
}

SEC("tp_btf")
int oomkill_tp_btf(__u64 *ctx)
{
	return record_mark_victim(ctx, ctx[0]);
}

SEC("raw_tp")
int oomkill_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
	return record_mark_victim(ctx, ctx->args[0]);
}

SEC("tracepoint")
int oomkill_tracepoint(struct trace_event_raw_mark_victim *ctx)
{
	struct oomkill_event *event = start_event(ctx);
	if (!event)
		return 0;
	__u32 pid = BPF_CORE_READ(ctx, pid);
	event->victim_pid = pid;
	event->pages_source = OOMKILL_PAGES_VICTIM_RSS;
	/* The comm and RSS fields were added to the tracepoint in 6.8. */
	bool has_rss = bpf_core_field_exists(ctx->anon_rss);
	if (has_rss) {
		/* rss fields are in KiB */
		event->pages = (BPF_CORE_READ(ctx, anon_rss) + BPF_CORE_READ(ctx, file_rss) +
				BPF_CORE_READ(ctx, shmem_rss)) / 4;
		__u32 location = BPF_CORE_READ(ctx, __data_loc_comm);
		bpf_probe_read_kernel_str(event->victim_comm, sizeof(event->victim_comm),
					  (void *)ctx + (location & 0xffff));
		event->victim_comm_known = 1;
	}
	struct task_struct *victim = victim_by_pid(pid);
	if (victim) {
		event->memcg_id = task_memcg_id(victim);
		event->memcg_source = OOMKILL_MEMCG_VICTIM;
		if (!has_rss) {
			fill_victim(event, victim);
			event->pages = task_rss_pages(victim);
		} else {
			event->victim_pid = BPF_CORE_READ(victim, tgid); /* the record has the thread's */
		}
	}
	bpf_ringbuf_submit(event, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
