// SPDX-License-Identifier: GPL-2.0
/* drsnoop: each direct reclaim, and with --memcg each memory cgroup reclaim, with its latency and
 * the pages it freed. Begin and end are paired by thread id: a reclaim runs in the allocating task.
 *
 * The end tracepoints' only argument, nr_reclaimed, is the same in 6.1 and 6.18 (unsigned long);
 * tp_btf and raw_tp read it as the first argument, the classic tracepoint through its CO-RE
 * record. The begin tracepoints' arguments (order, gfp flags) are not read. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "drsnoop.h"
#include "memscope.bpf.h"

/* -e: read the free page count in the kernel when the reclaim begins, as BCC's drsnoop does. The
 * counter lives in vm_zone_stat, which is not in kernel BTF; user space finds its address in
 * /proc/kallsyms (listed only with CONFIG_KALLSYMS_ALL) and only for -e: a typeless __ksym would
 * make libbpf scan all of kallsyms at every start. 0: user space reads /proc/meminfo instead. */
const volatile __u64 vm_zone_stat_address = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct drsnoop_start_key);
	__type(value, struct drsnoop_start);
} reclaim_start SEC(".maps");

static __always_inline __u64 current_memcg_id(void)
{
	if (!bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id))
		return 0;
	int memory_id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	struct task_struct *task = (void *)bpf_get_current_task();
	return BPF_CORE_READ(task, cgroups, subsys[memory_id], cgroup, kn, id);
}

static __always_inline int reclaim_begin(__u32 kind)
{
	if (!memscope_current_wanted())
		return 0;
	struct drsnoop_start_key key = {.tid = (__u32)bpf_get_current_pid_tgid(), .kind = kind};
	struct drsnoop_start start = {.timestamp_ns = bpf_ktime_get_ns()};
	if (vm_zone_stat_address) {
		long free_pages = 0;
		int index = bpf_core_enum_value(enum zone_stat_item, NR_FREE_PAGES);
		if (!bpf_probe_read_kernel(&free_pages, sizeof(free_pages),
					   (const char *)vm_zone_stat_address + index * sizeof(long))) {
			start.free_pages = free_pages > 0 ? free_pages : 0;
			start.free_pages_known = 1;
		}
	}
	memscope_update_or_count(&reclaim_start, &key, &start, BPF_ANY);
	return 0;
}

static __always_inline int reclaim_end(__u32 kind, __u64 nr_reclaimed)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct drsnoop_start_key key = {.tid = (__u32)pid_tgid, .kind = kind};
	struct drsnoop_start *start = bpf_map_lookup_elem(&reclaim_start, &key);
	if (!start)
		return 0; /* began before we attached, or filtered out */
	struct drsnoop_event *event = memscope_reserve(sizeof(*event));
	if (event) {
		event->latency_ns = bpf_ktime_get_ns() - start->timestamp_ns;
		event->nr_reclaimed = nr_reclaimed;
		event->free_pages = start->free_pages;
		event->free_pages_known = start->free_pages_known;
		event->memcg_id = current_memcg_id();
		event->pid = pid_tgid >> 32;
		event->tid = (__u32)pid_tgid;
		event->uid = (__u32)bpf_get_current_uid_gid();
		event->kind = kind;
		event->padding = 0;
		bpf_get_current_comm(event->comm, sizeof(event->comm));
		bpf_ringbuf_submit(event, 0);
	}
	bpf_map_delete_elem(&reclaim_start, &key);
	return 0;
}

SEC("tp_btf")
int drsnoop_direct_begin_tp_btf(__u64 *ctx)
{
	return reclaim_begin(DRSNOOP_DIRECT);
}

SEC("tp_btf")
int drsnoop_direct_end_tp_btf(__u64 *ctx)
{
	return reclaim_end(DRSNOOP_DIRECT, ctx[0]);
}

SEC("raw_tp")
int drsnoop_direct_begin_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
	return reclaim_begin(DRSNOOP_DIRECT);
}

SEC("raw_tp")
int drsnoop_direct_end_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
	return reclaim_end(DRSNOOP_DIRECT, ctx->args[0]);
}

SEC("tracepoint")
int drsnoop_direct_begin_tracepoint(void *ctx)
{
	return reclaim_begin(DRSNOOP_DIRECT);
}

SEC("tracepoint")
int drsnoop_direct_end_tracepoint(struct trace_event_raw_mm_vmscan_direct_reclaim_end_template *ctx)
{
	return reclaim_end(DRSNOOP_DIRECT, BPF_CORE_READ(ctx, nr_reclaimed));
}

SEC("tp_btf")
int drsnoop_memcg_begin_tp_btf(__u64 *ctx)
{
	return reclaim_begin(DRSNOOP_MEMCG);
}

SEC("tp_btf")
int drsnoop_memcg_end_tp_btf(__u64 *ctx)
{
	return reclaim_end(DRSNOOP_MEMCG, ctx[0]);
}

SEC("raw_tp")
int drsnoop_memcg_begin_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
	return reclaim_begin(DRSNOOP_MEMCG);
}

SEC("raw_tp")
int drsnoop_memcg_end_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
	return reclaim_end(DRSNOOP_MEMCG, ctx->args[0]);
}

SEC("tracepoint")
int drsnoop_memcg_begin_tracepoint(void *ctx)
{
	return reclaim_begin(DRSNOOP_MEMCG);
}

SEC("tracepoint")
int drsnoop_memcg_end_tracepoint(struct trace_event_raw_mm_vmscan_direct_reclaim_end_template *ctx)
{
	return reclaim_end(DRSNOOP_MEMCG, BPF_CORE_READ(ctx, nr_reclaimed));
}

char LICENSE[] SEC("license") = "GPL";
