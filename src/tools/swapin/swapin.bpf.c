// SPDX-License-Identifier: GPL-2.0
/* swapin: swap-ins per process, the book's swapin.bt. The hook is the function that reads a page
 * (folio) back from swap, called in the context of the task that faulted on it (readahead included):
 * swap_readpage(struct page *, bool, struct swap_iocb **) in Debian 12's 6.1, swap_read_folio(struct
 * folio *, ...) since the folio conversion (its arguments changed again later). Only the calling
 * task is used, never the arguments, so one program serves both names. No tracepoint fires on
 * swap-in, so there is no tracepoint alternative: kernels without fentry and kprobes cannot run
 * this tool. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "memscope.bpf.h"
#include "swapin.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct swapin_key);
	__type(value, __u64);
} swapins SEC(".maps");

static __always_inline int count_swapin(void)
{
	if (!memscope_current_wanted())
		return 0;
	struct swapin_key key = {.pid = bpf_get_current_pid_tgid() >> 32};
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	__u64 *count = bpf_map_lookup_elem(&swapins, &key);
	if (count) {
		__sync_fetch_and_add(count, 1);
		return 0;
	}
	__u64 one = 1;
	/* Another CPU may have inserted the key meanwhile: then add to its count. */
	if (bpf_map_update_elem(&swapins, &key, &one, BPF_NOEXIST) == 0)
		return 0;
	count = bpf_map_lookup_elem(&swapins, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		memscope_count_drop(MEMSCOPE_DROP_MAP_FULL);
	return 0;
}

SEC("fentry")
int swapin_fentry(__u64 *ctx)
{
	return count_swapin();
}

SEC("kprobe")
int swapin_kprobe(struct pt_regs *ctx)
{
	return count_swapin();
}

char LICENSE[] SEC("license") = "GPL";
