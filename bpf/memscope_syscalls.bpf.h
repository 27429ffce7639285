/* Syscall enter/exit pairs for tools that trace a few syscalls (mmapsnoop, brkstack, shmsnoop).
 * Each hook flavour is written once here; a tool supplies what to do at entry and at exit:
 *
 *   static __always_inline int on_enter(void *ctx, const struct memscope_syscall_args *call);
 *   static __always_inline int on_exit(void *ctx, long nr, long ret);
 *   static __always_inline bool wanted(long nr);            (for the generic hooks only)
 *
 *   MEMSCOPE_SYSCALL_HOOKS(prefix, mmap, 6, on_enter, on_exit)   (6: how many arguments mmap takes)
 *	tracepoint syscalls:sys_enter_mmap/sys_exit_mmap  -> prefix_tp_enter_mmap, prefix_tp_exit_mmap
 *	fentry/fexit __x64_sys_mmap                        -> prefix_fentry_mmap, prefix_fexit_mmap
 *	kprobe/kretprobe __x64_sys_mmap                    -> prefix_kprobe_mmap, prefix_kretprobe_mmap
 *   MEMSCOPE_SYSCALL_DISPATCH(prefix, wanted, on_enter, on_exit)
 *	tp_btf and raw_tp sys_enter/sys_exit               -> prefix_tp_btf_enter, prefix_tp_btf_exit,
 *							      prefix_raw_tp_enter, prefix_raw_tp_exit
 *
 * The program names match what src/runtime/syscall_hooks.hpp puts into the probe specs. The
 * per-syscall hooks fire only for their syscall; the generic sys_enter/sys_exit fire for every
 * syscall of every task, so they test the syscall number before anything else. Both see the same
 * syscall arguments: the generic ones and the x86-64 syscall wrappers read them from the user's
 * pt_regs (x86-64 calling convention: di, si, dx, r10, r8, r9), which is why memscope's syscall
 * tools are x86-64 only, like the checked-in vmlinux.h.
 *
 * The -p/-t/-u/--comm/--cgroup filters are applied at entry; exit handlers look up what their entry
 * stored for the thread, so filtered-out calls cost one map lookup at exit. */
#ifndef MEMSCOPE_SYSCALLS_BPF_H
#define MEMSCOPE_SYSCALLS_BPF_H

#include "memscope.bpf.h"

/* arch/x86/entry/syscalls/syscall_64.tbl: the generic tracepoints only know numbers. */
enum memscope_x86_64_syscall {
	MEMSCOPE_NR_mmap = 9,
	MEMSCOPE_NR_munmap = 11,
	MEMSCOPE_NR_brk = 12,
	MEMSCOPE_NR_mremap = 25,
	MEMSCOPE_NR_shmget = 29,
	MEMSCOPE_NR_shmat = 30,
	MEMSCOPE_NR_shmctl = 31,
	MEMSCOPE_NR_shmdt = 67,
};

struct memscope_syscall_args {
	long nr;
	unsigned long args[6];
};

/* Entry state kept per thread until the syscall returns. LRU so that threads killed inside a
 * traced syscall (no exit event) cannot fill the map. */
#define MEMSCOPE_SYSCALL_INFLIGHT_MAP(name, value_type, entries)                               \
	struct {                                                                               \
		__uint(type, BPF_MAP_TYPE_LRU_HASH);                                           \
		__uint(max_entries, entries);                                                  \
		__type(key, __u32);                                                            \
		__type(value, value_type);                                                     \
	} name SEC(".maps")

/* arch/x86/include/asm/thread_info.h: set while a 32-bit (int 0x80 / sysenter) syscall runs. Its
 * numbers are those of the i386 table, so the generic hooks must not mistake them for ours. The
 * per-syscall tracepoints and __x64_sys_* wrappers never see compat syscalls. */
#define MEMSCOPE_X86_TS_COMPAT 0x0002

static __always_inline bool memscope_in_compat_syscall(void)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	if (!bpf_core_field_exists(task->thread_info.status))
		return false;
	return BPF_CORE_READ(task, thread_info.status) & MEMSCOPE_X86_TS_COMPAT;
}

static __always_inline void memscope_syscall_args_from_regs(struct pt_regs *regs,
							    struct memscope_syscall_args *call)
{
	call->args[0] = BPF_CORE_READ(regs, di);
	call->args[1] = BPF_CORE_READ(regs, si);
	call->args[2] = BPF_CORE_READ(regs, dx);
	call->args[3] = BPF_CORE_READ(regs, r10);
	call->args[4] = BPF_CORE_READ(regs, r8);
	call->args[5] = BPF_CORE_READ(regs, r9);
}

#define MEMSCOPE_SYSCALL_HOOKS(prefix, name, nargs, on_enter, on_exit)                          \
	SEC("tracepoint")                                                                      \
	int prefix##_tp_enter_##name(struct trace_event_raw_sys_enter *ctx)                    \
	{                                                                                      \
		struct memscope_syscall_args call = { .nr = MEMSCOPE_NR_##name };              \
		if (!memscope_current_wanted())                                                \
			return 0;                                                              \
		/* Only the syscall's own arguments: the kernel refuses to attach a program   \
		 * that reads past the end of the tracepoint's record (EACCES). */            \
		if (nargs > 0)                                                                 \
			call.args[0] = ctx->args[0];                                           \
		if (nargs > 1)                                                                 \
			call.args[1] = ctx->args[1];                                           \
		if (nargs > 2)                                                                 \
			call.args[2] = ctx->args[2];                                           \
		if (nargs > 3)                                                                 \
			call.args[3] = ctx->args[3];                                           \
		if (nargs > 4)                                                                 \
			call.args[4] = ctx->args[4];                                           \
		if (nargs > 5)                                                                 \
			call.args[5] = ctx->args[5];                                           \
		return on_enter(ctx, &call);                                                   \
	}                                                                                      \
	SEC("tracepoint")                                                                      \
	int prefix##_tp_exit_##name(struct trace_event_raw_sys_exit *ctx)                      \
	{                                                                                      \
		return on_exit(ctx, MEMSCOPE_NR_##name, ctx->ret);                             \
	}                                                                                      \
	/* __x64_sys_NAME(const struct pt_regs *regs): the user's registers */                \
	SEC("fentry")                                                                          \
	int BPF_PROG(prefix##_fentry_##name, struct pt_regs *regs)                             \
	{                                                                                      \
		struct memscope_syscall_args call = { .nr = MEMSCOPE_NR_##name };              \
		if (!memscope_current_wanted())                                                \
			return 0;                                                              \
		memscope_syscall_args_from_regs(regs, &call);                                  \
		return on_enter(ctx, &call);                                                   \
	}                                                                                      \
	SEC("fexit")                                                                           \
	int BPF_PROG(prefix##_fexit_##name, struct pt_regs *regs, long ret)                    \
	{                                                                                      \
		return on_exit(ctx, MEMSCOPE_NR_##name, ret);                                  \
	}                                                                                      \
	SEC("kprobe")                                                                          \
	int prefix##_kprobe_##name(struct pt_regs *ctx)                                        \
	{                                                                                      \
		struct memscope_syscall_args call = { .nr = MEMSCOPE_NR_##name };              \
		if (!memscope_current_wanted())                                                \
			return 0;                                                              \
		memscope_syscall_args_from_regs((struct pt_regs *)PT_REGS_PARM1(ctx), &call);  \
		return on_enter(ctx, &call);                                                   \
	}                                                                                      \
	SEC("kretprobe")                                                                       \
	int prefix##_kretprobe_##name(struct pt_regs *ctx)                                     \
	{                                                                                      \
		return on_exit(ctx, MEMSCOPE_NR_##name, PT_REGS_RC(ctx));                      \
	}

#define MEMSCOPE_SYSCALL_DISPATCH(prefix, wanted, on_enter, on_exit)                            \
	static __always_inline int prefix##_dispatch_enter(void *ctx, struct pt_regs *regs,     \
							   long nr)                             \
	{                                                                                      \
		struct memscope_syscall_args call = { .nr = nr };                              \
		if (!wanted(nr) || memscope_in_compat_syscall() || !memscope_current_wanted()) \
			return 0;                                                              \
		memscope_syscall_args_from_regs(regs, &call);                                  \
		return on_enter(ctx, &call);                                                   \
	}                                                                                      \
	/* At sys_exit the syscall number is still in orig_ax. */                              \
	static __always_inline int prefix##_dispatch_exit(void *ctx, struct pt_regs *regs,      \
							  long ret)                             \
	{                                                                                      \
		long nr = BPF_CORE_READ(regs, orig_ax);                                        \
		if (!wanted(nr))                                                               \
			return 0;                                                              \
		return on_exit(ctx, nr, ret);                                                  \
	}                                                                                      \
	/* sys_enter(struct pt_regs *regs, long id), sys_exit(struct pt_regs *regs, long ret) */ \
	SEC("tp_btf")                                                                          \
	int prefix##_tp_btf_enter(__u64 *ctx)                                                  \
	{                                                                                      \
		return prefix##_dispatch_enter(ctx, (struct pt_regs *)ctx[0], (long)ctx[1]);   \
	}                                                                                      \
	SEC("tp_btf")                                                                          \
	int prefix##_tp_btf_exit(__u64 *ctx)                                                   \
	{                                                                                      \
		return prefix##_dispatch_exit(ctx, (struct pt_regs *)ctx[0], (long)ctx[1]);    \
	}                                                                                      \
	SEC("raw_tp")                                                                          \
	int prefix##_raw_tp_enter(struct bpf_raw_tracepoint_args *ctx)                         \
	{                                                                                      \
		return prefix##_dispatch_enter(ctx, (struct pt_regs *)ctx->args[0],             \
					       (long)ctx->args[1]);                             \
	}                                                                                      \
	SEC("raw_tp")                                                                          \
	int prefix##_raw_tp_exit(struct bpf_raw_tracepoint_args *ctx)                          \
	{                                                                                      \
		return prefix##_dispatch_exit(ctx, (struct pt_regs *)ctx->args[0],              \
					      (long)ctx->args[1]);                              \
	}

#endif
