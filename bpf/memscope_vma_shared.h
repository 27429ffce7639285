/* How memscope_vma_lookup() (memscope_vma.bpf.h) answered, as counted in the vma_lookups map;
 * shared by the BPF side and user space. */
#ifndef MEMSCOPE_VMA_SHARED_H
#define MEMSCOPE_VMA_SHARED_H

enum memscope_vma_lookup_source {
	MEMSCOPE_VMA_FROM_CACHE = 0,    /* the mapping cached for this mm, still valid */
	MEMSCOPE_VMA_FROM_FIND_VMA = 1, /* bpf_find_vma() */
	/* bpf_find_vma() was busy (another BPF program looked up a mapping in the same fault and
	 * its deferred mmap unlock is pending): a lockless walk of the mapping tree, validated by
	 * the mm's lock sequence count */
	MEMSCOPE_VMA_FROM_WALK = 2,
	/* bpf_find_vma() was busy and the walk could not be validated (a writer changed the
	 * mappings meanwhile, or the kernel has no lock sequence count or no maple tree) */
	MEMSCOPE_VMA_UNRESOLVED = 3,
	MEMSCOPE_VMA_LOOKUP_SOURCES = 4,
};

#endif
