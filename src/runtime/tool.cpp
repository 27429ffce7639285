#include "runtime/tool.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/result.hpp"

namespace memscope {

const ToolDescriptor* find_tool(const std::string& name) {
  for (const auto* tool : tool_registry())
    if (name == tool->name) return tool;
  return nullptr;
}

void announce_attached(const std::string& what, const CommonOptions& options) {
  std::string extra = options.duration > 0 ? fmt::format(" for {} s", options.duration) : "";
  fmt::print(stderr, "Tracing {}{}... Hit Ctrl-C to end.\n", what, extra);
  std::fflush(stderr);
}

void apply_cgroup_filter(bpf_object* object, const CommonOptions& options) {
  if (options.cgroup.empty()) return;
  bpf_map* map = bpf_object__find_map_by_name(object, "cgroup_filter");
  if (!map) throw FatalError("internal: BPF object lacks the cgroup_filter map");
  int cgroup_fd = open(options.cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cgroup_fd < 0) throw FatalError(fmt::format("cannot open cgroup {}: {}", options.cgroup, strerror(errno)));
  uint32_t key = 0;
  int err = bpf_map_update_elem(bpf_map__fd(map), &key, &cgroup_fd, BPF_ANY);
  close(cgroup_fd);
  if (err) throw FatalError(fmt::format("cannot filter on cgroup {}: {}", options.cgroup, strerror(errno)));
}

}  // namespace memscope
