/* GOT redirection for a sampler loaded into a running process (memleak -p --sample-bytes): the
 * library cannot come first in the symbol search order there, so the entries of the global offset
 * tables through which each loaded object calls the allocator are pointed at the library's
 * functions instead, as heaptrack's injection does. */
#pragma once

#include <stddef.h>

struct got_redirect {
	const char *symbol; /* the name the relocation refers to */
	void *replacement;  /* this library's function */
};

/* Redirects, in every object loaded now and in every object dlopen loads from now on, the
 * JUMP_SLOT and GLOB_DAT entries of the named symbols (this library, the dynamic loader and the
 * vDSO excepted). Returns the number of entries redirected, or 0 when none of them is `required`'s
 * (then nothing was changed). */
long got_redirect_install(const struct got_redirect *redirects, size_t count, const char *required);

/* Puts back the original value of every redirected entry of an object still loaded that still
 * holds the replacement; returns how many. Objects loaded later are no longer redirected. */
long got_redirect_remove(void);

/* What the `dlopen` entries point at while redirected: the real dlopen, then the new objects'
 * entries. */
void *got_redirect_dlopen(const char *file, int mode);
