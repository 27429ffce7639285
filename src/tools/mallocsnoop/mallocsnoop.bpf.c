// SPDX-License-Identifier: GPL-2.0
/* mallocsnoop: glibc's memory_* USDT probes (provider "libc"). One program attached to each probe
 * with bpf_program__attach_usdt(); the cookie names the probe and asks for the user stack where the
 * event is an error (memory_tcache_double_free). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "memscope.bpf.h"
#include "memscope_usdt.bpf.h"
#include "mallocsnoop.h"
#include "memscope_unwind.bpf.h"

MEMSCOPE_STACK_MAP(stacks, 1024);

SEC("usdt")
int mallocsnoop_probe(struct pt_regs *ctx)
{
	if (!memscope_current_wanted())
		return 0;
	__u64 cookie = bpf_usdt_cookie(ctx);
	__s32 stack_id = -1;
	if (cookie & MALLOCSNOOP_COOKIE_STACK)
		stack_id = memscope_user_stack_id(ctx, &stacks, BPF_F_USER_STACK);
	struct mallocsnoop_event *event = memscope_reserve(sizeof(*event));
	if (!event)
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	event->cookie = cookie;
	event->pid = pid_tgid >> 32;
	event->tid = (__u32)pid_tgid;
	event->user_stack_id = stack_id;
	bpf_get_current_comm(event->comm, sizeof(event->comm));
	event->arg_count = memscope_usdt_args(ctx, event->args, MALLOCSNOOP_MAX_ARGS);
	bpf_ringbuf_submit(event, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
