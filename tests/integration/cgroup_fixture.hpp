// A memory cgroup with a small limit, removed afterwards even when the test fails. Works with the
// cgroup v1 memory hierarchy (hybrid hosts) and with cgroup v2.
#pragma once

#include <string>

namespace memscope::test {

// Kills what is left in the cgroup DIRECTORY, then removes it (retrying: the kernel frees a cgroup
// lazily).
void remove_cgroup(const std::string& directory);

class MemoryCgroup {
 public:
  // Creates NAME under the memory hierarchy with memory limited to limit_bytes (and no swap).
  MemoryCgroup(const std::string& name, unsigned long long limit_bytes);
  ~MemoryCgroup();
  MemoryCgroup(const MemoryCgroup&) = delete;
  MemoryCgroup& operator=(const MemoryCgroup&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  std::string procs_file() const { return directory_ + "/cgroup.procs"; }
  const std::string& directory() const { return directory_; }
  // Path relative to the hierarchy root, as memscope prints it: "/NAME".
  std::string relative_path() const { return "/" + name_; }

 private:
  std::string name_, directory_, error_;
};

}  // namespace memscope::test
