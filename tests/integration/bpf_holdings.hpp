// The BPF objects a process holds, as the kernel tells them (/proc/PID/fdinfo of its descriptors,
// then bpftool by id): an oracle independent of what memscope reports about itself. (bpftool's
// holder pids need a bpftool built with skeletons, which Debian's is not.)
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace memscope::test {

// The ids ("map_id" or "prog_id") of the BPF objects `pid` has descriptors of whose fdinfo holds
// every line of `with` ("map_type:\t12", an array of maps), each once: a link's fdinfo names its
// program too.
inline std::set<uint64_t> held_bpf_ids(pid_t pid, const std::string& id_field, const std::vector<std::string>& with = {}) {
  std::set<uint64_t> ids;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fdinfo", error)) {
    std::ifstream file(entry.path());
    std::stringstream text;
    text << file.rdbuf();
    std::string info = "\n" + text.str();
    bool wanted = true;
    for (const auto& line : with) wanted = wanted && info.find("\n" + line + "\n") != std::string::npos;
    size_t at = info.find("\n" + id_field + ":");
    if (wanted && at != std::string::npos) ids.insert(std::stoull(info.substr(at + id_field.size() + 2)));
  }
  return ids;
}

}  // namespace memscope::test
