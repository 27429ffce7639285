// Small facts about the running kernel that tools need to pick a code path: tracepoint prototypes
// from BTF, cgroup paths from ids, /proc/loadavg.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace memscope {

// For a BTF tracepoint, whether argument `index` (0 = first real argument) is a pointer.
// nullopt when the tracepoint or the argument is not in kernel BTF.
std::optional<bool> btf_tracepoint_arg_is_pointer(const std::string& tracepoint, int index);

// Whether this kernel knows the BPF helper named as in enum bpf_func_id ("BPF_FUNC_loop"), read
// from its BTF; false without BTF.
bool kernel_has_bpf_helper(std::string_view name);

// Path of the cgroup with this id (its kernfs inode number), relative to its hierarchy's root,
// e.g. "/system.slice/foo.service"; nullopt when no such cgroup exists any more. Ids are per
// hierarchy: memory_controller picks the hierarchy the memory controller is on (cgroup v1's
// memory mount on hybrid hosts, else cgroup v2).
std::optional<std::string> cgroup_path_from_id(uint64_t id, bool memory_controller = true);

// The mount point of the hierarchy that holds the memory controller (v1) or of cgroup v2.
std::optional<std::string> cgroup_root(bool memory_controller);

// The whole line of /proc/loadavg without the newline.
std::string read_loadavg();

// Contents of /proc/PID/comm, or "" when the process is gone.
std::string process_comm(int pid);

// Whether the process has exited: no /proc/PID, or a zombie that nobody reaped yet (its memory and
// uprobes are gone already).
bool process_exited(int pid);

// When a live process started, in clock ticks since boot (field 22 of /proc/PID/stat): with its pid
// it names one process, whichever process gets the pid later. nullopt when it has exited (as above).
std::optional<uint64_t> process_start_ticks(int pid);

// Seconds since the process started (from /proc/PID/stat and /proc/uptime); -1 when it is gone.
double process_age_seconds(int pid);

}  // namespace memscope
