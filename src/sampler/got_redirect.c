// SPDX-License-Identifier: GPL-2.0
/* GOT redirection of an injected sampler (see got_redirect.h).
 *
 * Each loaded object calls functions of other objects through its global offset table: a JUMP_SLOT
 * entry per PLT call, a GLOB_DAT entry per address taken (and per call with -fno-plt). The entries
 * of the allocator's names are rewritten to point at the sampler, the original values kept so that
 * they can be put back. libc's own entries are redirected too: glibc calls malloc through its PLT
 * (strdup, fopen…) so that an interposed allocator sees those calls.
 *
 * The hard places:
 * - RELRO: with -z relro the GOT is read-only after relocation; the page is made writable for the
 *   store and read-only again.
 * - Concurrency: a GOT entry is one aligned word, so a thread calling through it sees the old or
 *   the new function, both of which work. Passes run under dl_iterate_phdr, which holds the
 *   loader's lock: no object is unloaded (and its GOT unmapped) during a pass.
 * - Objects loaded later: the `dlopen` entries point at got_redirect_dlopen, which redirects the
 *   new objects once the real dlopen returns. glibc resolves a bare name against the RUNPATH of
 *   dlopen's caller, which is now this library: when that fails, the caller's own RUNPATH/RPATH is
 *   searched ($ORIGIN expanded) before the failure is reported.
 * - Removal: an entry is put back only while its object is loaded and it still holds the
 *   replacement (an object unloaded and another mapped at its address is left alone).
 * - Never redirected: this library (it forwards to the real functions), the dynamic loader (its
 *   allocator is set up once, before any injection) and the vDSO. */
#define _GNU_SOURCE
#include "got_redirect.h"

#include <dlfcn.h>
#include <elf.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct saved_entry {
	uintptr_t *address;
	uintptr_t original;
	uintptr_t replacement;
};

/* A process has a few hundred allocator entries even with many libraries; the table is mmap'ed
 * (never malloc'ed: this runs inside the allocator's callers). */
#define MAX_SAVED 65536

static pthread_mutex_t redirect_lock = PTHREAD_MUTEX_INITIALIZER;
static struct saved_entry *saved;
static size_t saved_count;
static const struct got_redirect *redirects;
static size_t redirect_count;
static int installed;

struct object_view {
	uintptr_t bias;
	const ElfW(Dyn) *dynamic;
	uintptr_t relro_start, relro_end;
};

/* glibc rewrites the pointers of a writable dynamic section to run-time addresses; the vDSO's and
 * a read-only one's stay link-time offsets. */
static uintptr_t dynamic_address(const struct object_view *object, uintptr_t value)
{
	return value < object->bias ? value + object->bias : value;
}

static int is_own_object(const struct dl_phdr_info *info)
{
	uintptr_t own = (uintptr_t)&got_redirect_install;
	for (int index = 0; index < info->dlpi_phnum; index++) {
		const ElfW(Phdr) *header = &info->dlpi_phdr[index];
		uintptr_t start = info->dlpi_addr + header->p_vaddr;
		if (header->p_type == PT_LOAD && own >= start && own < start + header->p_memsz)
			return 1;
	}
	return 0;
}

/* False for objects never redirected. */
static int view_object(const struct dl_phdr_info *info, struct object_view *object)
{
	memset(object, 0, sizeof(*object));
	if (info->dlpi_addr == _r_debug.r_ldbase && info->dlpi_addr != 0)
		return 0; /* the dynamic loader */
	if (info->dlpi_name && strncmp(info->dlpi_name, "linux-vdso", 10) == 0)
		return 0;
	if (is_own_object(info))
		return 0;
	object->bias = info->dlpi_addr;
	for (int index = 0; index < info->dlpi_phnum; index++) {
		const ElfW(Phdr) *header = &info->dlpi_phdr[index];
		if (header->p_type == PT_DYNAMIC)
			object->dynamic = (const ElfW(Dyn) *)(info->dlpi_addr + header->p_vaddr);
		else if (header->p_type == PT_GNU_RELRO) {
			object->relro_start = info->dlpi_addr + header->p_vaddr;
			object->relro_end = object->relro_start + header->p_memsz;
		}
	}
	return object->dynamic != NULL;
}

static void store_entry(const struct object_view *object, uintptr_t *address, uintptr_t value)
{
	uintptr_t where = (uintptr_t)address;
	if (where >= object->relro_start && where < object->relro_end) {
		uintptr_t page_size = (uintptr_t)sysconf(_SC_PAGESIZE);
		void *page = (void *)(where & ~(page_size - 1));
		if (mprotect(page, page_size, PROT_READ | PROT_WRITE) != 0)
			return;
		__atomic_store_n(address, value, __ATOMIC_RELEASE);
		mprotect(page, page_size, PROT_READ);
		return;
	}
	__atomic_store_n(address, value, __ATOMIC_RELEASE);
}

static const struct got_redirect *redirect_for(const char *name)
{
	for (size_t index = 0; index < redirect_count; index++)
		if (strcmp(name, redirects[index].symbol) == 0)
			return &redirects[index];
	return NULL;
}

struct install_pass {
	long redirected;
	long required_found;
	const char *required;
};

static void redirect_table(const struct object_view *object, const ElfW(Rela) *table, size_t bytes,
			   const ElfW(Sym) *symbols, const char *strings, size_t strings_size,
			   struct install_pass *pass)
{
	for (size_t index = 0; index < bytes / sizeof(ElfW(Rela)); index++) {
		const ElfW(Rela) *relocation = &table[index];
		unsigned type = ELF64_R_TYPE(relocation->r_info);
		if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT)
			continue;
		size_t name_offset = symbols[ELF64_R_SYM(relocation->r_info)].st_name;
		if (name_offset == 0 || name_offset >= strings_size)
			continue;
		const struct got_redirect *redirect = redirect_for(strings + name_offset);
		if (!redirect)
			continue;
		uintptr_t *address = (uintptr_t *)(object->bias + relocation->r_offset);
		uintptr_t current = __atomic_load_n(address, __ATOMIC_ACQUIRE);
		uintptr_t replacement = (uintptr_t)redirect->replacement;
		if (current == replacement || saved_count == MAX_SAVED)
			continue;
		saved[saved_count++] = (struct saved_entry){address, current, replacement};
		store_entry(object, address, replacement);
		pass->redirected++;
		if (strcmp(redirect->symbol, pass->required) == 0)
			pass->required_found++;
	}
}

static int install_in_object(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	struct object_view object;
	if (!view_object(info, &object))
		return 0;
	uintptr_t symbols = 0, strings = 0, strings_size = 0, plt = 0, plt_size = 0, rela = 0, rela_size = 0;
	int plt_is_rela = 1;
	for (const ElfW(Dyn) *entry = object.dynamic; entry->d_tag != DT_NULL; entry++) {
		switch (entry->d_tag) {
		case DT_SYMTAB: symbols = dynamic_address(&object, entry->d_un.d_ptr); break;
		case DT_STRTAB: strings = dynamic_address(&object, entry->d_un.d_ptr); break;
		case DT_STRSZ: strings_size = entry->d_un.d_val; break;
		case DT_JMPREL: plt = dynamic_address(&object, entry->d_un.d_ptr); break;
		case DT_PLTRELSZ: plt_size = entry->d_un.d_val; break;
		case DT_PLTREL: plt_is_rela = entry->d_un.d_val == DT_RELA; break;
		case DT_RELA: rela = dynamic_address(&object, entry->d_un.d_ptr); break;
		case DT_RELASZ: rela_size = entry->d_un.d_val; break;
		}
	}
	if (!symbols || !strings)
		return 0;
	struct install_pass *pass = data;
	if (plt && plt_is_rela)
		redirect_table(&object, (const ElfW(Rela) *)plt, plt_size, (const ElfW(Sym) *)symbols,
			       (const char *)strings, strings_size, pass);
	if (rela)
		redirect_table(&object, (const ElfW(Rela) *)rela, rela_size, (const ElfW(Sym) *)symbols,
			       (const char *)strings, strings_size, pass);
	return 0;
}

static int remove_in_object(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	struct object_view object;
	if (!view_object(info, &object))
		return 0;
	long *restored = data;
	for (size_t index = 0; index < saved_count; index++) {
		uintptr_t where = (uintptr_t)saved[index].address;
		int inside = 0;
		for (int header = 0; header < info->dlpi_phnum && !inside; header++) {
			const ElfW(Phdr) *segment = &info->dlpi_phdr[header];
			uintptr_t start = info->dlpi_addr + segment->p_vaddr;
			inside = segment->p_type == PT_LOAD && where >= start && where + sizeof(uintptr_t) <= start + segment->p_memsz;
		}
		if (!inside || __atomic_load_n(saved[index].address, __ATOMIC_ACQUIRE) != saved[index].replacement)
			continue;
		store_entry(&object, saved[index].address, saved[index].original);
		(*restored)++;
	}
	return 0;
}

/* Called with redirect_lock held. */
static long remove_all(void)
{
	long restored = 0;
	dl_iterate_phdr(remove_in_object, &restored);
	saved_count = 0;
	return restored;
}

long got_redirect_install(const struct got_redirect *table, size_t count, const char *required)
{
	pthread_mutex_lock(&redirect_lock);
	if (!saved) {
		void *memory = mmap(NULL, MAX_SAVED * sizeof(struct saved_entry), PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (memory == MAP_FAILED) {
			pthread_mutex_unlock(&redirect_lock);
			return 0;
		}
		saved = memory;
	}
	redirects = table;
	redirect_count = count;
	struct install_pass pass = {0, 0, required};
	dl_iterate_phdr(install_in_object, &pass);
	if (pass.required_found == 0) {
		remove_all();
		pass.redirected = 0;
	} else {
		__atomic_store_n(&installed, 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&redirect_lock);
	return pass.redirected;
}

long got_redirect_remove(void)
{
	pthread_mutex_lock(&redirect_lock);
	__atomic_store_n(&installed, 0, __ATOMIC_RELEASE);
	long restored = remove_all();
	pthread_mutex_unlock(&redirect_lock);
	return restored;
}

/* --- dlopen ----------------------------------------------------------------------------------- */

typedef void *(*dlopen_function)(const char *, int);

static dlopen_function real_dlopen(void)
{
	static dlopen_function found;
	dlopen_function function = __atomic_load_n(&found, __ATOMIC_ACQUIRE);
	if (!function) {
		/* This library does not define dlopen: the default scope's is libc's (or libdl's). */
		function = (dlopen_function)dlsym(RTLD_DEFAULT, "dlopen");
		__atomic_store_n(&found, function, __ATOMIC_RELEASE);
	}
	return function;
}

/* The directory of the object `map` (for $ORIGIN): its name's, or the executable's. */
static int origin_of(const struct link_map *map, char *directory, size_t size)
{
	if (map->l_name && map->l_name[0] == '/') {
		size_t length = strlen(map->l_name);
		if (length >= size)
			return 0;
		memcpy(directory, map->l_name, length + 1);
	} else {
		ssize_t length = readlink("/proc/self/exe", directory, size - 1);
		if (length <= 0)
			return 0;
		directory[length] = '\0';
	}
	char *slash = strrchr(directory, '/');
	if (!slash)
		return 0;
	*slash = '\0';
	return 1;
}

/* Appends `text` to `path` (capacity PATH_MAX); false when it does not fit. */
static int append(char *path, size_t *length, const char *text, size_t text_length)
{
	if (*length + text_length >= PATH_MAX)
		return 0;
	memcpy(path + *length, text, text_length);
	*length += text_length;
	path[*length] = '\0';
	return 1;
}

/* dlopen(file) as glibc would have done it for `caller`: in each directory of the caller's
 * RUNPATH (or RPATH), with $ORIGIN expanded. NULL when none holds it. */
static void *open_from_caller_path(const void *caller, const char *file, int mode)
{
	Dl_info info;
	struct link_map *map = NULL;
	if (!dladdr1(caller, &info, (void **)&map, RTLD_DL_LINKMAP) || !map || !map->l_ld)
		return NULL;
	struct object_view object = {.bias = map->l_addr};
	const char *strings = NULL;
	uintptr_t runpath = 0, rpath = 0;
	int has_runpath = 0, has_rpath = 0;
	for (const ElfW(Dyn) *entry = map->l_ld; entry->d_tag != DT_NULL; entry++) {
		if (entry->d_tag == DT_STRTAB)
			strings = (const char *)dynamic_address(&object, entry->d_un.d_ptr);
		else if (entry->d_tag == DT_RUNPATH)
			runpath = entry->d_un.d_val, has_runpath = 1;
		else if (entry->d_tag == DT_RPATH)
			rpath = entry->d_un.d_val, has_rpath = 1;
	}
	if (!strings || (!has_runpath && !has_rpath))
		return NULL;
	const char *list = strings + (has_runpath ? runpath : rpath);
	char origin[PATH_MAX];
	int have_origin = origin_of(map, origin, sizeof(origin));
	while (*list) {
		const char *end = strchr(list, ':');
		size_t entry_length = end ? (size_t)(end - list) : strlen(list);
		char path[PATH_MAX];
		size_t length = 0;
		path[0] = '\0';
		int fits = 1;
		for (size_t at = 0; at < entry_length && fits;) {
			const char *rest = list + at;
			size_t left = entry_length - at;
			if (left >= 7 && strncmp(rest, "$ORIGIN", 7) == 0) {
				fits = have_origin && append(path, &length, origin, strlen(origin));
				at += 7;
			} else if (left >= 9 && strncmp(rest, "${ORIGIN}", 9) == 0) {
				fits = have_origin && append(path, &length, origin, strlen(origin));
				at += 9;
			} else {
				fits = append(path, &length, rest, 1);
				at++;
			}
		}
		if (fits && length > 0 && append(path, &length, "/", 1) && append(path, &length, file, strlen(file))) {
			void *handle = real_dlopen()(path, mode);
			if (handle)
				return handle;
		}
		list += entry_length;
		if (*list == ':')
			list++;
	}
	return NULL;
}

void *got_redirect_dlopen(const char *file, int mode)
{
	dlopen_function open = real_dlopen();
	if (!open)
		return NULL;
	void *handle = open(file, mode);
	if (!handle && file && !strchr(file, '/')) {
		handle = open_from_caller_path(__builtin_return_address(0), file, mode);
		if (!handle)
			open(file, mode); /* dlerror() reports the search the caller asked for */
	}
	if (handle && __atomic_load_n(&installed, __ATOMIC_ACQUIRE)) {
		pthread_mutex_lock(&redirect_lock);
		if (installed) {
			struct install_pass pass = {0, 0, ""};
			dl_iterate_phdr(install_in_object, &pass);
		}
		pthread_mutex_unlock(&redirect_lock);
	}
	return handle;
}
