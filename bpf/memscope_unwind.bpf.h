/* The user-stack unwinder: walks a thread's user stack with the DWARF call-frame information that
 * user space compiled into rows (bpf/memscope_unwind_shared.h, src/runtime/user_stacks.cpp), so
 * that stacks go on through code built without frame pointers (Debian's libc, libstdc++, …).
 *
 * Per frame: the process's mapping table (sorted, binary search) gives the object and its load
 * bias, the object's row array (binary search) gives the rule for that pc, and the rule gives the
 * caller's stack pointer, frame pointer and return address. A per-CPU cache of recent rows by
 * address skips both searches on hot call paths. An object without rows (JIT code, a
 * table not loaded yet, a rule the walker cannot run) is crossed with the frame pointer, and that
 * frame is marked. A process or an address the tables do not know yet is reported to user space
 * through `unwind_requests`, which loads what is missing.
 *
 * Stacks are stored once in `unwound_stacks` under a hash of their addresses (linear probing on
 * collisions), so that tools aggregate by a 32-bit id exactly as with bpf_get_stackid().
 *
 * Include after vmlinux.h, the libbpf headers and memscope.bpf.h. */
#ifndef MEMSCOPE_UNWIND_BPF_H
#define MEMSCOPE_UNWIND_BPF_H

#include <bpf/bpf_core_read.h>

#include "memscope_unwind_shared.h"

/* Set by user space before load (--stack-mode). Off: bpf_get_stackid() with frame pointers. */
const volatile bool unwind_with_cfi = false;
const volatile __u32 unwind_max_frames = MEMSCOPE_UNWIND_DEFAULT_FRAMES;
/* -c: the command memscope ptraces. When its dynamic loader announces new libraries, the thread is
 * stopped (SIGSTOP, which its tracer memscope takes and suppresses) until their tables are loaded,
 * so that not even the first stack through a new library is walked without them. */
const volatile __u32 unwind_stop_pid = 0;

/* The template of one object's rows: user space creates one array per object, sized to its rows. */
struct memscope_unwind_rows {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP | BPF_F_MMAPABLE); /* user space copies rows in through mmap */
	__uint(max_entries, 1);
	/* Sizes rather than types: the row type is only used through pointers here, so its BTF would
	 * be a forward declaration libbpf cannot size. */
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct memscope_unwind_row));
};

/* Object id -> its rows. Objects are shared by every process that maps them. An array: the
 * verifier inlines its lookups, one per frame. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, MEMSCOPE_UNWIND_MAX_OBJECTS);
	__type(key, __u32);
	__array(values, struct memscope_unwind_rows);
} unwind_tables SEC(".maps");

/* Process (tgid) -> its executable mappings. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MEMSCOPE_UNWIND_MAX_PROCESSES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct memscope_unwind_process);
} unwind_processes SEC(".maps");

/* Unwound stacks by id (MEMSCOPE_UNWOUND_STACK_ID bit cleared). Sized by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct memscope_unwound_stack);
} unwound_stacks SEC(".maps");

/* What user space must load: a process, or an address no mapping of a known process covers. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} unwind_requests SEC(".maps");

/* Threads stopped by memscope_unwind_libraries_changed(), for the tracer to tell its stops from
 * a user's SIGSTOP. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} unwind_stopped_threads SEC(".maps");

/* When each process last asked, so a busy process does not flood the requests. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} unwind_last_request SEC(".maps");

/* Counters user space reports (enum memscope_unwind_counter). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MEMSCOPE_UNWIND_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} unwind_counters SEC(".maps");

/* The stack being built: too big for the BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct memscope_unwound_stack);
} unwind_scratch SEC(".maps");

/* The rows the walker used last, per CPU, by (process, address): a hot call path (an allocation
 * loop) walks the same return addresses again and again, and a hit skips both binary searches
 * (up to 9 + 21 steps, each row step a helper call into the object's array). A slot is valid
 * while its process's table generation is the one it was cached under. */
struct memscope_unwind_cached_row {
	__u64 address;
	__u32 pid;
	__u32 generation;
	struct memscope_unwind_row row;
};

struct memscope_unwind_row_cache {
	struct memscope_unwind_cached_row slots[MEMSCOPE_UNWIND_ROW_CACHE_SLOTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct memscope_unwind_row_cache);
} unwind_row_cache SEC(".maps");

#define MEMSCOPE_UNWIND_REQUEST_INTERVAL_NS (50ULL * 1000 * 1000)

static __always_inline void memscope_unwind_count(__u32 counter)
{
	__u64 *value = bpf_map_lookup_elem(&unwind_counters, &counter);
	if (value)
		*value += 1; /* per-CPU: no atomics needed */
}

static __always_inline void memscope_unwind_submit(__u32 pid, __u32 reason, __u64 address)
{
	struct memscope_unwind_request *request =
		bpf_ringbuf_reserve(&unwind_requests, sizeof(*request), 0);
	if (!request) {
		memscope_unwind_count(MEMSCOPE_UNWIND_REQUESTS_LOST);
		return;
	}
	request->pid = pid;
	request->reason = reason;
	request->address = address;
	bpf_ringbuf_submit(request, 0);
}

static __always_inline void memscope_unwind_request(__u32 pid, __u32 reason, __u64 address, bool urgent)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 *last = bpf_map_lookup_elem(&unwind_last_request, &pid);
	if (!urgent && last && now - *last < MEMSCOPE_UNWIND_REQUEST_INTERVAL_NS)
		return;
	bpf_map_update_elem(&unwind_last_request, &pid, &now, BPF_ANY);
	memscope_unwind_submit(pid, reason, address);
}

/* The registers the walk carries from frame to frame: scalars only, so that a global function can
 * take them by pointer (the verifier forgets what the pointed-to bytes held: a pointer kept there
 * would be lost to the caller). */
struct memscope_unwind_registers {
	__u64 ip, sp, bp;
	bool ip_is_exact; /* frame 0 and the frame a signal interrupted: not a return address */
	bool bp_valid;
};

struct memscope_unwind_walk {
	struct memscope_unwound_stack *stack;
	struct memscope_unwind_process *process;
	struct memscope_unwind_row_cache *cache;
	__u32 generation; /* the process table's, read once per stack */
	__u64 hash; /* of the addresses so far, for the id */
	struct memscope_unwind_registers regs;
	__u32 pid;
};

/* The index of the mapping covering `address`, or -1. A lower-bound search over a shrinking
 * window [base, base + size): each step keeps the half that holds the last mapping starting at or
 * below the address; nine steps bring 256 mappings down to one. Branch-free (memscope_at_least),
 * so the verifier walks one path per step, and global, so it does that once rather than on each
 * pass over the walker's step. */
__noinline __s32 memscope_unwind_find_mapping(struct memscope_unwind_process *process, __u64 address)
{
	if (!process)
		return -1;
	__u32 size = process->count;
	if (size == 0 || size > MEMSCOPE_UNWIND_MAX_MAPPINGS)
		return -1;
	__u32 base = 0;
	for (int i = 0; i < MEMSCOPE_UNWIND_MAPPING_SEARCH_STEPS; i++) {
		__u32 half = size / 2;
		__u32 probe = (base + half) & (MEMSCOPE_UNWIND_MAX_MAPPINGS - 1);
		base += half * memscope_at_least(address, process->mappings[probe].start);
		size -= half;
	}
	base &= MEMSCOPE_UNWIND_MAX_MAPPINGS - 1;
	struct memscope_unwind_mapping *mapping = &process->mappings[base];
	return mapping->start <= address && address < mapping->end ? (__s32)base : -1;
}

/* The index of the row in effect at `pc` (link-time address) among the `count` rows of object
 * `object_id`, or -1: the same search. A global function: the verifier checks its 21 steps once,
 * not on each of the ~14 paths through the walker's step that reach it. */
__noinline __s32 memscope_unwind_find_row(__u32 object_id, __u32 count, __u32 pc)
{
	void *rows = bpf_map_lookup_elem(&unwind_tables, &object_id);
	__u32 size = count, base = 0;
	if (!rows || size == 0)
		return -1;
#pragma unroll
	for (int i = 0; i < MEMSCOPE_UNWIND_ROW_SEARCH_STEPS; i++) {
		__u32 half = size / 2;
		__u32 probe = base + half;
		struct memscope_unwind_row *row = bpf_map_lookup_elem(rows, &probe);
		if (!row)
			return -1;
		base += half * memscope_at_least(pc, row->pc);
		size -= half;
	}
	struct memscope_unwind_row *row = bpf_map_lookup_elem(rows, &base);
	return row && row->pc <= pc ? (__s32)base : -1;
}

/* What applying a row did. */
#define MEMSCOPE_UNWIND_STEP_END 0
#define MEMSCOPE_UNWIND_STEP_CFI 1
#define MEMSCOPE_UNWIND_STEP_FRAME_POINTER 2

/* Crosses a frame with the frame pointer: [rbp] is the caller's rbp, [rbp+8] the return address. */
static __always_inline int memscope_unwind_by_frame_pointer(struct memscope_unwind_registers *regs)
{
	__u64 saved[2];
	if (!regs->bp_valid || regs->bp < regs->sp ||
	    bpf_probe_read_user(saved, sizeof(saved), (void *)regs->bp) < 0)
		return MEMSCOPE_UNWIND_STEP_END;
	regs->sp = regs->bp + 16;
	regs->bp = saved[0];
	regs->ip = saved[1];
	regs->ip_is_exact = false;
	return MEMSCOPE_UNWIND_STEP_FRAME_POINTER;
}

/* Applies one row (MEMSCOPE_CFA_NONE: the frame pointer) to the registers. A global function: the
 * verifier checks the rule's cases once, not on each of its passes over the walker's step. */
__noinline int memscope_unwind_apply_row(struct memscope_unwind_registers *regs, struct memscope_unwind_row *row)
{
	if (!regs || !row)
		return MEMSCOPE_UNWIND_STEP_END;
	__u64 cfa;
	switch (row->cfa_kind) {
	case MEMSCOPE_CFA_RSP:
		cfa = regs->sp + (__s64)row->cfa_offset;
		break;
	case MEMSCOPE_CFA_RBP:
		if (!regs->bp_valid)
			return MEMSCOPE_UNWIND_STEP_END;
		cfa = regs->bp + (__s64)row->cfa_offset;
		break;
	case MEMSCOPE_CFA_PLT:
		cfa = regs->sp + (__s64)row->cfa_offset + ((regs->ip & 15) >= row->plt_threshold ? 8 : 0);
		break;
	case MEMSCOPE_CFA_SIGNAL: {
		__u64 sp = regs->sp, next_sp = 0, next_bp = 0, next_ip = 0;
		if (bpf_probe_read_user(&next_sp, sizeof(next_sp), (void *)(sp + row->cfa_offset)) < 0 ||
		    bpf_probe_read_user(&next_bp, sizeof(next_bp), (void *)(sp + row->rbp_offset)) < 0 ||
		    bpf_probe_read_user(&next_ip, sizeof(next_ip), (void *)(sp + row->rip_offset)) < 0)
			return MEMSCOPE_UNWIND_STEP_END;
		regs->sp = next_sp;
		regs->bp = next_bp;
		regs->bp_valid = true;
		regs->ip = next_ip;
		regs->ip_is_exact = true;
		return next_ip != 0 ? MEMSCOPE_UNWIND_STEP_CFI : MEMSCOPE_UNWIND_STEP_END;
	}
	case MEMSCOPE_CFA_END:
		return MEMSCOPE_UNWIND_STEP_END;
	default:
		return memscope_unwind_by_frame_pointer(regs);
	}
	__u64 return_address = 0;
	if (bpf_probe_read_user(&return_address, sizeof(return_address), (void *)(cfa - 8)) < 0)
		return MEMSCOPE_UNWIND_STEP_END;
	if (row->rbp_kind == MEMSCOPE_RBP_AT_CFA) {
		__u64 bp = 0;
		if (bpf_probe_read_user(&bp, sizeof(bp), (void *)(cfa + (__s64)row->rbp_offset)) < 0)
			return MEMSCOPE_UNWIND_STEP_END;
		regs->bp = bp;
		regs->bp_valid = true;
	} else if (row->rbp_kind == MEMSCOPE_RBP_UNDEFINED) {
		regs->bp_valid = false;
	}
	/* The stack only grows towards lower addresses: a caller below its callee is garbage. */
	if (cfa <= regs->sp)
		return MEMSCOPE_UNWIND_STEP_END;
	regs->sp = cfa;
	regs->ip = return_address;
	regs->ip_is_exact = false;
	return MEMSCOPE_UNWIND_STEP_CFI;
}

static long memscope_unwind_step(__u32 frame, void *context)
{
	struct memscope_unwind_walk *walk = context;
	struct memscope_unwound_stack *stack = walk->stack;
	if (walk->regs.ip == 0)
		return 1;
	if (frame >= unwind_max_frames || frame >= MEMSCOPE_UNWIND_MAX_FRAMES) {
		stack->truncated = 1;
		memscope_unwind_count(MEMSCOPE_UNWIND_TRUNCATED);
		return 1;
	}
	/* The compiler knows frame < MAX_FRAMES here and would drop a plain mask, which the verifier
	 * needs on the register it indexes with. */
	__u32 slot = frame;
	barrier_var(slot);
	stack->addresses[slot & (MEMSCOPE_UNWIND_MAX_FRAMES - 1)] = walk->regs.ip;
	stack->frames = frame + 1;
	/* Both hashes as the frames come: a loop over the finished stack cost the verifier ~1.3k
	 * instructions, and comparing stored stacks address by address as much again. */
	walk->hash = (walk->hash ^ walk->regs.ip) * 0x100000001b3ULL;
	walk->hash ^= walk->hash >> 29;
	stack->check = (stack->check ^ walk->regs.ip) * 0x9e3779b97f4a7c15ULL;
	stack->check ^= stack->check >> 31;

	/* Every way through the step ends in one memscope_unwind_apply_row() of a copy of the rule on
	 * the stack (a frame-pointer step when none is found): with a call per way, the verifier
	 * checked the rule's cases once for each. */
	__u64 pc = walk->regs.ip_is_exact ? walk->regs.ip : walk->regs.ip - 1;
	struct memscope_unwind_row rule = {.cfa_kind = MEMSCOPE_CFA_NONE};
	struct memscope_unwind_cached_row *cached = NULL;
	bool found = false;
	if (walk->cache) {
		__u32 slot = (__u32)(((pc ^ ((__u64)walk->pid << 32)) * 0x9e3779b97f4a7c15ULL) >> 40);
		barrier_var(slot);
		cached = &walk->cache->slots[slot & (MEMSCOPE_UNWIND_ROW_CACHE_SLOTS - 1)];
		if (cached->address == pc && cached->pid == walk->pid && cached->generation == walk->generation) {
			rule = cached->row;
			found = true;
		}
	}
	if (!found) {
		__s32 mapping_index = memscope_unwind_find_mapping(walk->process, pc);
		struct memscope_unwind_mapping *mapping =
			mapping_index >= 0 ? &walk->process->mappings[mapping_index & (MEMSCOPE_UNWIND_MAX_MAPPINGS - 1)]
					   : NULL;
		if (!mapping) {
			/* A mapping made after the table was read (dlopen, JIT code): ask, and cross it
			 * with the frame pointer. */
			memscope_unwind_request(walk->pid, MEMSCOPE_UNWIND_REQUEST_MAPPING, pc, false);
		} else if (mapping->object_id && pc - mapping->bias <= 0xffffffffULL) {
			__u32 object_id = mapping->object_id;
			__s32 index = memscope_unwind_find_row(object_id, mapping->rows, (__u32)(pc - mapping->bias));
			void *rows = index >= 0 ? bpf_map_lookup_elem(&unwind_tables, &object_id) : NULL;
			struct memscope_unwind_row *row = rows ? bpf_map_lookup_elem(rows, &index) : NULL;
			if (row) {
				rule = *row;
				if (cached) {
					cached->address = pc;
					cached->pid = walk->pid;
					cached->generation = walk->generation;
					cached->row = rule;
				}
			}
		}
	}
	if (rule.cfa_kind == MEMSCOPE_CFA_NONE)
		memscope_unwind_count(MEMSCOPE_UNWIND_FRAME_POINTER_FRAMES);
	int applied = memscope_unwind_apply_row(&walk->regs, &rule);
	if (applied == MEMSCOPE_UNWIND_STEP_FRAME_POINTER && frame < 64)
		stack->frame_pointer_frames |= 1ULL << frame;
	return applied == MEMSCOPE_UNWIND_STEP_END;
}

static __always_inline bool memscope_unwound_equal(struct memscope_unwound_stack *a,
						   struct memscope_unwound_stack *b)
{
	return a->frames == b->frames && a->truncated == b->truncated &&
	       a->frame_pointer_frames == b->frame_pointer_frames && a->check == b->check;
}

/* Stores the stack (once) and returns its id with MEMSCOPE_UNWOUND_STACK_ID set, or -1 (counted). */
static __always_inline __s32 memscope_unwound_stack_id(struct memscope_unwound_stack *stack, __u64 walk_hash)
{
	walk_hash ^= stack->frames;
	__u32 hash = (__u32)(walk_hash ^ (walk_hash >> 32));
	for (int probe = 0; probe < MEMSCOPE_UNWIND_ID_PROBES; probe++) {
		__u32 id = (hash + probe) & MEMSCOPE_UNWOUND_STACK_ID_MASK;
		struct memscope_unwound_stack *stored = bpf_map_lookup_elem(&unwound_stacks, &id);
		if (!stored) {
			if (bpf_map_update_elem(&unwound_stacks, &id, stack, BPF_NOEXIST) == 0)
				return (__s32)(id | MEMSCOPE_UNWOUND_STACK_ID);
			stored = bpf_map_lookup_elem(&unwound_stacks, &id);
			if (!stored) {
				memscope_count_drop(MEMSCOPE_DROP_STACK);
				return -1;
			}
		}
		if (memscope_unwound_equal(stored, stack))
			return (__s32)(id | MEMSCOPE_UNWOUND_STACK_ID);
	}
	memscope_count_drop(MEMSCOPE_DROP_STACK);
	return -1;
}

#define MEMSCOPE_UNWIND_USE_FRAME_POINTERS (-2)

/* The current thread's user stack walked with CFI and stored: its id with MEMSCOPE_UNWOUND_STACK_ID
 * set, -1 (counted), or MEMSCOPE_UNWIND_USE_FRAME_POINTERS for a process without a table yet or a
 * walk that found no frame. A global function: the verifier checks it once per program, not once
 * per path that reaches a call (tools that record stacks on several paths paid for each). */
__noinline __s32 memscope_unwind_current_stack(void)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct memscope_unwind_process *process = bpf_map_lookup_elem(&unwind_processes, &pid);
	if (!process) {
		memscope_unwind_request(pid, MEMSCOPE_UNWIND_REQUEST_PROCESS, 0, false);
		memscope_unwind_count(MEMSCOPE_UNWIND_UNKNOWN_PROCESS);
		return MEMSCOPE_UNWIND_USE_FRAME_POINTERS;
	}
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 zero = 0;
	struct memscope_unwound_stack *stack = bpf_map_lookup_elem(&unwind_scratch, &zero);
	if (!stack)
		return -1;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	struct memscope_unwind_walk walk = {
		.stack = stack,
		.process = process,
		.cache = bpf_map_lookup_elem(&unwind_row_cache, &zero),
		.generation = process->generation,
		.regs = {.ip = BPF_CORE_READ(regs, ip),
			 .sp = BPF_CORE_READ(regs, sp),
			 .bp = BPF_CORE_READ(regs, bp),
			 .ip_is_exact = true,
			 .bp_valid = true},
		.hash = 0xcbf29ce484222325ULL,
		.pid = pid,
	};
	stack->frames = 0;
	stack->truncated = 0;
	stack->frame_pointer_frames = 0;
	stack->check = 0x84222325cbf29ce4ULL;
	bpf_loop(MEMSCOPE_UNWIND_MAX_FRAMES + 1, memscope_unwind_step, &walk, 0);
	memscope_unwind_count(MEMSCOPE_UNWIND_STACKS);
	if (stack->frames == 0)
		return MEMSCOPE_UNWIND_USE_FRAME_POINTERS;
	return memscope_unwound_stack_id(stack, walk.hash);
}

/* The current thread's user stack as an id for read_stack(): unwound with CFI when that mode is on
 * and the process is known, with frame pointers (bpf_get_stackid) otherwise. `stack_map` is the
 * tool's stack trace map, `flags` its bpf_get_stackid() flags (BPF_F_USER_STACK included). */
static __always_inline __s32 memscope_user_stack_id(void *ctx, void *stack_map, __u64 flags)
{
	if (!unwind_with_cfi)
		return memscope_stack_id(ctx, stack_map, flags);
	__s32 id = memscope_unwind_current_stack();
	return id == MEMSCOPE_UNWIND_USE_FRAME_POINTERS ? memscope_stack_id(ctx, stack_map, flags) : id;
}

/* Deletes a process's table and tells user space which one (its generation), so that the tables
 * of objects no live process maps any more are freed. Not rate-limited: every such record counts. */
static __always_inline void memscope_unwind_forget(__u32 pid)
{
	struct memscope_unwind_process *process = bpf_map_lookup_elem(&unwind_processes, &pid);
	if (!process)
		return;
	__u32 generation = process->generation;
	/* Lost when the ring buffer is full: user space also finds exited processes once a second. */
	if (bpf_map_delete_elem(&unwind_processes, &pid) == 0)
		memscope_unwind_submit(pid, MEMSCOPE_UNWIND_REQUEST_FORGOTTEN, generation);
}

/* exec() replaces every mapping and an exited pid may be reused: forget the table, so that the
 * next stack asks for a fresh one. Attached by user space only in CFI mode. */
SEC("raw_tp/sched_process_exec")
int memscope_unwind_forget_on_exec(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	memscope_unwind_forget(pid);
	/* The new program's executable and loader are mapped now: load them before its first stack. */
	if (memscope_current_wanted())
		memscope_unwind_request(pid, MEMSCOPE_UNWIND_REQUEST_EXEC, 0, true);
	return 0;
}

/* A uprobe on the dynamic loader's _dl_debug_state(), which it calls after mapping the program's
 * libraries and around every dlopen()/dlclose() (the hook debuggers use); attached for the
 * target process (-p, -c) only. */
SEC("uprobe")
int memscope_unwind_libraries_changed(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 pid = pid_tgid >> 32, tid = (__u32)pid_tgid, stopped = 1;
	if (!memscope_current_wanted())
		return 0;
	memscope_unwind_request(pid, MEMSCOPE_UNWIND_REQUEST_MAPPING, 0, true);
	if (pid == unwind_stop_pid && bpf_map_update_elem(&unwind_stopped_threads, &tid, &stopped, BPF_ANY) == 0)
		bpf_send_signal_thread(19 /* SIGSTOP */);
	return 0;
}

SEC("raw_tp/sched_process_exit")
int memscope_unwind_forget_on_exit(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 pid = pid_tgid >> 32;
	if (pid == (__u32)pid_tgid) /* the group leader exits last */
		memscope_unwind_forget(pid);
	return 0;
}

#endif
