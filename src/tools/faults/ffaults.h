/* ffaults: page faults counted by the file (or kind of anonymous memory) that was faulted on;
 * shared by ffaults.bpf.c and ffaults.cpp. */
#ifndef MEMSCOPE_FFAULTS_H
#define MEMSCOPE_FFAULTS_H

#include "memscope_shared.h"

#define FFAULTS_PATH_DEPTH 16 /* path components kept, innermost first */
#define FFAULTS_NAME_LEN 64   /* bytes kept of each component */

/* What a faulting address belonged to. */
enum ffaults_kind {
	FFAULTS_FILE = 0,     /* a file mapping: key.file identifies the file */
	FFAULTS_ANON = 1,     /* anonymous memory outside heap and stack */
	FFAULTS_HEAP = 2,     /* the brk heap */
	FFAULTS_STACK = 3,    /* the main thread's stack */
	FFAULTS_UNMAPPED = 4, /* a user-mode fault outside every mapping (it ends in SIGSEGV) */
	FFAULTS_UNKNOWN = 5,  /* the mapping could not be looked up (mmap lock contended) */
};

/* A file, for FFAULTS_FILE (else zeros): device, inode number and generation. Not the struct inode
 * address: an inode freed and allocated again for another file would inherit the first one's name. */
struct ffaults_file_id {
	__u64 ino;
	__u32 dev;
	__u32 generation;
};

/* Key of the file_faults map; the value is a __u64 count. */
struct ffaults_key {
	struct ffaults_file_id file;
	__u32 kind;
	__u32 pad;
};

/* Sent through the ring buffer the first time a file is faulted on (per report interval). */
struct ffaults_file_name {
	struct ffaults_file_id file;
	__u32 depth;     /* components filled in names[] */
	__u32 truncated; /* the path had more than FFAULTS_PATH_DEPTH components */
	char names[FFAULTS_PATH_DEPTH][FFAULTS_NAME_LEN]; /* innermost (the file name) first */
};

#endif
