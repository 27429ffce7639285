// SPDX-License-Identifier: GPL-2.0
/* ffaults: page faults by file. The book's ffaults.bt counts calls of filemap_fault(), the page
 * cache's fault handler, by vmf->vma->vm_file; that is the fentry/kprobe hook here. Kernels without
 * kprobes and fentry still have the page fault exception tracepoints: there the faulting address
 * is looked up with bpf_find_vma(), which also tells anonymous memory (heap, stack, other) apart
 * and sees files whose faults bypass filemap_fault (tmpfs/shmem, DAX). */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "ffaults.h"
#include "memscope.bpf.h"
#include "memscope_vma.bpf.h"
#include "memscope_page_fault.bpf.h"

/* A looked-up VMA's kind is counted as is. */
_Static_assert(FFAULTS_FILE == MEMSCOPE_VMA_FILE && FFAULTS_ANON == MEMSCOPE_VMA_ANON &&
		       FFAULTS_HEAP == MEMSCOPE_VMA_HEAP && FFAULTS_STACK == MEMSCOPE_VMA_STACK,
	       "ffaults_kind and memscope_vma_kind disagree");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct ffaults_key);
	__type(value, __u64);
} file_faults SEC(".maps");

/* Too big for the BPF stack: the name is built in a per-CPU slot, then copied into the ring buffer. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ffaults_file_name);
} name_scratch SEC(".maps");

/* Where the walk up the dentry tree is; one bpf_loop() step per component or mount crossing. */
struct path_walk {
	struct dentry *dentry;
	struct mount *mnt;
	struct ffaults_file_name *name;
};

static long path_step(__u32 index, void *data)
{
	struct path_walk *walk = data;
	struct ffaults_file_name *name = walk->name;
	struct dentry *dentry = walk->dentry;
	struct mount *mnt = walk->mnt;
	struct vfsmount *vfsmnt = (void *)mnt + bpf_core_field_offset(struct mount, mnt);

	if (dentry == BPF_CORE_READ(vfsmnt, mnt_root)) {
		struct mount *parent_mnt = BPF_CORE_READ(mnt, mnt_parent);
		if (parent_mnt == mnt)
			return 1; /* the root of the mount tree */
		walk->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		walk->mnt = parent_mnt;
		return 0;
	}
	__u32 depth = name->depth;
	if (depth >= FFAULTS_PATH_DEPTH) {
		name->truncated = 1;
		return 1;
	}
	const unsigned char *component = BPF_CORE_READ(dentry, d_name.name);
	bpf_probe_read_kernel_str(name->names[depth], FFAULTS_NAME_LEN, component);
	name->depth = depth + 1;
	struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
	/* A dentry that is its own parent and not the mount's root: the pseudo file of a shmem
	 * object or memfd ("dev/zero", "memfd:name"), or a root mounted nowhere ("/", dropped by
	 * user space). Its name is the whole path. */
	if (dentry == parent)
		return 1;
	walk->dentry = parent;
	return 0;
}

/* The full path, innermost component first, crossing mount points up to the root of the mount
 * tree. bpf_d_path() would be simpler but is allowed only in a few fentry/LSM hooks. */
static __always_inline void announce_file(struct ffaults_file_id *id, struct file *file)
{
	__u32 zero = 0;
	struct ffaults_file_name *name = bpf_map_lookup_elem(&name_scratch, &zero);
	if (!name)
		return;
	name->file = *id;
	name->depth = 0;
	name->truncated = 0;
	struct vfsmount *vfsmnt = BPF_CORE_READ(file, f_path.mnt);
	struct path_walk walk = {
		.dentry = BPF_CORE_READ(file, f_path.dentry),
		.mnt = (void *)vfsmnt - bpf_core_field_offset(struct mount, mnt),
		.name = name,
	};
	/* Components plus a few mount crossings. */
	bpf_loop(FFAULTS_PATH_DEPTH + 8, path_step, &walk, 0);
	if (bpf_ringbuf_output(&events, name, sizeof(*name), 0))
		memscope_count_drop(MEMSCOPE_DROP_RINGBUF_FULL);
}

static __always_inline void count_fault(__u32 kind, struct file *file)
{
	struct ffaults_key key = {};
	key.kind = kind;
	if (kind == FFAULTS_FILE) {
		struct inode *inode = BPF_CORE_READ(file, f_inode);
		key.file.ino = BPF_CORE_READ(inode, i_ino);
		key.file.dev = BPF_CORE_READ(inode, i_sb, s_dev);
		key.file.generation = BPF_CORE_READ(inode, i_generation);
	}
	/* First fault on this file: its name goes to user space once. */
	if (page_fault_count(&file_faults, &key) && kind == FFAULTS_FILE)
		announce_file(&key.file, file);
}

/* A fault just below the main stack's mapping, near the stack pointer, grows the stack: no VMA
 * holds the address yet. 64 KiB + 32 words is how far below the stack pointer x86 accepted such
 * an access before 5.x relaxed the check. */
static __always_inline bool stack_growth(struct task_struct *task, __u64 address)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	__u64 sp = BPF_CORE_READ(regs, sp);
	__u64 start_stack = BPF_CORE_READ(task, mm, start_stack);
	return address < start_stack && address + 65536 + 32 * sizeof(long) >= sp;
}

static __always_inline int record_address(void *ctx, __u64 address, bool kernel_mode)
{
	if (!memscope_current_wanted())
		return 0;
	struct memscope_vma vma = {};
	long err = memscope_vma_lookup(address, &vma);
	if (err == -MEMSCOPE_ENOENT) {
		/* Kernel-mode faults on kernel addresses have no VMA and are not memory of the task. */
		if (!kernel_mode)
			count_fault(stack_growth(bpf_get_current_task_btf(), address) ? FFAULTS_STACK
										: FFAULTS_UNMAPPED,
				    0);
		return 0;
	}
	if (err) {
		count_fault(FFAULTS_UNKNOWN, 0);
		return 0;
	}
	count_fault(vma.kind, vma.file);
	return 0;
}

MEMSCOPE_PAGE_FAULT_PROGRAMS(ffaults, record_address)

/* filemap_fault(struct vm_fault *vmf): the book's hook. A fault that had to wait for I/O without
 * the mmap lock is retried; it is still one fault. */
static __always_inline int record_filemap_fault(struct vm_fault *vmf)
{
	if (!memscope_current_wanted() || page_fault_is_retry(BPF_CORE_READ(vmf, flags)))
		return 0;
	struct file *file = BPF_CORE_READ(vmf, vma, vm_file);
	if (file)
		count_fault(FFAULTS_FILE, file);
	return 0;
}

SEC("fentry")
int BPF_PROG(ffaults_fentry, struct vm_fault *vmf)
{
	return record_filemap_fault(vmf);
}

SEC("kprobe")
int BPF_KPROBE(ffaults_kprobe, struct vm_fault *vmf)
{
	return record_filemap_fault(vmf);
}

char LICENSE[] SEC("license") = "GPL";
