// SPDX-License-Identifier: GPL-2.0
/* mmapsnoop: every mmap() with its arguments, result and the file mapped; with --all also munmap()
 * and mremap(). The file comes from the task's own state, so files opened before tracing began are
 * named too: for mmap, the fd table at syscall entry (current->files->fdt->fd[fd]); for munmap and
 * mremap, the VMA at the address being unmapped or moved (bpf_find_vma). The path is read at exit
 * from that struct file, which the new mapping (or the unfinished deferred fput) keeps alive. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "memscope_syscalls.bpf.h"
#include "mmapsnoop.h"

/* --all: munmap and mremap too. */
const volatile bool trace_unmaps = false;

#define MMAPSNOOP_MAP_ANONYMOUS 0x20

struct mmapsnoop_inflight {
	struct memscope_syscall_args call;
	struct file *file;
	__u32 file_state;
	__u32 pad;
};

MEMSCOPE_SYSCALL_INFLIGHT_MAP(inflight, struct mmapsnoop_inflight, 10240);

/* The event under construction: too big for the BPF stack, and only its used part is sent. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mmapsnoop_event);
} scratch SEC(".maps");

static __always_inline bool mmapsnoop_wanted(long nr)
{
	if (nr == MEMSCOPE_NR_mmap)
		return true;
	return trace_unmaps && (nr == MEMSCOPE_NR_munmap || nr == MEMSCOPE_NR_mremap);
}

static __always_inline struct file *fd_to_file(__u32 fd)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *file = 0;

	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	return file;
}

struct vma_lookup {
	struct file *file;
};

static long vma_file_callback(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	struct vma_lookup *lookup = data;
	lookup->file = BPF_CORE_READ(vma, vm_file);
	return 0;
}

/* The file mapped at `address`, into state; file_state says why there is none. */
static __always_inline void vma_file_at(struct mmapsnoop_inflight *state, unsigned long address)
{
	struct vma_lookup lookup = {};
	long err = bpf_find_vma(bpf_get_current_task_btf(), address, vma_file_callback, &lookup, 0);

	state->file = lookup.file;
	if (lookup.file)
		state->file_state = MMAPSNOOP_FILE_PATH;
	else if (err == -2 /* ENOENT */)
		state->file_state = MMAPSNOOP_FILE_UNMAPPED;
	else if (err)
		state->file_state = MMAPSNOOP_FILE_UNKNOWN; /* mmap_lock contended (EBUSY) */
	else
		state->file_state = MMAPSNOOP_FILE_NONE;
}

static __always_inline int mmapsnoop_enter(void *ctx, const struct memscope_syscall_args *call)
{
	struct mmapsnoop_inflight state = {};
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	state.call = *call;
	if (call->nr == MEMSCOPE_NR_mmap) {
		/* mmap ignores the fd of anonymous mappings */
		if (!(call->args[3] & MMAPSNOOP_MAP_ANONYMOUS)) {
			state.file = fd_to_file((__u32)call->args[4]);
			state.file_state = state.file ? MMAPSNOOP_FILE_PATH : MMAPSNOOP_FILE_BAD_FD;
		}
	} else {
		/* munmap(addr, len), mremap(old_addr, …): the file mapped at addr */
		vma_file_at(&state, call->args[0]);
	}
	memscope_update_or_count(&inflight, &tid, &state, BPF_ANY);
	return 0;
}

static __always_inline struct mount *mount_of(struct vfsmount *vfsmnt)
{
	return (void *)vfsmnt - bpf_core_field_offset(struct mount, mnt);
}

/* Dentry names from the file up to the task's root directory, crossing mount points like d_path()
 * (which tracepoint programs may not call). Stops early at the root of a mount that is mounted
 * nowhere: the kernel-internal mounts behind memfd, anon inodes and SysV shm.
 *
 * The bytes used so far live in event->path_len, in the map, not in a register: the verifier knows
 * nothing of a value loaded from a map, so every step starts from the same bounds and the walk is
 * verified once per step (a register would carry a different range along each mix of names and
 * mount crossings: 230k verified instructions instead of a few thousand). */
static __always_inline void read_path(struct mmapsnoop_event *event, struct file *file)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct dentry *root_dentry = BPF_CORE_READ(task, fs, root.dentry);
	struct vfsmount *root_mnt = BPF_CORE_READ(task, fs, root.mnt);
	struct dentry *dentry = BPF_CORE_READ(file, f_path.dentry);
	struct vfsmount *vfsmnt = BPF_CORE_READ(file, f_path.mnt);
	struct mount *mnt = mount_of(vfsmnt);

	event->path_truncated = 1;
	event->file_state = MMAPSNOOP_FILE_INTERNAL;
	event->fs_magic = BPF_CORE_READ(dentry, d_sb, s_magic);
	for (int step = 0; step < MMAPSNOOP_PATH_DEPTH; step++) {
		if (dentry == root_dentry && vfsmnt == root_mnt) {
			event->file_state = MMAPSNOOP_FILE_PATH;
			event->path_truncated = 0;
			break;
		}
		if (dentry == BPF_CORE_READ(vfsmnt, mnt_root)) {
			struct mount *parent = BPF_CORE_READ(mnt, mnt_parent);
			if (parent == mnt) {
				event->path_truncated = 0;
				break;
			}
			dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = parent;
			vfsmnt = (void *)parent + bpf_core_field_offset(struct mount, mnt);
			continue;
		}
		__u32 used = event->path_len;
		/* Never taken (each earlier step added at most MMAPSNOOP_NAME_LEN bytes), but it is
		 * what proves to the verifier that this name fits in path[]. */
		if (used > sizeof(event->path) - MMAPSNOOP_NAME_LEN)
			break;
		long copied = bpf_probe_read_kernel_str(&event->path[used], MMAPSNOOP_NAME_LEN,
							BPF_CORE_READ(dentry, d_name.name));
		if (copied > 0)
			event->path_len = used + copied;
		struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
		/* Pseudo files (anon inodes, pipes) are their own parent. */
		if (parent == dentry) {
			event->path_truncated = 0;
			break;
		}
		dentry = parent;
	}
}

static __always_inline int mmapsnoop_exit(void *ctx, long nr, long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct mmapsnoop_inflight *state = bpf_map_lookup_elem(&inflight, &tid);
	struct mmapsnoop_event *event;
	__u32 zero = 0;
	__u32 path_len;

	if (!state)
		return 0;
	if (state->call.nr != nr)
		goto out;
	event = bpf_map_lookup_elem(&scratch, &zero);
	if (!event)
		goto out;
	for (int i = 0; i < 6; i++)
		event->args[i] = state->call.args[i];
	event->ret = ret;
	event->pid = pid_tgid >> 32;
	event->tid = tid;
	event->syscall = nr == MEMSCOPE_NR_mmap     ? MMAPSNOOP_MMAP
			 : nr == MEMSCOPE_NR_munmap ? MMAPSNOOP_MUNMAP
						    : MMAPSNOOP_MREMAP;
	event->file_state = state->file_state;
	event->path_truncated = 0;
	event->fs_magic = 0;
	event->path_len = 0;
	bpf_get_current_comm(event->comm, sizeof(event->comm));
	if (state->file)
		read_path(event, state->file);
	path_len = event->path_len;
	/* Always true (read_path keeps within path[]); the verifier needs it to bound the copy. */
	if (path_len <= sizeof(event->path))
		memscope_output(event, offsetof(struct mmapsnoop_event, path) + path_len);
out:
	bpf_map_delete_elem(&inflight, &tid);
	return 0;
}

MEMSCOPE_SYSCALL_HOOKS(mmapsnoop, mmap, 6, mmapsnoop_enter, mmapsnoop_exit)
MEMSCOPE_SYSCALL_HOOKS(mmapsnoop, munmap, 2, mmapsnoop_enter, mmapsnoop_exit)
MEMSCOPE_SYSCALL_HOOKS(mmapsnoop, mremap, 5, mmapsnoop_enter, mmapsnoop_exit)
MEMSCOPE_SYSCALL_DISPATCH(mmapsnoop, mmapsnoop_wanted, mmapsnoop_enter, mmapsnoop_exit)

char LICENSE[] SEC("license") = "GPL";
