// SPDX-License-Identifier: GPL-2.0
/* shmsnoop: System V shared memory syscalls (shmget, shmat, shmdt, shmctl) with their arguments,
 * taken at entry, and their results, taken at exit. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "memscope_syscalls.bpf.h"
#include "shmsnoop.h"

MEMSCOPE_SYSCALL_INFLIGHT_MAP(inflight, struct memscope_syscall_args, 10240);

static __always_inline bool shmsnoop_wanted(long nr)
{
	return nr == MEMSCOPE_NR_shmget || nr == MEMSCOPE_NR_shmat || nr == MEMSCOPE_NR_shmdt ||
	       nr == MEMSCOPE_NR_shmctl;
}

static __always_inline int shmsnoop_enter(void *ctx, const struct memscope_syscall_args *call)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	memscope_update_or_count(&inflight, &tid, call, BPF_ANY);
	return 0;
}

static __always_inline int shmsnoop_exit(void *ctx, long nr, long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct memscope_syscall_args *call = bpf_map_lookup_elem(&inflight, &tid);
	struct shmsnoop_event *event;

	if (!call)
		return 0;
	if (call->nr != nr)
		goto out;
	event = memscope_reserve(sizeof(*event));
	if (!event)
		goto out;
	event->args[0] = call->args[0];
	event->args[1] = call->args[1];
	event->args[2] = call->args[2];
	event->ret = ret;
	event->pid = pid_tgid >> 32;
	event->tid = tid;
	event->syscall = nr == MEMSCOPE_NR_shmget  ? SHMSNOOP_SHMGET
			 : nr == MEMSCOPE_NR_shmat ? SHMSNOOP_SHMAT
			 : nr == MEMSCOPE_NR_shmdt ? SHMSNOOP_SHMDT
						   : SHMSNOOP_SHMCTL;
	event->pad = 0;
	bpf_get_current_comm(event->comm, sizeof(event->comm));
	bpf_ringbuf_submit(event, 0);
out:
	bpf_map_delete_elem(&inflight, &tid);
	return 0;
}

MEMSCOPE_SYSCALL_HOOKS(shmsnoop, shmget, 3, shmsnoop_enter, shmsnoop_exit)
MEMSCOPE_SYSCALL_HOOKS(shmsnoop, shmat, 3, shmsnoop_enter, shmsnoop_exit)
MEMSCOPE_SYSCALL_HOOKS(shmsnoop, shmdt, 1, shmsnoop_enter, shmsnoop_exit)
MEMSCOPE_SYSCALL_HOOKS(shmsnoop, shmctl, 3, shmsnoop_enter, shmsnoop_exit)
MEMSCOPE_SYSCALL_DISPATCH(shmsnoop, shmsnoop_wanted, shmsnoop_enter, shmsnoop_exit)

char LICENSE[] SEC("license") = "GPL";
