// A cgroup of the unified (v2) hierarchy with no controllers, for testing --cgroup: the kernel's
// bpf_current_task_under_cgroup() looks at the v2 hierarchy, also on hybrid v1/v2 hosts, where it
// is mounted at /sys/fs/cgroup/unified. Processes left inside are killed and the cgroup removed at
// the end of the test. Header-only: the tests of the event tools share it.
#pragma once

#include <signal.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "cgroup_fixture.hpp"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

namespace memscope::test {

class UnifiedCgroup {
 public:
  explicit UnifiedCgroup(const std::string& name) {
    for (const char* root : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
      struct statfs fs {};
      if (statfs(root, &fs) != 0 || static_cast<unsigned long>(fs.f_type) != CGROUP2_SUPER_MAGIC) continue;
      std::string directory = std::string(root) + "/" + name + "-" + std::to_string(getpid());
      if (mkdir(directory.c_str(), 0755) != 0 && errno != EEXIST) {
        error_ = "cannot create " + directory + ": " + std::string(strerror(errno));
        return;
      }
      directory_ = directory;
      return;
    }
    error_ = "no cgroup v2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified";
  }
  ~UnifiedCgroup() {
    if (!directory_.empty()) remove_cgroup(directory_);
  }
  UnifiedCgroup(const UnifiedCgroup&) = delete;
  UnifiedCgroup& operator=(const UnifiedCgroup&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& directory() const { return directory_; }
  std::string procs_file() const { return directory_ + "/cgroup.procs"; }

  // argv for /bin/sh that joins this cgroup, then runs COMMAND (a shell command line) in it.
  std::vector<std::string> shell_inside(const std::string& command) const {
    return {"/bin/sh", "-c", "echo $$ > " + procs_file() + " && exec " + command};
  }

 private:
  std::string directory_;
  std::string error_;
};

}  // namespace memscope::test
