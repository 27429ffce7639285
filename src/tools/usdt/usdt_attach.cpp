#include "tools/usdt/usdt_attach.hpp"

#include <bpf/libbpf.h>
#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <tuple>

#include "runtime/log.hpp"
#include "runtime/result.hpp"

namespace memscope::usdt {

std::vector<Probe> probes_of_target(pid_t pid, const std::string& binary) {
  if (!binary.empty()) {
    auto found = read_file_probes(binary);
    if (!found) throw FatalError(found.error().message);
    return std::move(found->probes);
  }
  std::vector<Probe> probes;
  for (const auto& object : mapped_objects(pid)) {
    auto found = read_file_probes(path_in_process(pid, object), object);
    if (!found) {
      log::verbose("PID {}: skipping {}: {}", pid, object, found.error().message);
      continue;
    }
    for (auto& probe : found->probes) probes.push_back(std::move(probe));
  }
  return probes;
}

std::vector<AttachedProbe> group_probe_sites(const std::vector<Probe>& probes) {
  std::vector<AttachedProbe> table;
  std::map<std::tuple<std::string, std::string, std::string>, size_t> index;
  for (const auto& probe : probes) {
    auto key = std::make_tuple(probe.file, probe.provider, probe.name);
    auto [it, inserted] = index.emplace(key, table.size());
    if (inserted) table.push_back({probe, 0});
    table[it->second].sites++;
  }
  return table;
}

void attach_probes(bpf_program* program, BpfObjectLinks& links, pid_t pid,
                   const std::vector<AttachedProbe>& table,
                   const std::function<uint64_t(const Probe&)>& cookie_flags) {
  for (size_t i = 0; i < table.size(); i++) {
    const Probe& probe = table[i].probe;
    uint64_t cookie = i | (cookie_flags ? cookie_flags(probe) : 0);
    LIBBPF_OPTS(bpf_usdt_opts, opts, .usdt_cookie = cookie);
    bpf_link* link = bpf_program__attach_usdt(program, pid > 0 ? pid : -1, probe.file.c_str(),
                                              probe.provider.c_str(), probe.name.c_str(), &opts);
    if (!link) {
      int err = errno;
      throw FatalError(fmt::format("attaching USDT probe {} in {} failed: {}", probe.full_name(), probe.path,
                                   strerror(err)));
    }
    links.adopt(link);
    log::verbose("attached usdt:{}:{} ({} site{})", probe.path, probe.full_name(), table[i].sites,
                 table[i].sites == 1 ? "" : "s");
  }
}

}  // namespace memscope::usdt
