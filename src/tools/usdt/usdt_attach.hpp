// Finding USDT probes in a binary or a process and attaching one BPF program to them with libbpf's
// USDT support (argument specs, semaphores, cookies), shared by the usdt and mallocsnoop tools.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/bpf_skeleton.hpp"
#include "runtime/usdt_notes.hpp"

struct bpf_program;

namespace memscope::usdt {

// The probes of `binary`, or (binary empty) of every object process `pid` maps. Objects of the
// process that can't be read as ELF (device files, deleted files) are skipped; an unreadable
// `binary` throws FatalError.
std::vector<Probe> probes_of_target(pid_t pid, const std::string& binary);

// One attachment: all sites of provider:name in one file. The BPF side gets `cookie` back from
// bpf_usdt_cookie(): the index in the returned table, or'ed with what cookie_flags() adds.
struct AttachedProbe {
  Probe probe;  // the first site; arguments' sizes are the same at every site of a probe
  size_t sites = 0;
};

// One entry per distinct (file, provider, name) in `probes`, in order of appearance: the table
// attach_probes() attaches, whose indexes are the cookies.
std::vector<AttachedProbe> group_probe_sites(const std::vector<Probe>& probes);

// Attaches `program` to every probe of `table`. pid > 0 restricts the uprobes to that process.
// Links are kept by `links` (destroyed with the skeleton).
void attach_probes(bpf_program* program, BpfObjectLinks& links, pid_t pid,
                   const std::vector<AttachedProbe>& table,
                   const std::function<uint64_t(const Probe&)>& cookie_flags = nullptr);

}  // namespace memscope::usdt
