/* Definitions shared by the BPF side and user space: fixed-width types only. */
#ifndef MEMSCOPE_SHARED_H
#define MEMSCOPE_SHARED_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define MEMSCOPE_COMM_LEN 16
#define MEMSCOPE_NAME_LEN 64
#define MEMSCOPE_PATH_LEN 256
#define MEMSCOPE_MAX_STACK_DEPTH 127
#define MEMSCOPE_NO_UID 0xffffffffu

enum memscope_drop_reason {
	MEMSCOPE_DROP_RINGBUF_FULL = 0,
	MEMSCOPE_DROP_STACK = 1,
	MEMSCOPE_DROP_MAP_FULL = 2,
	MEMSCOPE_DROP_REASONS = 3,
};

#endif
