#include "symbols/process_maps.hpp"

#include <fmt/format.h>

#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <string_view>

namespace memscope::symbols {

std::vector<MapsEntry> parse_proc_maps(std::istream& maps) {
  static constexpr std::string_view kDeletedMarker = " (deleted)";
  std::vector<MapsEntry> entries;
  std::string line;
  while (std::getline(maps, line)) {
    MapsEntry entry;
    char permissions[5] = {};
    int path_position = 0;
    // "start-end perms offset major:minor inode   path" — the path may contain spaces, so it is taken
    // as the rest of the line rather than a field.
    if (std::sscanf(line.c_str(), "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %x:%x %" SCNu64 "%n", &entry.start,
                    &entry.end, permissions, &entry.file_offset, &entry.device_major, &entry.device_minor,
                    &entry.inode, &path_position) != 7)
      continue;
    entry.readable = permissions[0] == 'r';
    entry.writable = permissions[1] == 'w';
    entry.executable = permissions[2] == 'x';
    entry.shared = permissions[3] == 's';
    std::string_view rest(line);
    rest.remove_prefix(static_cast<size_t>(path_position));
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
    if (rest.size() > kDeletedMarker.size() &&
        rest.substr(rest.size() - kDeletedMarker.size()) == kDeletedMarker) {
      entry.deleted = true;
      rest.remove_suffix(kDeletedMarker.size());
    }
    entry.path = std::string(rest);
    entries.push_back(std::move(entry));
  }
  return entries;
}

std::optional<std::vector<MapsEntry>> read_proc_maps(pid_t pid) {
  std::ifstream maps(fmt::format("/proc/{}/maps", pid));
  if (!maps) return std::nullopt;
  auto entries = parse_proc_maps(maps);
  // A process that exited between open and read yields an empty file, not an error.
  if (entries.empty()) return std::nullopt;
  return entries;
}

}  // namespace memscope::symbols
