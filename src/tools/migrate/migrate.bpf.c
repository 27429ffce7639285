// SPDX-License-Identifier: GPL-2.0
/* migrate: the migrate:mm_migrate_pages tracepoint, which ends every migrate_pages() call with its
 * counts, mode and reason, aggregated in the kernel per process, reason and mode.
 * Its arguments changed after 6.1: large_folio_split was added before mode and reason. The BTF
 * flavours come in two variants, one per prototype, and user space loads the one matching this
 * kernel's BTF (a flag choosing the argument index would be folded by the compiler into ctx pointer
 * arithmetic, which the verifier refuses); the classic tracepoint reads its fields by name
 * through CO-RE. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "memscope.bpf.h"
#include "migrate.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct migrate_key);
	__type(value, struct migrate_counts);
} migrations SEC(".maps");

static __always_inline int count_migration(__u64 succeeded, __u64 failed, __u64 thp_succeeded,
					   __u64 thp_failed, __u64 thp_split, __u32 mode, __u32 reason)
{
	if (!memscope_current_wanted())
		return 0;
	struct migrate_key key = {};
	key.pid = bpf_get_current_pid_tgid() >> 32;
	key.reason = reason;
	key.mode = mode;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	struct migrate_counts *counts = bpf_map_lookup_elem(&migrations, &key);
	if (!counts) {
		struct migrate_counts zero = {};
		memscope_update_or_count(&migrations, &key, &zero, BPF_NOEXIST);
		counts = bpf_map_lookup_elem(&migrations, &key);
		if (!counts)
			return 0;
	}
	__sync_fetch_and_add(&counts->calls, 1);
	__sync_fetch_and_add(&counts->succeeded, succeeded);
	__sync_fetch_and_add(&counts->failed, failed);
	__sync_fetch_and_add(&counts->thp_succeeded, thp_succeeded);
	__sync_fetch_and_add(&counts->thp_failed, thp_failed);
	__sync_fetch_and_add(&counts->thp_split, thp_split);
	return 0;
}

/* Since large_folio_split: (succeeded, failed, thp_succeeded, thp_failed, thp_split,
 * large_folio_split, mode, reason). */
SEC("tp_btf")
int migrate_tp_btf(__u64 *ctx)
{
	return count_migration(ctx[0], ctx[1], ctx[2], ctx[3], ctx[4], ctx[6], ctx[7]);
}

SEC("raw_tp")
int migrate_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
	return count_migration(ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3], ctx->args[4],
			       ctx->args[6], ctx->args[7]);
}

/* 6.1: (succeeded, failed, thp_succeeded, thp_failed, thp_split, mode, reason). */
SEC("tp_btf")
int migrate_tp_btf_7args(__u64 *ctx)
{
	return count_migration(ctx[0], ctx[1], ctx[2], ctx[3], ctx[4], ctx[5], ctx[6]);
}

SEC("raw_tp")
int migrate_raw_tp_7args(struct bpf_raw_tracepoint_args *ctx)
{
	return count_migration(ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3], ctx->args[4],
			       ctx->args[5], ctx->args[6]);
}

SEC("tracepoint")
int migrate_tracepoint(struct trace_event_raw_mm_migrate_pages *ctx)
{
	return count_migration(BPF_CORE_READ(ctx, succeeded), BPF_CORE_READ(ctx, failed),
			       BPF_CORE_READ(ctx, thp_succeeded), BPF_CORE_READ(ctx, thp_failed),
			       BPF_CORE_READ(ctx, thp_split), BPF_CORE_READ(ctx, mode),
			       BPF_CORE_READ(ctx, reason));
}

char LICENSE[] SEC("license") = "GPL";
