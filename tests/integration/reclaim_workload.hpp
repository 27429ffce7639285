// What the reclaim tests (drsnoop, vmscan) drive: tests/testprogs/reclaim_pagecache filling page
// cache on a disk filesystem from inside a small memory cgroup, so that it reclaims its own pages.
#pragma once

#include <gtest/gtest.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "cgroup_fixture.hpp"
#include "harness.hpp"

namespace memscope::test {

// A scratch directory on a disk filesystem: page cache there is reclaimable without swap (tmpfs
// pages are shmem and would need swap).
class ScratchDirectory {
 public:
  explicit ScratchDirectory(const std::string& prefix) {
    for (std::string base :
         {::testing::TempDir(), std::string("/var/tmp/"), std::string(MEMSCOPE_TESTPROGS_DIR) + "/"}) {
      struct statfs fs {};
      if (statfs(base.c_str(), &fs) != 0 || fs.f_type == TMPFS_MAGIC) continue;
      std::string pattern = base + prefix + "-XXXXXX";
      if (mkdtemp(pattern.data())) {
        path_ = pattern;
        return;
      }
    }
  }
  ~ScratchDirectory() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  ScratchDirectory(const ScratchDirectory&) = delete;
  ScratchDirectory& operator=(const ScratchDirectory&) = delete;
  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Whether the process still runs (not exited, not a zombie), without reaping it.
inline bool still_running(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string pid_field, comm, state;
  if (!(stat >> pid_field >> comm >> state)) return false;
  return state != "Z" && state != "X";
}

// reclaim_pagecache --wait in a fresh 64 MiB memory cgroup NAME-PID, joined and waiting for "go" on
// stdin before it writes `mib` MiB of page cache. skip_reason says why this host cannot set it up;
// a workload that does not start is an error (thrown).
struct ReclaimWorkload {
  std::unique_ptr<MemoryCgroup> cgroup;
  std::unique_ptr<ScratchDirectory> scratch;
  std::unique_ptr<Child> child;
  std::string skip_reason;

  ReclaimWorkload(const std::string& name, const std::string& mib) {
    cgroup = std::make_unique<MemoryCgroup>(name + "-" + std::to_string(getpid()), 64ULL << 20);
    if (!cgroup->ok()) {
      skip_reason = cgroup->error();
      return;
    }
    scratch = std::make_unique<ScratchDirectory>(name);
    if (!scratch->ok()) {
      skip_reason = "no disk-backed directory for the page-cache file";
      return;
    }
    child = std::make_unique<Child>(
        std::vector<std::string>{testprog("reclaim_pagecache"), "--wait", cgroup->procs_file(),
                                 scratch->path() + "/pagecache.dat", mib},
        /*capture_stdin=*/true);
    if (!child->wait_for("reclaim_pagecache: ready", std::chrono::seconds(10), /*in_stdout=*/true))
      throw std::runtime_error("reclaim_pagecache did not start: " + child->err());
  }
};

}  // namespace memscope::test
