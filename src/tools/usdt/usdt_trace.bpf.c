// SPDX-License-Identifier: GPL-2.0
/* usdt: any USDT probe with its arguments. User space attaches this one program to every matching
 * probe with bpf_program__attach_usdt(), which fills libbpf's argument specs; the cookie says
 * which probe fired. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "memscope.bpf.h"
#include "memscope_usdt.bpf.h"
#include "usdt.h"

SEC("usdt")
int usdt_probe(struct pt_regs *ctx)
{
	if (!memscope_current_wanted())
		return 0;
	struct usdt_event *event = memscope_reserve(sizeof(*event));
	if (!event)
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	event->pid = pid_tgid >> 32;
	event->tid = (__u32)pid_tgid;
	event->cookie = bpf_usdt_cookie(ctx);
	bpf_get_current_comm(event->comm, sizeof(event->comm));
	event->pad = 0;
	event->arg_count = memscope_usdt_args(ctx, event->args, USDT_MAX_ARGS);
	bpf_ringbuf_submit(event, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
