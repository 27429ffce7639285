// SPDX-License-Identifier: GPL-2.0
/* llcstat: one perf event per CPU for LLC references and one for misses, each overflowing every
 * sample period; a program on each adds the period to the interrupted task's counters, as BCC's
 * llcstat does. The attribution is statistical: a sample is charged to whoever ran at overflow. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "llcstat.h"
#include "memscope.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct llcstat_key);
	__type(value, struct llcstat_value);
} llc_counts SEC(".maps");

static __always_inline int count_sample(struct bpf_perf_event_data *ctx, bool miss)
{
	if (!memscope_current_wanted())
		return 0;
	struct llcstat_key key = {};
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	key.cpu = bpf_get_smp_processor_id();
	key.pid = pid_tgid >> 32;
	key.tid = (__u32)pid_tgid;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	struct llcstat_value *value = bpf_map_lookup_elem(&llc_counts, &key);
	if (!value) {
		struct llcstat_value zero = {};
		memscope_update_or_count(&llc_counts, &key, &zero, BPF_NOEXIST);
		value = bpf_map_lookup_elem(&llc_counts, &key);
		if (!value)
			return 0;
	}
	/* A context field: the verifier rewrites this access, so it is read directly. */
	__u64 period = ctx->sample_period;
	if (miss)
		__sync_fetch_and_add(&value->misses, period);
	else
		__sync_fetch_and_add(&value->references, period);
	return 0;
}

SEC("perf_event")
int llcstat_references(struct bpf_perf_event_data *ctx)
{
	return count_sample(ctx, false);
}

SEC("perf_event")
int llcstat_misses(struct bpf_perf_event_data *ctx)
{
	return count_sample(ctx, true);
}

char LICENSE[] SEC("license") = "GPL";
