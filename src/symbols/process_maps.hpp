// /proc/PID/maps as data. Parsing takes a stream so that it can be tested on fixtures.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <vector>

namespace memscope::symbols {

struct MapsEntry {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t file_offset = 0;
  bool readable = false;
  bool writable = false;
  bool executable = false;
  bool shared = false;  // MAP_SHARED ('s'), as opposed to private copy-on-write ('p')
  unsigned device_major = 0;
  unsigned device_minor = 0;
  uint64_t inode = 0;
  std::string path;  // as the process sees it, without the " (deleted)" marker; "[vdso]" etc. for specials
  bool deleted = false;  // the file was unlinked (or replaced) after it was mapped

  bool file_backed() const { return inode != 0 && !path.empty() && path.front() == '/'; }
};

std::vector<MapsEntry> parse_proc_maps(std::istream& maps);
// nullopt when the process is gone or unreadable.
std::optional<std::vector<MapsEntry>> read_proc_maps(pid_t pid);

}  // namespace memscope::symbols
