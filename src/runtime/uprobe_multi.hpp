// uprobe_multi links (kernel 6.6+), created with the bpf syscall: libbpf 1.1 predates them. One
// link holds any number of offsets of one file and is released with a single RCU wait, and
// creating one costs a fraction of a perf-event uprobe (~0.4 ms against ~20 ms on 6.18, whose
// perf_event_open registers a trace event per probe).
#pragma once

#include <bpf/libbpf.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace memscope {

// True when the running kernel has uprobe_multi links (its BTF knows bpf_uprobe_multi_link).
bool uprobe_multi_supported();
// Before load: `program` will attach through uprobe_multi links only (expected attach type
// BPF_TRACE_UPROBE_MULTI).
void expect_uprobe_multi(bpf_program* program);
// After load: one link for `offsets` (file offsets) of `path`, for `pid` only (0: every process).
// The link's descriptor, or -errno.
int attach_uprobe_multi(bpf_program* program, const std::string& path, const std::vector<uint64_t>& offsets,
                        pid_t pid, bool retprobe);

}  // namespace memscope
