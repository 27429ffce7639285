/* Shared kernel-side helpers for every memscope tool: in-kernel filters, the event ring buffer,
 * drop accounting and stack capture. Include after vmlinux.h and the libbpf headers. */
#ifndef MEMSCOPE_BPF_H
#define MEMSCOPE_BPF_H

#include "memscope_shared.h"

/* Filters, written by user space into .rodata before load so the verifier prunes unused paths. */
const volatile __u32 filter_tgid = 0;
const volatile __u32 filter_tid = 0;
const volatile __u32 filter_uid = MEMSCOPE_NO_UID;
const volatile bool filter_cgroup_enabled = false;
const volatile bool filter_comm_enabled = false;
const volatile char filter_comm[MEMSCOPE_COMM_LEN] = {};
/* memscope's own process (0: not set): its reading of maps, /proc and ELF files is not what the
 * user traces. */
const volatile __u32 memscope_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cgroup_filter SEC(".maps");

/* Every tool delivers records through this ring buffer; user space may resize it before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* Per-CPU drop counters, indexed by enum memscope_drop_reason; read by the ring buffer reader. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MEMSCOPE_DROP_REASONS);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

static __always_inline void memscope_count_drop(__u32 reason)
{
	__u64 *counter = bpf_map_lookup_elem(&drops, &reason);
	if (counter)
		__sync_fetch_and_add(counter, 1);
}

static __always_inline bool memscope_comm_matches(void)
{
	char comm[MEMSCOPE_COMM_LEN];
	bpf_get_current_comm(comm, sizeof(comm));
	for (int i = 0; i < MEMSCOPE_COMM_LEN; i++) {
		if (comm[i] != filter_comm[i])
			return false;
		if (comm[i] == 0)
			break;
	}
	return true;
}

/* True when the current task passes the -p/-t/-u/--comm/--cgroup filters and is not memscope. */
static __always_inline bool memscope_current_wanted(void)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (memscope_tgid && (pid_tgid >> 32) == memscope_tgid)
		return false;
	if (filter_tgid && (pid_tgid >> 32) != filter_tgid)
		return false;
	if (filter_tid && (__u32)pid_tgid != filter_tid)
		return false;
	if (filter_uid != MEMSCOPE_NO_UID && (__u32)bpf_get_current_uid_gid() != filter_uid)
		return false;
	if (filter_cgroup_enabled && !bpf_current_task_under_cgroup(&cgroup_filter, 0))
		return false;
	if (filter_comm_enabled && !memscope_comm_matches())
		return false;
	return true;
}

/* Reserve a record in the ring buffer, counting a drop when it is full. */
static __always_inline void *memscope_reserve(__u64 size)
{
	void *record = bpf_ringbuf_reserve(&events, size, 0);
	if (!record)
		memscope_count_drop(MEMSCOPE_DROP_RINGBUF_FULL);
	return record;
}

/* Copy a record built elsewhere (a scratch map) into the ring buffer, counting a drop when it is
 * full: for records whose size is known only once they are built. */
static __always_inline void memscope_output(void *record, __u64 size)
{
	if (bpf_ringbuf_output(&events, record, size, 0))
		memscope_count_drop(MEMSCOPE_DROP_RINGBUF_FULL);
}

/* Stack ids: negative results (collision, map full) are counted and returned as -1. */
#define MEMSCOPE_STACK_MAP(name, entries)                                                      \
	struct {                                                                               \
		__uint(type, BPF_MAP_TYPE_STACK_TRACE);                                        \
		__uint(max_entries, entries);                                                  \
		__uint(key_size, sizeof(__u32));                                               \
		__uint(value_size, MEMSCOPE_MAX_STACK_DEPTH * sizeof(__u64));                  \
	} name SEC(".maps")

/* 1 when a >= b (unsigned, full range), computed without a branch: the borrow out of a - b. Searches
 * built on it give the verifier one path per step instead of two, which it would otherwise walk
 * separately whenever the bounds it tracks differ (the unwinder's two binary searches cost ~36k
 * verified instructions per program with branches, a few hundred without). */
static __always_inline __u64 memscope_at_least(__u64 a, __u64 b)
{
	__u64 borrow = ((~a & b) | (~(a ^ b) & (a - b))) >> 63;
	barrier_var(borrow);
	return borrow ^ 1;
}

static __always_inline __s32 memscope_stack_id(void *ctx, void *stack_map, __u64 flags)
{
	long id = bpf_get_stackid(ctx, stack_map, flags);
	if (id < 0) {
		memscope_count_drop(MEMSCOPE_DROP_STACK);
		return -1;
	}
	return (__s32)id;
}

/* For hash maps that aggregate: a failed insert means the map is full, which must not be silent. */
static __always_inline void memscope_update_or_count(void *map, const void *key, const void *value,
							   __u64 flags)
{
	if (bpf_map_update_elem(map, key, value, flags) < 0)
		memscope_count_drop(MEMSCOPE_DROP_MAP_FULL);
}

#endif
