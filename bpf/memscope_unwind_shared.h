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

/* Limits of the BPF maps (powers of two where the walker masks an index with them). */
#define MEMSCOPE_UNWIND_MAX_FRAMES 128
#define MEMSCOPE_UNWIND_DEFAULT_FRAMES 127 /* as deep as the frame-pointer stack maps */
#define MEMSCOPE_UNWIND_MAX_MAPPINGS 256   /* executable mappings per process */
#define MEMSCOPE_UNWIND_MAPPING_SEARCH_STEPS 9
#define MEMSCOPE_UNWIND_ROW_SEARCH_STEPS 21 /* up to 2^21 rows per object */
#define MEMSCOPE_UNWIND_MAX_OBJECTS 4096
#define MEMSCOPE_UNWIND_MAX_PROCESSES 8192
#define MEMSCOPE_UNWIND_ID_PROBES 4
#define MEMSCOPE_UNWIND_ROW_CACHE_SLOTS 512 /* per CPU */

/* Stack ids from the unwinder carry this bit; ids of bpf_get_stackid() never reach it. */
#define MEMSCOPE_UNWOUND_STACK_ID 0x20000000
#define MEMSCOPE_UNWOUND_STACK_ID_MASK 0x1fffffff

/* One executable mapping of a process: link-time pc = address - bias. object_id 0: no rows
 * (anonymous or JIT code, an object whose CFI could not be compiled): frame pointer. */
struct memscope_unwind_mapping {
	__u64 start;
	__u64 end;
	__u64 bias;
	__u32 object_id;
	__u32 rows;
};

/* A process's executable mappings, sorted by start. */
struct memscope_unwind_process {
	__u32 count;
	/* Different for every table user space stores (never 0): rows the walker cached for this
	 * process are valid only while the generation they were cached under is current. */
	__u32 generation;
	struct memscope_unwind_mapping mappings[MEMSCOPE_UNWIND_MAX_MAPPINGS];
};

/* An unwound stack: addresses innermost first (the first exact, the rest return addresses, as
 * bpf_get_stackid() stores them). */
struct memscope_unwound_stack {
	__u32 frames;
	__u32 truncated; /* the walk stopped at the depth limit */
	__u64 frame_pointer_frames; /* bit i: frame i had no CFI and was crossed with the frame pointer */
	/* A 64-bit hash of the addresses independent of the one that picks the id: two stacks are the
	 * same when it and the fields above are (a false match: one in 2^64 per comparison). */
	__u64 check;
	__u64 addresses[MEMSCOPE_UNWIND_MAX_FRAMES];
};

enum memscope_unwind_request_reason {
	MEMSCOPE_UNWIND_REQUEST_PROCESS = 0, /* a process without a mapping table (new, or exec'd) */
	MEMSCOPE_UNWIND_REQUEST_MAPPING = 1, /* an address outside every known mapping (dlopen) */
	MEMSCOPE_UNWIND_REQUEST_EXEC = 2,    /* a wanted process exec()ed: its libraries follow */
	/* Not a request: the process's table was deleted (exit, exec); `address` is that table's
	 * generation. User space drops the process's references to its objects' tables. */
	MEMSCOPE_UNWIND_REQUEST_FORGOTTEN = 3,
};

struct memscope_unwind_request {
	__u32 pid;
	__u32 reason;
	__u64 address;
};

enum memscope_unwind_counter {
	MEMSCOPE_UNWIND_STACKS = 0,               /* stacks walked with CFI */
	MEMSCOPE_UNWIND_TRUNCATED = 1,            /* stopped at the depth limit */
	MEMSCOPE_UNWIND_FRAME_POINTER_FRAMES = 2, /* frames crossed with the frame pointer */
	MEMSCOPE_UNWIND_UNKNOWN_PROCESS = 3,      /* stacks of processes not loaded yet (frame pointers) */
	MEMSCOPE_UNWIND_REQUESTS_LOST = 4,        /* requests ring buffer full */
	MEMSCOPE_UNWIND_COUNTERS = 5,
};

#endif
