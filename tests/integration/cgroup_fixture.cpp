#include "cgroup_fixture.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace memscope::test {
namespace {

bool write_file(const std::string& path, const std::string& value) {
  std::ofstream out(path);
  out << value;
  out.flush();
  return static_cast<bool>(out);
}

}  // namespace

MemoryCgroup::MemoryCgroup(const std::string& name, unsigned long long limit_bytes) : name_(name) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists("/sys/fs/cgroup/memory/memory.limit_in_bytes")) {
    directory_ = "/sys/fs/cgroup/memory/" + name;
    fs::create_directory(directory_, ec);
    if (ec || !write_file(directory_ + "/memory.limit_in_bytes", std::to_string(limit_bytes)))
      error_ = "cannot create a cgroup v1 memory cgroup at " + directory_;
    write_file(directory_ + "/memory.memsw.limit_in_bytes", std::to_string(limit_bytes));
  } else if (fs::exists("/sys/fs/cgroup/cgroup.subtree_control")) {
    write_file("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
    directory_ = "/sys/fs/cgroup/" + name;
    fs::create_directory(directory_, ec);
    if (ec || !write_file(directory_ + "/memory.max", std::to_string(limit_bytes)))
      error_ = "cannot create a cgroup v2 memory cgroup at " + directory_;
    write_file(directory_ + "/memory.swap.max", "0");
  } else {
    error_ = "no memory cgroup controller is mounted";
  }
}

void remove_cgroup(const std::string& directory) {
  for (int attempt = 0; attempt < 50; attempt++) {
    std::ifstream procs(directory + "/cgroup.procs");
    std::string pid;
    while (procs >> pid) kill(std::stoi(pid), SIGKILL);
    if (rmdir(directory.c_str()) == 0 || errno == ENOENT) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

MemoryCgroup::~MemoryCgroup() {
  if (!directory_.empty()) remove_cgroup(directory_);
}

}  // namespace memscope::test
