#include "runtime/kernel_introspection.hpp"

#include "runtime/kernel_btf.hpp"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <unistd.h>
#include <vector>
#include <sstream>
#include <system_error>

namespace memscope {

std::optional<bool> btf_tracepoint_arg_is_pointer(const std::string& tracepoint, int index) {
  const KernelBtf* vmlinux = KernelBtf::get();
  if (!vmlinux) return std::nullopt;
  std::optional<bool> answer;
  // typedef void (*btf_trace_NAME)(void *__data, args...);
  int id = vmlinux->find("btf_trace_" + tracepoint, BTF_KIND_TYPEDEF);
  if (id > 0) {
    const btf_type* type = vmlinux->type(vmlinux->resolve(id));
    if (type && btf_is_ptr(type)) type = vmlinux->type(type->type);
    if (type && btf_is_func_proto(type) && index + 1 < btf_vlen(type)) {
      const btf_param* params = btf_params(type);
      const btf_type* arg = vmlinux->type(vmlinux->resolve(params[index + 1].type));
      if (arg) answer = btf_is_ptr(arg);
    }
  }
  return answer;
}

bool kernel_has_bpf_helper(std::string_view name) {
  const KernelBtf* vmlinux = KernelBtf::get();
  int enum_id = vmlinux ? vmlinux->find("bpf_func_id", BTF_KIND_ENUM) : -1;
  if (enum_id <= 0) return false;
  const btf_type* type = vmlinux->type(enum_id);
  const struct btf_enum* values = btf_enum(type);
  for (unsigned i = 0; i < btf_vlen(type); i++)
    if (vmlinux->name(values[i].name_off) == name) return true;
  return false;
}

std::optional<std::string> cgroup_root(bool memory_controller) {
  // /proc/self/mounts: "cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0"
  std::ifstream mounts("/proc/self/mounts");
  std::string device, point, type, flags, line;
  std::optional<std::string> v2;
  while (std::getline(mounts, line)) {
    std::istringstream fields(line);
    if (!(fields >> device >> point >> type >> flags)) continue;
    if (type == "cgroup2" && !v2) v2 = point;
    if (memory_controller && type == "cgroup") {
      std::istringstream options(flags);
      std::string option;
      while (std::getline(options, option, ','))
        if (option == "memory") return point;
    }
  }
  return v2;
}

std::optional<std::string> cgroup_path_from_id(uint64_t id, bool memory_controller) {
  namespace fs = std::filesystem;
  auto root_path = cgroup_root(memory_controller);
  if (!root_path) return std::nullopt;
  const fs::path root = *root_path;
  std::error_code error;
  struct stat st;
  if (::stat(root.c_str(), &st) == 0 && st.st_ino == id) return std::string("/");
  for (fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, error), end;
       it != end; it.increment(error)) {
    if (error) break;
    if (!it->is_directory(error)) continue;
    if (::stat(it->path().c_str(), &st) == 0 && st.st_ino == id)
      return "/" + fs::relative(it->path(), root, error).string();
  }
  return std::nullopt;
}

std::string read_loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string line;
  std::getline(in, line);
  return line;
}

std::string process_comm(int pid) {
  std::ifstream in(fmt::format("/proc/{}/comm", pid));
  std::string comm;
  std::getline(in, comm);
  return comm;
}

namespace {

// The fields of /proc/PID/stat after the command (which may hold spaces and parentheses):
// fields[0] is the state (field 3), fields[19] the start time in clock ticks (field 22).
std::vector<std::string> stat_fields(int pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string line;
  std::getline(in, line);
  size_t close = line.rfind(')');
  std::vector<std::string> fields;
  if (close == std::string::npos) return fields;
  std::istringstream rest(line.substr(close + 1));
  for (std::string field; rest >> field;) fields.push_back(field);
  return fields;
}

}  // namespace

bool process_exited(int pid) {
  auto fields = stat_fields(pid);
  return fields.empty() || fields[0] == "Z" || fields[0] == "X";
}

std::optional<uint64_t> process_start_ticks(int pid) {
  auto fields = stat_fields(pid);
  if (fields.size() < 20 || fields[0] == "Z" || fields[0] == "X") return std::nullopt;
  return std::strtoull(fields[19].c_str(), nullptr, 10);
}

double process_age_seconds(int pid) {
  auto fields = stat_fields(pid);
  if (fields.size() < 20) return -1;
  double uptime = 0;
  std::ifstream("/proc/uptime") >> uptime;
  return uptime - std::stod(fields[19]) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace memscope
