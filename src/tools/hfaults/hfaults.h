/* hfaults: hugetlb page faults per process; shared by hfaults.bpf.c and hfaults.cpp. */
#ifndef MEMSCOPE_HFAULTS_H
#define MEMSCOPE_HFAULTS_H

#include "memscope_shared.h"

/* Value of the hugetlb_faults map, keyed by PID (tgid). */
struct hfaults_counts {
	__u64 faults;
	char comm[MEMSCOPE_COMM_LEN]; /* the command of the first faulting thread seen */
};

#endif
