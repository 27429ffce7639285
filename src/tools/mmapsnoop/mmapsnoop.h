/* mmapsnoop: one record per mmap (and, with --all, munmap and mremap), shared by mmapsnoop.bpf.c
 * and mmapsnoop.cpp. */
#ifndef MEMSCOPE_MMAPSNOOP_H
#define MEMSCOPE_MMAPSNOOP_H

#include "memscope_shared.h"

/* The file's path is collected as dentry names, innermost first, in at most MMAPSNOOP_PATH_DEPTH
 * steps of the walk up the tree: a step records a name (up to MMAPSNOOP_NAME_LEN - 1 bytes and its
 * NUL) or crosses a mount point (records nothing). */
#define MMAPSNOOP_PATH_DEPTH 20
#define MMAPSNOOP_NAME_LEN 64

enum mmapsnoop_syscall {
	MMAPSNOOP_MMAP = 0,
	MMAPSNOOP_MUNMAP = 1,
	MMAPSNOOP_MREMAP = 2,
};

enum mmapsnoop_file_state {
	MMAPSNOOP_FILE_NONE = 0,      /* anonymous mapping */
	MMAPSNOOP_FILE_PATH = 1,      /* path[] holds the names up to the task's root directory */
	MMAPSNOOP_FILE_INTERNAL = 2,  /* a file on a kernel-internal mount (memfd, [perf_event], …) */
	MMAPSNOOP_FILE_BAD_FD = 3,    /* mmap of an fd that is not open */
	MMAPSNOOP_FILE_UNMAPPED = 4,  /* munmap/mremap: nothing mapped at the address */
	MMAPSNOOP_FILE_UNKNOWN = 5,   /* munmap/mremap: the VMA could not be looked up */
};

struct mmapsnoop_event {
	__u64 args[6]; /* the syscall's arguments, as passed */
	__s64 ret;     /* address, or -errno */
	__u64 fs_magic; /* the file's super_block s_magic: tells anon inodes apart */
	__u32 pid;
	__u32 tid;
	__u32 syscall;    /* enum mmapsnoop_syscall */
	__u32 file_state; /* enum mmapsnoop_file_state */
	__u32 path_len; /* bytes used in path[] */
	__u32 path_truncated;
	char comm[MEMSCOPE_COMM_LEN];
	/* The names back to back, each NUL-terminated. A record ends after path_len bytes of it: an
	 * event costs what its path needs (~40 bytes for /usr/lib/x86_64-linux-gnu/libc.so.6), not
	 * the worst case, so the ring buffer holds many more of them. */
	char path[MMAPSNOOP_PATH_DEPTH * MMAPSNOOP_NAME_LEN];
};

#endif
