/* The arguments of the USDT probe that fired, shared by usdt and mallocsnoop. Include after
 * <bpf/usdt.bpf.h>. */
#ifndef MEMSCOPE_USDT_BPF_H
#define MEMSCOPE_USDT_BPF_H

/* Fills args[0..max_args) (0 past the probe's own arguments, as bpf_usdt_arg() returns them:
 * sign-extended to 64 bits) and returns how many the probe has, at most max_args. max_args must be
 * a constant: the verifier needs the loop bounded. */
static __always_inline __u32 memscope_usdt_args(struct pt_regs *ctx, __u64 *args, const int max_args)
{
	int count = bpf_usdt_arg_cnt(ctx);
	if (count < 0)
		count = 0;
	if (count > max_args)
		count = max_args;
	for (int i = 0; i < max_args; i++) {
		long value = 0;
		if (i < count)
			bpf_usdt_arg(ctx, i, &value);
		args[i] = value;
	}
	return count;
}

#endif
