// SPDX-License-Identifier: GPL-2.0
/* brkstack: where the heap grows. Each brk() is counted by process and user stack (taken at
 * syscall entry), with the bytes the break moved: mm->brk read at entry against the new break
 * brk() returns. brk() returns the old break when it fails, so failures show up as a result that
 * differs from the break asked for. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "brkstack.h"
#include "memscope_syscalls.bpf.h"
#include "memscope_unwind.bpf.h"

MEMSCOPE_STACK_MAP(stacks, 16384);

struct brkstack_inflight {
	__u64 old_brk;
	__u64 requested;
	__s32 user_stack_id;
	__u32 pad;
};

MEMSCOPE_SYSCALL_INFLIGHT_MAP(inflight, struct brkstack_inflight, 10240);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct brkstack_key);
	__type(value, struct brkstack_value);
} brk_counts SEC(".maps");

static __always_inline bool brkstack_wanted(long nr)
{
	return nr == MEMSCOPE_NR_brk;
}

static __always_inline int brkstack_enter(void *ctx, const struct memscope_syscall_args *call)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct brkstack_inflight state = {};

	state.old_brk = BPF_CORE_READ(task, mm, brk);
	state.requested = call->args[0];
	state.user_stack_id = memscope_user_stack_id(ctx, &stacks, BPF_F_USER_STACK);
	memscope_update_or_count(&inflight, &tid, &state, BPF_ANY);
	return 0;
}

static __always_inline struct brkstack_value *counts_for(struct brkstack_key *key)
{
	struct brkstack_value *value = bpf_map_lookup_elem(&brk_counts, key);
	struct brkstack_new_stack_event *event;
	struct brkstack_value zero = {};

	if (value)
		return value;
	bpf_get_current_comm(zero.comm, sizeof(zero.comm));
	/* EEXIST: another CPU inserted it first, which is fine. */
	if (bpf_map_update_elem(&brk_counts, key, &zero, BPF_NOEXIST) == 0) {
		event = memscope_reserve(sizeof(*event));
		if (event) {
			event->pid = key->pid;
			event->user_stack_id = key->user_stack_id;
			bpf_ringbuf_submit(event, 0);
		}
	}
	value = bpf_map_lookup_elem(&brk_counts, key);
	if (!value)
		memscope_count_drop(MEMSCOPE_DROP_MAP_FULL);
	return value;
}

static __always_inline int brkstack_exit(void *ctx, long nr, long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct brkstack_inflight *state = bpf_map_lookup_elem(&inflight, &tid);
	struct brkstack_key key = {};
	struct brkstack_value *value;
	__u64 new_brk = (__u64)ret;

	if (!state)
		return 0;
	key.pid = pid_tgid >> 32;
	key.user_stack_id = state->user_stack_id;
	value = counts_for(&key);
	if (value) {
		__sync_fetch_and_add(&value->calls, 1);
		if (new_brk > state->old_brk) {
			__sync_fetch_and_add(&value->growths, 1);
			__sync_fetch_and_add(&value->bytes, new_brk - state->old_brk);
		}
		if (state->requested && new_brk != state->requested)
			__sync_fetch_and_add(&value->failed, 1);
	}
	bpf_map_delete_elem(&inflight, &tid);
	return 0;
}

MEMSCOPE_SYSCALL_HOOKS(brkstack, brk, 1, brkstack_enter, brkstack_exit)
MEMSCOPE_SYSCALL_DISPATCH(brkstack, brkstack_wanted, brkstack_enter, brkstack_exit)

char LICENSE[] SEC("license") = "GPL";
