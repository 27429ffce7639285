/* The DWARF-CFI unwinder's data, shared by user space (which compiles .eh_frame/.debug_frame into
 * these rows and loads them) and the BPF side (bpf/memscope_unwind.bpf.h, which walks user stacks
 * with them). Fixed-width types only. x86-64: DWARF registers 6 = rbp, 7 = rsp, 16 = return address. */
#ifndef MEMSCOPE_UNWIND_SHARED_H
#define MEMSCOPE_UNWIND_SHARED_H

#include "memscope_shared.h"

/* How the canonical frame address (the caller's stack pointer) is found at a pc. */
enum memscope_cfa_kind {
	/* No CFI covers this pc (a gap between FDEs, or a rule the unwinder cannot run): the frame is
	 * walked with the frame pointer and marked as such. */
	MEMSCOPE_CFA_NONE = 0,
	MEMSCOPE_CFA_RSP = 1, /* cfa = rsp + cfa_offset */
	MEMSCOPE_CFA_RBP = 2, /* cfa = rbp + cfa_offset */
	/* The expression of PLT stubs: cfa = rsp + cfa_offset + ((rip & 15) >= plt_threshold ? 8 : 0) */
	MEMSCOPE_CFA_PLT = 3,
	/* A signal trampoline (__restore_rt): the interrupted registers are saved at rsp; the caller's
	 * rsp = *(rsp + cfa_offset), rbp = *(rsp + rbp_offset), rip = *(rsp + rip_offset), and that rip
	 * is an exact pc, not a return address. */
	MEMSCOPE_CFA_SIGNAL = 4,
	/* The outermost frame (_start, thread start): the return address is undefined. */
	MEMSCOPE_CFA_END = 5,
};

/* Where the caller's rbp is. */
enum memscope_rbp_kind {
	MEMSCOPE_RBP_SAME = 0,      /* unchanged by this frame */
	MEMSCOPE_RBP_AT_CFA = 1,    /* rbp = *(cfa + rbp_offset) */
	MEMSCOPE_RBP_UNDEFINED = 2, /* not recoverable: later rbp-based rules fail */
};

/* One row: the rule from `pc` (a link-time address of the object, as in its ELF headers) up to the
 * next row's pc. Rows of an object are sorted by pc with no two neighbours equal in everything but
 * pc. The return address is always at cfa - 8 except in signal frames. */
struct memscope_unwind_row {
	__u32 pc;
	__s32 cfa_offset;
	__s16 rbp_offset;
	__s16 rip_offset; /* MEMSCOPE_CFA_SIGNAL only */
	__u8 cfa_kind;    /* enum memscope_cfa_kind */
	__u8 rbp_kind;    /* enum memscope_rbp_kind */
	__u8 plt_threshold;
	__u8 pad;
};

#endif
