// SPDX-License-Identifier: GPL-2.0
/* libmemscope-sampler.so: byte-sampled heap profiling inside the process (memleak --sample-bytes).
 *
 * It interposes the C allocator functions and C++'s operator new/delete, forwards every call to the
 * allocator found next (dlsym RTLD_NEXT: glibc, or a jemalloc/tcmalloc preloaded after it), and
 * samples allocations by bytes: each thread counts down a distance drawn from an exponential
 * distribution of mean `interval` bytes, and the allocation that crosses zero is sampled. So every
 * allocated byte is equally likely to be sampled (a Poisson process over bytes, as in tcmalloc,
 * jemalloc and Go), a block of n bytes is sampled with probability p = 1 - exp(-n/interval), and a
 * sample standing for n/p bytes (weight) makes the totals unbiased.
 *
 * A sampled block fires the USDT probe ddheap:alloc(ptr, size, weight) and goes into a lock-free
 * open-addressing set; a free of a block in the set fires ddheap:free(ptr). These are the probes of
 * Datadog's heap sampler that the OpenTelemetry eBPF profiler consumes (docs/sampled-heap.md).
 * The unsampled path is a load of the probe's semaphore, a TLS countdown and a tail call of the
 * real function (malloc), and for free one load while no sample is outstanding. When no tracer is
 * attached (semaphore 0) nothing is sampled at all, so detaching memscope switches sampling off.
 *
 * The hard places:
 * - Recursion: operator new calls malloc through the PLT; a per-thread depth, and a countdown
 *   that cannot run out meanwhile, make the inner call plain. The probe and the set never
 *   allocate.
 * - dlsym bootstrap: dlsym may allocate (dlerror buffers) before the real functions are known;
 *   those calls are served from a static arena whose blocks are never freed.
 * - fork: no lock is ever held, the set is plain memory; the child reseeds its generator.
 * - Signal handlers and threads: state is per thread (initial-exec TLS, no allocation), the set
 *   is updated with compare-and-swap only.
 * - realloc: a sampled old block leaves the set (free probe) before the real call, so its address
 *   cannot be handed out again and sampled while still in the set; the result is sampled as a new
 *   allocation of the new size.
 * - Blocks from one name freed through another (new/free, malloc/delete): one set for all. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define _SDT_HAS_SEMAPHORES 1
/* The probe sites stay sdt.h's 1-byte nops. Kernel 6.18 turns an attached uprobe on a 5-byte nop
 * into a call to a per-process trampoline, but a child forked while such a call is in place gets
 * the call without the trampoline's mapping and dies at its first sample (seen on 6.18.44 with
 * sampled_hard's fork); and the saving measured was only ~0.2 of ~5.6 us per sample. */
#include <sys/sdt.h>

#define EXPORT __attribute__((visibility("default")))
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* USDT semaphores: the kernel raises them while a uprobe is attached to the probe. Only `alloc`
 * is checked; `free` fires for every block in the set (a nop instruction when untraced). */
EXPORT unsigned short ddheap_alloc_semaphore __attribute__((section(".probes")));
EXPORT unsigned short ddheap_free_semaphore __attribute__((section(".probes")));
/* The same variable without the GOT indirection an exported symbol costs on every call. */
extern unsigned short alloc_semaphore __attribute__((alias("ddheap_alloc_semaphore"), visibility("hidden")));

/* Mean bytes between samples; 1 samples every allocation with its own size as weight (exact).
 * Read from MEMSCOPE_SAMPLE_BYTES at start; a tracer may write it. */
EXPORT volatile uint64_t memscope_sampler_interval = 512 * 1024;
/* Samples dropped because the set had no free slot near the block's hash (for the tracer). */
EXPORT volatile uint64_t memscope_sampler_set_full = 0;
/* Sampled blocks not yet freed. */
EXPORT volatile uint64_t memscope_sampler_live = 0;

struct thread_state {
	int64_t countdown; /* bytes until the next sample; INT64_MAX inside a nested call */
	uint64_t random;   /* xorshift64* state; 0: not seeded */
	uint64_t interval; /* the interval the countdown was drawn for; 0: none yet */
	uint32_t depth;    /* inside an interposed call that calls another one */
};
static __thread struct thread_state thread_state __attribute__((tls_model("initial-exec")));

/* --- The real allocator ------------------------------------------------------------------- */

struct real_functions {
	void *(*malloc)(size_t);
	void (*free)(void *);
	void *(*calloc)(size_t, size_t);
	void *(*realloc)(void *, size_t);
	void *(*reallocarray)(void *, size_t, size_t);
	int (*posix_memalign)(void **, size_t, size_t);
	void *(*aligned_alloc)(size_t, size_t);
	void *(*memalign)(size_t, size_t);
	void *(*valloc)(size_t);
	void *(*pvalloc)(size_t);
};
static void *malloc_slow(size_t size);
static void *calloc_slow(size_t count, size_t size);
/* Until the real functions are known, malloc and calloc reach them through their slow paths
 * (which resolve them or use the arena), so that their fast paths need not ask. */
static struct real_functions real = {.malloc = malloc_slow, .calloc = calloc_slow};
static int resolved_flag;      /* `real` holds the allocator's functions */
static volatile int resolving; /* dlsym is running: allocations come from the arena */
static int configured;         /* the environment was read and the set created (once) */

/* Non-zero while a free must look further than its one load: the real functions are not known
 * yet (1 until resolved), the arena has handed out blocks (1, for good), or samples are
 * outstanding (one each). */
static volatile uint64_t free_checks = 1;
static int free_checks_resolved, free_checks_arena; /* each added to or taken from it once */

/* Bootstrap arena: each block is preceded by its size (for realloc out of the arena). */
static char arena[64 * 1024] __attribute__((aligned(16)));
static size_t arena_used;

static int arena_owns(const void *pointer)
{
	return (const char *)pointer >= arena && (const char *)pointer < arena + sizeof(arena);
}

static void *arena_allocate(size_t size, size_t alignment)
{
	int first = 0;
	if (__atomic_compare_exchange_n(&free_checks_arena, &first, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		__atomic_fetch_add(&free_checks, 1, __ATOMIC_RELEASE);
	if (alignment < 16)
		alignment = 16;
	for (;;) {
		size_t used = __atomic_load_n(&arena_used, __ATOMIC_RELAXED);
		size_t start = (used + 16 + alignment - 1) & ~(alignment - 1);
		if (start + size > sizeof(arena))
			return NULL;
		if (__atomic_compare_exchange_n(&arena_used, &used, start + size, 0, __ATOMIC_RELAXED,
						__ATOMIC_RELAXED)) {
			*(size_t *)(arena + start - sizeof(size_t)) = size;
			return arena + start;
		}
	}
}

static size_t arena_size(const void *pointer)
{
	return *(const size_t *)((const char *)pointer - sizeof(size_t));
}

/* The definition after this library's: RTLD_NEXT when preloaded. A library loaded with dlopen
 * sees only its own dependencies after it, so a C++ runtime's operator new is found in the
 * global scope instead (which this library, loaded RTLD_LOCAL, is not part of). */
static void *next_symbol(const char *name)
{
	void *found = dlsym(RTLD_NEXT, name);
	if (!found) {
		found = dlsym(RTLD_DEFAULT, name);
		Dl_info own, other;
		if (found && dladdr(found, &other) && dladdr((void *)&next_symbol, &own) &&
		    other.dli_fbase == own.dli_fbase)
			found = NULL;
	}
	return found;
}

static void set_create(void);
static uint64_t environment_number(const char *name, uint64_t fallback);

static void resolve(void)
{
	/* Several threads may resolve at once: each stores the same pointers. */
	__atomic_store_n(&resolving, 1, __ATOMIC_RELAXED);
	struct real_functions found;
	found.free = next_symbol("free");
	found.calloc = next_symbol("calloc");
	found.realloc = next_symbol("realloc");
	found.reallocarray = next_symbol("reallocarray");
	found.posix_memalign = next_symbol("posix_memalign");
	found.aligned_alloc = next_symbol("aligned_alloc");
	found.memalign = next_symbol("memalign");
	found.valloc = next_symbol("valloc");
	found.pvalloc = next_symbol("pvalloc");
	found.malloc = next_symbol("malloc");
	if (!found.malloc || !found.free)
		abort();
	/* Other objects' constructors (libstdc++'s emergency pool) allocate before ours runs: the
	 * configuration is read at the first call, so that no countdown is drawn for another mean. */
	int unconfigured = 0;
	if (__atomic_compare_exchange_n(&configured, &unconfigured, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
		memscope_sampler_interval =
			environment_number("MEMSCOPE_SAMPLE_BYTES", memscope_sampler_interval);
		set_create();
	}
	real = found;
	__atomic_store_n(&resolved_flag, 1, __ATOMIC_RELEASE);
	int first = 0;
	if (__atomic_compare_exchange_n(&free_checks_resolved, &first, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		__atomic_fetch_sub(&free_checks, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&resolving, 0, __ATOMIC_RELAXED);
}

static inline int ready(void)
{
	if (LIKELY(__atomic_load_n(&resolved_flag, __ATOMIC_ACQUIRE)))
		return 1;
	if (__atomic_load_n(&resolving, __ATOMIC_RELAXED))
		return 0;
	resolve();
	return 1;
}

/* --- The set of sampled blocks ------------------------------------------------------------ */

/* Open addressing, linear probing over at most MAX_PROBES slots. A slot is empty (0), a deleted
 * block (TOMBSTONE, reused by inserts) or a block address stored inverted: memleak's leak scan
 * reads this process's anonymous memory for pointers, and the set must not make every sampled
 * block look referenced. Lookups stop at an empty slot. */
#define TOMBSTONE ((uintptr_t)1)
#define MAX_PROBES 64
static uintptr_t *set_slots;
static uint64_t set_mask;
static int set_bits;

static void set_create_sized(uint64_t wanted);

static void set_create(void)
{
	set_create_sized(environment_number("MEMSCOPE_SAMPLER_SLOTS", 1 << 16));
}

static void set_create_sized(uint64_t wanted)
{
	int bits = 10;
	while (bits < 30 && (1ULL << bits) < wanted)
		bits++;
	void *slots = mmap(NULL, (1ULL << bits) * sizeof(uintptr_t), PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (slots == MAP_FAILED)
		return;
	set_mask = (1ULL << bits) - 1;
	set_bits = bits;
	__atomic_store_n(&set_slots, (uintptr_t *)slots, __ATOMIC_RELEASE);
}

/* In front of the set, for frees: a counting filter small enough to stay in cache (8 KiB), one
 * saturating counter per hash bucket of the sampled blocks' addresses. A free whose bucket is 0
 * was not sampled: no lookup in the set (which would miss the cache on most frees of a program
 * that has a few samples outstanding). A counter that reaches 255 stays there (lookups only). */
#define FILTER_BITS 13
static uint8_t filter[1 << FILTER_BITS];

static inline uint32_t filter_bucket(uintptr_t address)
{
	return (uint32_t)(((address >> 4) * 0xD6E8FEB86659FD93ULL) >> (64 - FILTER_BITS));
}

static void filter_add(uintptr_t address)
{
	uint8_t *counter = &filter[filter_bucket(address)];
	uint8_t seen = __atomic_load_n(counter, __ATOMIC_RELAXED);
	while (seen != 255 &&
	       !__atomic_compare_exchange_n(counter, &seen, seen + 1, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
	}
}

static void filter_remove(uintptr_t address)
{
	uint8_t *counter = &filter[filter_bucket(address)];
	uint8_t seen = __atomic_load_n(counter, __ATOMIC_RELAXED);
	while (seen != 255 && seen != 0 &&
	       !__atomic_compare_exchange_n(counter, &seen, seen - 1, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
	}
}

static inline uint64_t set_home(uintptr_t stored)
{
	return ((~stored >> 4) * 0x9E3779B97F4A7C15ULL) >> (64 - set_bits);
}

static int set_insert(uintptr_t address)
{
	/* Counted before the block is visible in the set, so that a free never sees it in the set
	 * with its bucket at 0. */
	filter_add(address);
	address = ~address;
	uintptr_t *slots = __atomic_load_n(&set_slots, __ATOMIC_ACQUIRE);
	if (!slots) {
		filter_remove(~address);
		return 0;
	}
	uint64_t index = set_home(address);
	for (int probe = 0; probe < MAX_PROBES; probe++, index = (index + 1) & set_mask) {
		uintptr_t seen = __atomic_load_n(&slots[index], __ATOMIC_RELAXED);
		while (seen == 0 || seen == TOMBSTONE) {
			if (__atomic_compare_exchange_n(&slots[index], &seen, address, 0, __ATOMIC_ACQ_REL,
							__ATOMIC_RELAXED)) {
				__atomic_fetch_add(&memscope_sampler_live, 1, __ATOMIC_RELAXED);
				__atomic_fetch_add(&free_checks, 1, __ATOMIC_RELAXED);
				return 1;
			}
		}
	}
	__atomic_fetch_add(&memscope_sampler_set_full, 1, __ATOMIC_RELAXED);
	filter_remove(~address);
	return 0;
}

/* Removes `address`; true when it was there. */
static int set_remove(uintptr_t address)
{
	if (LIKELY(__atomic_load_n(&filter[filter_bucket(address)], __ATOMIC_RELAXED) == 0))
		return 0;
	uintptr_t block = address;
	address = ~address;
	uintptr_t *slots = __atomic_load_n(&set_slots, __ATOMIC_ACQUIRE);
	if (!slots)
		return 0;
	uint64_t index = set_home(address);
	for (int probe = 0; probe < MAX_PROBES; probe++, index = (index + 1) & set_mask) {
		uintptr_t seen = __atomic_load_n(&slots[index], __ATOMIC_RELAXED);
		if (seen == 0)
			return 0;
		if (seen == address) {
			if (!__atomic_compare_exchange_n(&slots[index], &seen, TOMBSTONE, 0, __ATOMIC_ACQ_REL,
							 __ATOMIC_RELAXED))
				return 0; /* a double free racing with itself: one of them reports */
			__atomic_fetch_sub(&memscope_sampler_live, 1, __ATOMIC_RELAXED);
			__atomic_fetch_sub(&free_checks, 1, __ATOMIC_RELAXED);
			filter_remove(block);
			return 1;
		}
	}
	return 0;
}

/* --- Sampling ------------------------------------------------------------------------------ */

/* One probe site each (noinline), so that a tracer attaches once per probe. */
__attribute__((noinline)) static void fire_alloc(void *pointer, uint64_t size, uint64_t weight)
{
	STAP_PROBE3(ddheap, alloc, pointer, size, weight);
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void fire_free(void *pointer)
{
	STAP_PROBE1(ddheap, free, pointer);
	__asm__ volatile("" ::: "memory");
}

static uint64_t next_random(struct thread_state *state)
{
	if (UNLIKELY(!state->random)) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		state->random = ((uint64_t)now.tv_nsec << 20) ^ (uint64_t)now.tv_sec ^
				((uintptr_t)state * 0x9E3779B97F4A7C15ULL) ^ (uint64_t)gettid() << 40;
		if (!state->random)
			state->random = 0x2545F4914F6CDD1DULL;
	}
	uint64_t x = state->random;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	state->random = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Bytes to the next sample: exponential with mean `interval`. */
static int64_t draw_distance(struct thread_state *state, uint64_t interval)
{
	double uniform = ((next_random(state) >> 11) + 1) * 0x1.0p-53; /* (0, 1] */
	double distance = -log(uniform) * (double)interval;
	return distance < 1 ? 1 : (int64_t)distance;
}

__attribute__((noinline)) static void sample_slow(struct thread_state *state, void *pointer, size_t size)
{
	uint64_t interval = memscope_sampler_interval;
	if (interval == 0) {
		state->countdown = INT64_MAX;
		return;
	}
	state->depth++;
	uint64_t weight = size;
	if (interval == 1) {
		state->countdown = 0;
		state->interval = 1;
	} else if (state->interval != interval) {
		/* A thread's first call, or a tracer changed the mean: a countdown for this mean starts
		 * here; this call is not a crossing unless the first distance is shorter than it. */
		state->interval = interval;
		state->countdown = draw_distance(state, interval) - (int64_t)size;
		if (state->countdown > 0) {
			state->depth--;
			return;
		}
		state->countdown = draw_distance(state, interval);
		double probability = -expm1(-(double)size / (double)interval);
		weight = probability > 0 ? (uint64_t)((double)size / probability + 0.5) : size;
	} else {
		state->countdown = draw_distance(state, interval);
		double probability = -expm1(-(double)size / (double)interval);
		weight = probability > 0 ? (uint64_t)((double)size / probability + 0.5) : size;
	}
	if (size > 0 && set_insert((uintptr_t)pointer))
		fire_alloc(pointer, size, weight);
	state->depth--;
}

static inline void account(void *pointer, size_t size)
{
	if (LIKELY(!__atomic_load_n(&alloc_semaphore, __ATOMIC_RELAXED)) || UNLIKELY(!pointer))
		return;
	struct thread_state *state = &thread_state;
	if (UNLIKELY(state->depth))
		return;
	state->countdown = (int64_t)((uint64_t)state->countdown - (uint64_t)size);
	if (LIKELY(state->countdown > 0))
		return;
	sample_slow(state, pointer, size);
}

/* Before the real free: the address cannot be handed out again until then. */
static inline void forget(void *pointer)
{
	if (LIKELY(__atomic_load_n(&memscope_sampler_live, __ATOMIC_RELAXED) == 0))
		return;
	if (set_remove((uintptr_t)pointer))
		fire_free(pointer);
}

/* This library's own definition of an exported function, bound inside the library: the exported
 * name itself would resolve to the global scope's (libc's) when the library is loaded with dlopen.
 * The GOT redirection of an injected library (got_redirect.c) points other objects at these. */
#if defined(__GNUC__) && !defined(__clang__)
/* The aliases do not repeat the declarations' attributes (malloc, nothrow); nothing calls them. */
#pragma GCC diagnostic ignored "-Wmissing-attributes"
#endif
#define OWN_ALIAS(symbol) extern __typeof__(symbol) own_##symbol __attribute__((alias(#symbol), visibility("hidden")));

/* A call that calls another interposed one (operator new calls malloc through the PLT): the inner
 * call must not be sampled or counted again, and the fast paths do not look at the depth, so the
 * countdown cannot run out meanwhile; it is put back afterwards (also when bad_alloc unwinds). */
struct nested_call {
	struct thread_state *state;
	int64_t countdown;
};

static inline struct nested_call enter_call(void)
{
	struct thread_state *state = &thread_state;
	struct nested_call call = {state, state->countdown};
	state->depth++;
	state->countdown = INT64_MAX;
	return call;
}

static void leave_call(struct nested_call *call)
{
	call->state->countdown = call->countdown;
	call->state->depth--;
}

#define IN_CALL() struct nested_call nested_call __attribute__((cleanup(leave_call))) = enter_call()

/* --- The C allocator -----------------------------------------------------------------------
 * Each function is a fast path that ends in a tail call of the real function (no tracer, inside
 * operator new, or the countdown not crossed: the countdown is stored and nothing else happens),
 * and a slow path for the first calls (bootstrap) and for samples. */

/* True when this allocation of `size` bytes is not a sample: no tracer, or the countdown, taken
 * down by `size`, stays above zero. False leaves the countdown for account() on the slow path.
 * The depth is not looked at: inside a nested call the countdown cannot run out. A thread's
 * countdown starts at 0 and is set above zero only once the real functions are known, so a true
 * with a tracer attached means they are. */
static inline int unsampled(size_t size)
{
	/* No LIKELY: laid out this way, the traced path runs straight into the tail call (a taken
	 * branch there cost ~0.4 ns a call, bench/sampler_fast_path.c) and the untraced one jumps. */
	if (!__atomic_load_n(&alloc_semaphore, __ATOMIC_RELAXED))
		return 1;
	struct thread_state *state = &thread_state;
	int64_t left = (int64_t)((uint64_t)state->countdown - (uint64_t)size);
	if (LIKELY(left > 0)) {
		state->countdown = left;
		return 1;
	}
	return 0;
}

static inline int resolved(void)
{
	return LIKELY(__atomic_load_n(&resolved_flag, __ATOMIC_ACQUIRE));
}

/* Frees of blocks that are not samples (none outstanding, or the filter's bucket of the block is
 * empty) and do not come from the arena, once the real functions are known. */
static inline int plain_free(void *pointer)
{
	if (LIKELY(__atomic_load_n(&free_checks, __ATOMIC_RELAXED) == 0))
		return 1;
	return LIKELY((uintptr_t)pointer - (uintptr_t)arena >= sizeof(arena)) &&
	       LIKELY(__atomic_load_n(&filter[filter_bucket((uintptr_t)pointer)], __ATOMIC_RELAXED) == 0) &&
	       resolved();
}

__attribute__((noinline)) static void *malloc_slow(size_t size)
{
	if (UNLIKELY(!ready()))
		return arena_allocate(size, 16);
	void *pointer = real.malloc(size);
	account(pointer, size);
	return pointer;
}

EXPORT void *malloc(size_t size)
{
	if (unsampled(size))
		return real.malloc(size);
	return malloc_slow(size);
}

__attribute__((noinline)) static void free_slow(void *pointer)
{
	if (UNLIKELY(!pointer) || UNLIKELY(arena_owns(pointer)))
		return;
	forget(pointer);
	if (UNLIKELY(!ready()))
		return; /* cannot happen: a block not from the arena came from the real allocator */
	real.free(pointer);
}

EXPORT void free(void *pointer)
{
	if (plain_free(pointer))
		return real.free(pointer);
	free_slow(pointer);
}

__attribute__((noinline)) static void *calloc_slow(size_t count, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(count, size, &total))
		total = SIZE_MAX;
	if (UNLIKELY(!ready()))
		return total == SIZE_MAX ? NULL : arena_allocate(total, 16); /* static storage: zero */
	void *pointer = real.calloc(count, size);
	account(pointer, total);
	return pointer;
}

EXPORT void *calloc(size_t count, size_t size)
{
	size_t total;
	if (!__builtin_mul_overflow(count, size, &total) && unsampled(total))
		return real.calloc(count, size);
	return calloc_slow(count, size);
}

static void *realloc_from_arena(void *old, size_t size)
{
	void *pointer = malloc(size);
	if (pointer) {
		size_t old_size = arena_size(old);
		memcpy(pointer, old, old_size < size ? old_size : size);
	}
	return pointer;
}

__attribute__((noinline)) static void *realloc_slow(void *old, size_t size)
{
	if (!old)
		return malloc(size);
	if (UNLIKELY(arena_owns(old)))
		return realloc_from_arena(old, size);
	if (UNLIKELY(!ready()))
		return NULL;
	forget(old);
	void *pointer = real.realloc(old, size);
	account(pointer, size);
	return pointer;
}

EXPORT void *realloc(void *old, size_t size)
{
	if (old && plain_free(old) && unsampled(size))
		return real.realloc(old, size);
	return realloc_slow(old, size);
}

EXPORT void *reallocarray(void *old, size_t count, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(count, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	if (!old || arena_owns(old) || !ready())
		return realloc_slow(old, total);
	forget(old);
	void *pointer;
	{
		/* glibc's reallocarray calls realloc through the PLT (this library's, when jemalloc,
		 * which has none, is the allocator): not a second sample. */
		IN_CALL();
		pointer = real.reallocarray ? real.reallocarray(old, count, size) : real.realloc(old, total);
	}
	account(pointer, total);
	return pointer;
}

EXPORT int posix_memalign(void **result, size_t alignment, size_t size)
{
	if (UNLIKELY(!ready())) {
		*result = arena_allocate(size, alignment);
		return *result ? 0 : ENOMEM;
	}
	int error = real.posix_memalign(result, alignment, size);
	if (error == 0)
		account(*result, size);
	return error;
}

/* aligned_alloc(alignment, size), memalign(alignment, size), valloc(size), pvalloc(size): rarer,
 * one path. */
EXPORT void *aligned_alloc(size_t alignment, size_t size)
{
	if (UNLIKELY(!ready()))
		return arena_allocate(size, alignment);
	void *pointer = real.aligned_alloc(alignment, size);
	account(pointer, size);
	return pointer;
}

EXPORT void *memalign(size_t alignment, size_t size)
{
	if (UNLIKELY(!ready()))
		return arena_allocate(size, alignment);
	void *pointer = real.memalign(alignment, size);
	account(pointer, size);
	return pointer;
}

EXPORT void *valloc(size_t size)
{
	if (UNLIKELY(!ready()))
		return arena_allocate(size, 4096);
	void *pointer = real.valloc(size);
	account(pointer, size);
	return pointer;
}

EXPORT void *pvalloc(size_t size)
{
	if (UNLIKELY(!ready()))
		return arena_allocate((size + 4095) & ~(size_t)4095, 4096);
	void *pointer = real.pvalloc(size);
	account(pointer, size);
	return pointer;
}

OWN_ALIAS(malloc)
OWN_ALIAS(free)
OWN_ALIAS(calloc)
OWN_ALIAS(realloc)
OWN_ALIAS(reallocarray)
OWN_ALIAS(posix_memalign)
OWN_ALIAS(aligned_alloc)
OWN_ALIAS(memalign)
OWN_ALIAS(valloc)
OWN_ALIAS(pvalloc)

/* --- C++ operator new and delete ------------------------------------------------------------
 * Forwarded to the next definition (libstdc++'s, or an allocator's) so that new_handler and
 * bad_alloc behave as without the library. That one calls malloc through the PLT: IN_CALL keeps
 * the inner call from being sampled a second time, and its cleanup handler restores the countdown
 * when bad_alloc unwinds through here (built with -fexceptions). */

static void *lookup_next(void *volatile *slot, const char *name)
{
	void *function = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
	if (LIKELY(function != NULL))
		return function;
	ready();
	function = next_symbol(name);
	if (!function)
		abort(); /* a caller of operator new links a C++ runtime that defines it */
	__atomic_store_n(slot, function, __ATOMIC_RELEASE);
	return function;
}

#define DEFINE_NEW(symbol, params, args)                                                           \
	static void *volatile next_##symbol;                                                       \
	EXPORT void *symbol params                                                                 \
	{                                                                                          \
		void *(*next) params = lookup_next(&next_##symbol, #symbol);                       \
		void *pointer;                                                                     \
		{                                                                                  \
			IN_CALL();                                                                 \
			pointer = next args;                                                       \
		}                                                                                  \
		account(pointer, size);                                                            \
		return pointer;                                                                    \
	}                                                                                          \
	OWN_ALIAS(symbol)

#define DEFINE_DELETE(symbol, params, args)                                                        \
	static void *volatile next_##symbol;                                                       \
	EXPORT void symbol params                                                                  \
	{                                                                                          \
		void (*next) params = lookup_next(&next_##symbol, #symbol);                        \
		if (pointer)                                                                       \
			forget(pointer);                                                           \
		next args;                                                                         \
	}                                                                                          \
	OWN_ALIAS(symbol)

typedef struct nothrow_t nothrow_t;
typedef size_t align_val_t;

DEFINE_NEW(_Znwm, (size_t size), (size))
DEFINE_NEW(_Znam, (size_t size), (size))
DEFINE_NEW(_ZnwmRKSt9nothrow_t, (size_t size, const nothrow_t *tag), (size, tag))
DEFINE_NEW(_ZnamRKSt9nothrow_t, (size_t size, const nothrow_t *tag), (size, tag))
DEFINE_NEW(_ZnwmSt11align_val_t, (size_t size, align_val_t alignment), (size, alignment))
DEFINE_NEW(_ZnamSt11align_val_t, (size_t size, align_val_t alignment), (size, alignment))
DEFINE_NEW(_ZnwmSt11align_val_tRKSt9nothrow_t, (size_t size, align_val_t alignment, const nothrow_t *tag),
	   (size, alignment, tag))
DEFINE_NEW(_ZnamSt11align_val_tRKSt9nothrow_t, (size_t size, align_val_t alignment, const nothrow_t *tag),
	   (size, alignment, tag))

DEFINE_DELETE(_ZdlPv, (void *pointer), (pointer))
DEFINE_DELETE(_ZdaPv, (void *pointer), (pointer))
DEFINE_DELETE(_ZdlPvm, (void *pointer, size_t size), (pointer, size))
DEFINE_DELETE(_ZdaPvm, (void *pointer, size_t size), (pointer, size))
DEFINE_DELETE(_ZdlPvRKSt9nothrow_t, (void *pointer, const nothrow_t *tag), (pointer, tag))
DEFINE_DELETE(_ZdaPvRKSt9nothrow_t, (void *pointer, const nothrow_t *tag), (pointer, tag))
DEFINE_DELETE(_ZdlPvSt11align_val_t, (void *pointer, align_val_t alignment), (pointer, alignment))
DEFINE_DELETE(_ZdaPvSt11align_val_t, (void *pointer, align_val_t alignment), (pointer, alignment))
DEFINE_DELETE(_ZdlPvmSt11align_val_t, (void *pointer, size_t size, align_val_t alignment),
	      (pointer, size, alignment))
DEFINE_DELETE(_ZdaPvmSt11align_val_t, (void *pointer, size_t size, align_val_t alignment),
	      (pointer, size, alignment))
DEFINE_DELETE(_ZdlPvSt11align_val_tRKSt9nothrow_t, (void *pointer, align_val_t alignment, const nothrow_t *tag),
	      (pointer, alignment, tag))
DEFINE_DELETE(_ZdaPvSt11align_val_tRKSt9nothrow_t, (void *pointer, align_val_t alignment, const nothrow_t *tag),
	      (pointer, alignment, tag))

/* --- Injection into a running process (memleak -p --sample-bytes) ---------------------------
 * memscope loads the library with dlopen from inside the process (ptrace) and calls
 * memscope_sampler_inject(): the GOT entries through which every loaded object calls the
 * allocator (and dlopen, so that objects loaded later are redirected too) are pointed at this
 * library's functions (got_redirect.c). memscope_sampler_eject() puts them back; the library
 * stays loaded (a thread may still be inside one of its functions) and only forwards. */

#include "got_redirect.h"

static const struct got_redirect redirects[] = {
#define REDIRECT(symbol) {#symbol, (void *)&own_##symbol}
	REDIRECT(malloc),
	REDIRECT(free),
	REDIRECT(calloc),
	REDIRECT(realloc),
	REDIRECT(reallocarray),
	REDIRECT(posix_memalign),
	REDIRECT(aligned_alloc),
	REDIRECT(memalign),
	REDIRECT(valloc),
	REDIRECT(pvalloc),
	REDIRECT(_Znwm),
	REDIRECT(_Znam),
	REDIRECT(_ZnwmRKSt9nothrow_t),
	REDIRECT(_ZnamRKSt9nothrow_t),
	REDIRECT(_ZnwmSt11align_val_t),
	REDIRECT(_ZnamSt11align_val_t),
	REDIRECT(_ZnwmSt11align_val_tRKSt9nothrow_t),
	REDIRECT(_ZnamSt11align_val_tRKSt9nothrow_t),
	REDIRECT(_ZdlPv),
	REDIRECT(_ZdaPv),
	REDIRECT(_ZdlPvm),
	REDIRECT(_ZdaPvm),
	REDIRECT(_ZdlPvRKSt9nothrow_t),
	REDIRECT(_ZdaPvRKSt9nothrow_t),
	REDIRECT(_ZdlPvSt11align_val_t),
	REDIRECT(_ZdaPvSt11align_val_t),
	REDIRECT(_ZdlPvmSt11align_val_t),
	REDIRECT(_ZdaPvmSt11align_val_t),
	REDIRECT(_ZdlPvSt11align_val_tRKSt9nothrow_t),
	REDIRECT(_ZdaPvSt11align_val_tRKSt9nothrow_t),
#undef REDIRECT
	{"dlopen", (void *)&got_redirect_dlopen},
};

/* Forgets every sample: a tracer attaching now knows none of them. Called while no tracer is
 * attached (the semaphore is 0), so nothing is inserted meanwhile; a concurrent free at worst
 * misses its block, which is what it does anyway once forgotten. */
static void forget_all_samples(void)
{
	uintptr_t *slots = __atomic_load_n(&set_slots, __ATOMIC_ACQUIRE);
	if (slots)
		memset(slots, 0, (set_mask + 1) * sizeof(uintptr_t));
	memset(filter, 0, sizeof(filter));
	uint64_t forgotten = __atomic_exchange_n(&memscope_sampler_live, 0, __ATOMIC_RELAXED);
	__atomic_fetch_sub(&free_checks, forgotten, __ATOMIC_RELAXED);
	__atomic_store_n(&memscope_sampler_set_full, 0, __ATOMIC_RELAXED);
}

/* Returns the number of GOT entries redirected (those of malloc among them: 0 means the process
 * calls no allocator through a GOT, and then nothing was changed), or a negative errno:
 * -EBUSY when a tracer is attached to this library's probes already (another memscope). */
EXPORT long memscope_sampler_inject(uint64_t interval, uint64_t slots)
{
	ready();
	if (__atomic_load_n(&alloc_semaphore, __ATOMIC_RELAXED))
		return -EBUSY;
	forget_all_samples();
	/* A larger set for a larger --max-allocations. The old one is not unmapped: a free that
	 * loaded its address may still be reading it (sizes only grow, so this happens rarely). */
	if (slots > set_mask + 1)
		set_create_sized(slots);
	memscope_sampler_interval = interval ? interval : 512 * 1024;
	/* Countdowns drawn for another mean are redrawn at each thread's next call. */
	return got_redirect_install(redirects, sizeof(redirects) / sizeof(redirects[0]), "malloc");
}

/* Puts back every redirected GOT entry that still points here; returns how many. */
EXPORT long memscope_sampler_eject(void)
{
	return got_redirect_remove();
}

/* --- Start-up and fork ----------------------------------------------------------------------- */

static uint64_t environment_number(const char *name, uint64_t fallback)
{
	const char *text = getenv(name);
	if (!text || !*text)
		return fallback;
	uint64_t value = 0;
	for (; *text; text++) {
		if (*text < '0' || *text > '9')
			return fallback;
		value = value * 10 + (uint64_t)(*text - '0');
	}
	return value;
}

static void reseed_after_fork(void)
{
	thread_state.random = 0;
	thread_state.interval = 0;
}

__attribute__((constructor)) static void sampler_start(void)
{
	ready();
	pthread_atfork(NULL, NULL, reseed_after_fork);
}
