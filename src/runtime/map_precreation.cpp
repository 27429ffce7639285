#include "runtime/map_precreation.hpp"

#include <linux/bpf.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/log.hpp"

namespace memscope {
namespace {

// BPF_MAP_CREATE itself rather than libbpf's bpf_map_create, which first probes whether the kernel
// takes map names by loading a program (every BTF kernel does), work that would only delay this.
int create_map(const PrecreatedMaps::Definition& definition) {
  union bpf_attr attributes;
  std::memset(&attributes, 0, sizeof(attributes));
  attributes.map_type = definition.type;
  attributes.key_size = definition.key_size;
  attributes.value_size = definition.value_size;
  attributes.max_entries = definition.max_entries;
  attributes.map_flags = definition.flags;
  std::strncpy(attributes.map_name, definition.name.c_str(), sizeof(attributes.map_name) - 1);
  long fd = syscall(SYS_bpf, BPF_MAP_CREATE, &attributes, sizeof(attributes));
  if (fd < 0) return -errno;
  // Descriptors of memscope's own stay out of the commands it starts, as libbpf's do.
  fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
  return static_cast<int>(fd);
}

}  // namespace

PrecreatedMaps::PrecreatedMaps(std::vector<Definition> definitions) : definitions_(std::move(definitions)) {
  for (const auto& definition : definitions_)
    created_.push_back(std::async(std::launch::async, [definition] { return create_map(definition); }));
}

PrecreatedMaps::~PrecreatedMaps() {
  for (size_t index = 0; index < created_.size(); index++) {
    int fd = descriptor(index);
    if (fd >= 0) close(fd);
  }
}

int PrecreatedMaps::descriptor(size_t index) {
  if (fds_.size() < created_.size()) fds_.resize(created_.size(), -EAGAIN);
  if (created_[index].valid()) fds_[index] = created_[index].get();
  return fds_[index];
}

bool PrecreatedMaps::hand_to(bpf_map* map) {
  for (size_t index = 0; index < definitions_.size(); index++) {
    const Definition& definition = definitions_[index];
    if (definition.name != bpf_map__name(map)) continue;
    // libbpf replaces the map's name on reuse: only definition.name stays valid below.
    const char* name = definition.name.c_str();
    int fd = descriptor(index);
    if (fd < 0) {
      log::verbose("map {}: made at load (making it in advance failed: {})", name, strerror(-fd));
      return false;
    }
    bool same = bpf_map__type(map) == definition.type && bpf_map__key_size(map) == definition.key_size &&
                bpf_map__value_size(map) == definition.value_size &&
                bpf_map__max_entries(map) == definition.max_entries && bpf_map__map_flags(map) == definition.flags;
    if (!same) {
      log::verbose("map {}: made at load (its definition differs from the one made in advance)", name);
      return false;
    }
    if (int err = bpf_map__reuse_fd(map, fd); err) {
      log::verbose("map {}: made at load (libbpf refused the one made in advance: {})", name, strerror(-err));
      return false;
    }
    log::verbose("map {}: made in advance ({} entries)", name, definition.max_entries);
    return true;
  }
  return false;
}

}  // namespace memscope
