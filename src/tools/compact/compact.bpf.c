// SPDX-License-Identifier: GPL-2.0
/* compact: every zone compaction (compaction:mm_compaction_begin → mm_compaction_end in the same
 * task) with node, zone, order, mode, latency and result, and the direct-compaction stalls of
 * allocating tasks.
 * - BTF tracepoints pass struct compact_control (6.1 and later), which has the order, the zone and
 *   whether the compaction is direct or proactive. The classic tracepoints don't: the order and
 *   zone come from mm_compaction_finished, which compact_zone() fires between begin and end.
 * - A stall is try_to_compact_pages() from entry to return: exact with fentry/fexit or
 *   kprobe/kretprobe (6.1 distribution kernels); without them the stall begins at
 *   mm_compaction_try_to_compact_pages and user space ends it at the last zone compaction (or
 *   deferred zone) of that task, which misses only the return path. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "compact.h"
#include "memscope.bpf.h"

struct zone_start {
	__u64 start_ns;
	__s32 order;
	__s32 nid;
	__s32 zone_idx;
	__u8 sync;
	__u8 direct;
	__u8 proactive;
	__u8 have_zone;
};

struct stall_start {
	__u64 start_ns;
	__u64 gfp_mask;
	__s32 order;
	__s32 priority;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct zone_start);
} zone_starts SEC(".maps");

/* LRU: with tracepoint hooks nothing deletes an entry when try_to_compact_pages() returns. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct stall_start);
} stall_starts SEC(".maps");

static __always_inline struct compact_event *new_event(__u32 kind)
{
	struct compact_event *event = memscope_reserve(sizeof(*event));
	if (!event)
		return 0;
	__builtin_memset(event, 0, sizeof(*event));
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	event->kind = kind;
	event->pid = pid_tgid >> 32;
	event->tid = (__u32)pid_tgid;
	event->timestamp_ns = bpf_ktime_get_ns();
	event->zone_idx = -1;
	bpf_get_current_comm(event->comm, sizeof(event->comm));
	return event;
}

/* ---- zone compactions ---- */

static __always_inline int zone_begin(struct compact_control *cc, bool sync)
{
	if (!memscope_current_wanted())
		return 0;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct zone_start start = {};
	start.start_ns = bpf_ktime_get_ns();
	start.sync = sync;
	start.zone_idx = -1;
	if (cc) {
		struct zone *zone = BPF_CORE_READ(cc, zone);
		struct pglist_data *pgdat = BPF_CORE_READ(zone, zone_pgdat);
		__u64 first_zone = (__u64)pgdat + bpf_core_field_offset(struct pglist_data, node_zones);
		__u64 zone_size = bpf_core_type_size(struct zone);
		start.order = BPF_CORE_READ(cc, order);
		start.nid = BPF_CORE_READ(pgdat, node_id);
		if (zone_size && (__u64)zone >= first_zone)
			start.zone_idx = ((__u64)zone - first_zone) / zone_size;
		start.direct = BPF_CORE_READ(cc, direct_compaction);
		start.proactive = BPF_CORE_READ(cc, proactive_compaction);
		start.have_zone = 1;
	} else {
		/* Classic tracepoints: a direct compaction is one in a task inside try_to_compact_pages. */
		start.direct = bpf_map_lookup_elem(&stall_starts, &tid) != 0;
	}
	memscope_update_or_count(&zone_starts, &tid, &start, BPF_ANY);
	return 0;
}

static __always_inline int zone_end(int status)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct zone_start *start = bpf_map_lookup_elem(&zone_starts, &tid);
	if (!start)
		return 0;
	struct compact_event *event = new_event(COMPACT_EVENT_ZONE);
	if (event) {
		event->duration_ns = event->timestamp_ns - start->start_ns;
		event->order = start->order;
		event->nid = start->nid;
		event->zone_idx = start->zone_idx;
		event->sync = start->sync;
		event->direct = start->direct;
		event->proactive = start->proactive;
		event->status = status;
		bpf_ringbuf_submit(event, 0);
	}
	bpf_map_delete_elem(&zone_starts, &tid);
	return 0;
}

SEC("tp_btf")
int compact_begin_tp_btf(__u64 *ctx)
{
	/* (struct compact_control *cc, zone_start, zone_end, bool sync) */
	return zone_begin((struct compact_control *)ctx[0], (bool)ctx[3]);
}

SEC("tp_btf")
int compact_end_tp_btf(__u64 *ctx)
{
	/* (cc, zone_start, zone_end, bool sync, int status) */
	return zone_end((int)ctx[4]);
}

SEC("raw_tp")
int compact_begin_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
	return zone_begin((struct compact_control *)ctx->args[0], (bool)ctx->args[3]);
}

SEC("raw_tp")
int compact_end_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
	return zone_end((int)ctx->args[4]);
}

SEC("tracepoint")
int compact_begin_tracepoint(struct trace_event_raw_mm_compaction_begin *ctx)
{
	return zone_begin(0, BPF_CORE_READ(ctx, sync));
}

/* compact_finished() runs between begin and end with the node, zone index and order. */
SEC("tracepoint")
int compact_finished_tracepoint(struct trace_event_raw_mm_compaction_suitable_template *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct zone_start *start = bpf_map_lookup_elem(&zone_starts, &tid);
	if (!start || start->have_zone)
		return 0;
	start->nid = BPF_CORE_READ(ctx, nid);
	start->zone_idx = BPF_CORE_READ(ctx, idx);
	start->order = BPF_CORE_READ(ctx, order);
	start->have_zone = 1;
	return 0;
}

SEC("tracepoint")
int compact_end_tracepoint(struct trace_event_raw_mm_compaction_end *ctx)
{
	return zone_end(BPF_CORE_READ(ctx, status));
}

/* ---- direct-compaction stalls ---- */

static __always_inline int stall_enter(__u64 gfp_mask, int order, int priority, bool announce)
{
	if (!memscope_current_wanted())
		return 0;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct stall_start start = {};
	start.start_ns = bpf_ktime_get_ns();
	start.gfp_mask = gfp_mask;
	start.order = order;
	start.priority = priority;
	bpf_map_update_elem(&stall_starts, &tid, &start, BPF_ANY);
	if (!announce)
		return 0;
	struct compact_event *event = new_event(COMPACT_EVENT_STALL_BEGIN);
	if (!event)
		return 0;
	event->order = order;
	event->gfp_mask = gfp_mask;
	event->priority = priority;
	bpf_ringbuf_submit(event, 0);
	return 0;
}

static __always_inline int stall_exit(int result)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct stall_start *start = bpf_map_lookup_elem(&stall_starts, &tid);
	if (!start)
		return 0;
	struct compact_event *event = new_event(COMPACT_EVENT_STALL_END);
	if (event) {
		event->duration_ns = event->timestamp_ns - start->start_ns;
		event->order = start->order;
		event->gfp_mask = start->gfp_mask;
		event->priority = start->priority;
		event->status = result;
		bpf_ringbuf_submit(event, 0);
	}
	bpf_map_delete_elem(&stall_starts, &tid);
	return 0;
}

/* enum compact_result try_to_compact_pages(gfp_t gfp_mask, unsigned int order,
 *	unsigned int alloc_flags, const struct alloc_context *ac, enum compact_priority prio,
 *	struct page **capture) — the same from 6.1 to 6.18. */
SEC("fentry")
int BPF_PROG(stall_fentry, gfp_t gfp_mask, unsigned int order, unsigned int alloc_flags, void *ac,
	     int prio)
{
	return stall_enter(gfp_mask, order, prio, false);
}

SEC("fexit")
int BPF_PROG(stall_fexit, gfp_t gfp_mask, unsigned int order, unsigned int alloc_flags, void *ac,
	     int prio, void *capture, int ret)
{
	return stall_exit(ret);
}

SEC("kprobe")
int BPF_KPROBE(stall_kprobe, gfp_t gfp_mask, unsigned int order, unsigned int alloc_flags, void *ac,
	       int prio)
{
	return stall_enter(gfp_mask, order, prio, false);
}

SEC("kretprobe")
int BPF_KRETPROBE(stall_kretprobe, int ret)
{
	return stall_exit(ret);
}

SEC("tp_btf")
int stall_tp_btf(__u64 *ctx)
{
	/* (int order, gfp_t gfp_mask, int prio) */
	return stall_enter(ctx[1], (int)ctx[0], (int)ctx[2], true);
}

SEC("raw_tp")
int stall_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
	return stall_enter(ctx->args[1], (int)ctx->args[0], (int)ctx->args[2], true);
}

SEC("tracepoint")
int stall_tracepoint(struct trace_event_raw_mm_compaction_try_to_compact_pages *ctx)
{
	return stall_enter(BPF_CORE_READ(ctx, gfp_mask), BPF_CORE_READ(ctx, order),
			   BPF_CORE_READ(ctx, prio), true);
}

/* A zone a direct compaction skipped as deferred also ends (part of) its stall. */
static __always_inline int zone_deferred(int nid, int zone_idx, int order)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	if (!bpf_map_lookup_elem(&stall_starts, &tid))
		return 0;
	struct compact_event *event = new_event(COMPACT_EVENT_DEFERRED);
	if (!event)
		return 0;
	event->nid = nid;
	event->zone_idx = zone_idx;
	event->order = order;
	bpf_ringbuf_submit(event, 0);
	return 0;
}

static __always_inline int zone_deferred_btf(struct zone *zone, int order)
{
	struct pglist_data *pgdat = BPF_CORE_READ(zone, zone_pgdat);
	__u64 first_zone = (__u64)pgdat + bpf_core_field_offset(struct pglist_data, node_zones);
	__u64 zone_size = bpf_core_type_size(struct zone);
	int zone_idx = zone_size && (__u64)zone >= first_zone ? ((__u64)zone - first_zone) / zone_size : -1;
	return zone_deferred(BPF_CORE_READ(pgdat, node_id), zone_idx, order);
}

SEC("tp_btf")
int deferred_tp_btf(__u64 *ctx)
{
	/* (struct zone *zone, int order). The verifier forbids arithmetic on the trusted zone pointer
	 * tp_btf passes, and the zone index is pointer arithmetic: copy the address as a number. */
	__u64 zone = 0;
	bpf_probe_read_kernel(&zone, sizeof(zone), &ctx[0]);
	return zone_deferred_btf((struct zone *)zone, (int)ctx[1]);
}

SEC("raw_tp")
int deferred_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
	return zone_deferred_btf((struct zone *)ctx->args[0], (int)ctx->args[1]);
}

SEC("tracepoint")
int deferred_tracepoint(struct trace_event_raw_mm_compaction_defer_template *ctx)
{
	return zone_deferred(BPF_CORE_READ(ctx, nid), BPF_CORE_READ(ctx, idx), BPF_CORE_READ(ctx, order));
}

char LICENSE[] SEC("license") = "GPL";
