#include "sampled_mode.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "memleak.h"
#include "memleak_sampled.h"
#include "runtime/result.hpp"
#include "symbols/process_maps.hpp"

extern char** environ;

namespace memscope::memleak {

std::string find_sampler_library() {
  std::error_code error;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) throw FatalError(fmt::format("--sample-bytes: cannot read /proc/self/exe: {}", error.message()));
  std::filesystem::path beside = self.parent_path() / kSamplerLibraryName;
  std::filesystem::path installed = self.parent_path().parent_path() / "lib" / "memscope" / kSamplerLibraryName;
  for (const auto& candidate : {beside, installed})
    if (access(candidate.c_str(), R_OK) == 0) return candidate.string();
  throw FatalError(fmt::format("--sample-bytes: the sampler library is neither at {} nor at {} (build the "
                               "memscope_sampler target or install memscope)",
                               beside.string(), installed.string()));
}

std::vector<std::string> sampler_environment(const std::string& library, uint64_t sample_bytes,
                                             uint64_t set_slots) {
  std::vector<std::string> result;
  std::string preload = library;
  for (char** entry = environ; entry && *entry; entry++) {
    std::string_view variable(*entry);
    if (variable.starts_with("LD_PRELOAD=")) {
      std::string_view rest = variable.substr(strlen("LD_PRELOAD="));
      if (!rest.empty()) preload += ":" + std::string(rest);
      continue;
    }
    if (variable.starts_with("MEMSCOPE_SAMPLE_BYTES=") || variable.starts_with("MEMSCOPE_SAMPLER_SLOTS="))
      continue;
    result.emplace_back(variable);
  }
  result.push_back("LD_PRELOAD=" + preload);
  result.push_back(fmt::format("MEMSCOPE_SAMPLE_BYTES={}", sample_bytes));
  result.push_back(fmt::format("MEMSCOPE_SAMPLER_SLOTS={}", set_slots));
  return result;
}

void attach_sampler_probes(bpf_program* alloc_program, bpf_program* free_program, BpfObjectLinks& links,
                           pid_t pid, const std::string& object) {
  for (auto [program, name] : {std::pair{alloc_program, "alloc"}, std::pair{free_program, "free"}}) {
    bpf_link* link = bpf_program__attach_usdt(program, pid > 0 ? pid : -1, object.c_str(), "ddheap", name, nullptr);
    if (!link) {
      int err = errno;
      throw FatalError(fmt::format("attaching USDT probe ddheap:{} in {} failed: {}", name, object, strerror(err)));
    }
    links.adopt(link);
  }
}

namespace {

// st_value of a defined symbol in the library's dynamic symbol table (memscope's own file).
std::optional<uint64_t> library_symbol_value(const std::string& library, const char* name) {
  int fd = open(library.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::optional<uint64_t> value;
  if (Elf* elf = elf_begin(fd, ELF_C_READ, nullptr)) {
    for (Elf_Scn* section = elf_nextscn(elf, nullptr); section && !value; section = elf_nextscn(elf, section)) {
      GElf_Shdr header;
      if (!gelf_getshdr(section, &header) || header.sh_type != SHT_DYNSYM || !header.sh_entsize) continue;
      Elf_Data* data = elf_getdata(section, nullptr);
      for (size_t index = 0; data && index < header.sh_size / header.sh_entsize; index++) {
        GElf_Sym symbol;
        if (!gelf_getsym(data, static_cast<int>(index), &symbol) || symbol.st_shndx == SHN_UNDEF) continue;
        const char* symbol_name = elf_strptr(elf, header.sh_link, symbol.st_name);
        if (symbol_name && strcmp(symbol_name, name) == 0) {
          value = symbol.st_value;
          break;
        }
      }
    }
    elf_end(elf);
  }
  close(fd);
  return value;
}

}  // namespace

std::optional<uint64_t> read_sampler_drops(pid_t pid, const std::string& library) {
  static const std::optional<uint64_t> offset = [&] {
    elf_version(EV_CURRENT);
    return library_symbol_value(library, "memscope_sampler_set_full");
  }();
  struct stat own {};
  if (!offset || stat(library.c_str(), &own) != 0) return std::nullopt;
  auto maps = symbols::read_proc_maps(pid);
  if (!maps) return std::nullopt;
  for (const auto& entry : *maps) {
    if (entry.inode != own.st_ino || entry.device_major != major(own.st_dev) ||
        entry.device_minor != minor(own.st_dev) || entry.file_offset != 0)
      continue;
    uint64_t value = 0;
    iovec local{&value, sizeof value};
    iovec remote{reinterpret_cast<void*>(entry.start + *offset), sizeof value};
    if (process_vm_readv(pid, &local, 1, &remote, 1, 0) == sizeof value) return value;
  }
  return std::nullopt;
}

std::map<uint64_t, uint64_t> read_sample_weights(int weights_fd) {
  std::map<uint64_t, uint64_t> result;
  uint64_t key = 0, next = 0;
  const void* previous = nullptr;
  while (bpf_map_get_next_key(weights_fd, previous, &next) == 0) {
    uint64_t weight = 0;
    if (bpf_map_lookup_elem(weights_fd, &next, &weight) == 0) result[next] = weight;
    key = next;
    previous = &key;
  }
  return result;
}

std::map<int32_t, SampledAllocTotal> read_alloc_totals(int totals_fd) {
  std::map<int32_t, SampledAllocTotal> result;
  uint32_t key = 0, next = 0;
  const void* previous = nullptr;
  while (bpf_map_get_next_key(totals_fd, previous, &next) == 0) {
    memleak_sampled_total total{};
    if (bpf_map_lookup_elem(totals_fd, &next, &total) == 0) {
      int32_t stack_id = next == MEMLEAK_NO_STACK ? -1 : static_cast<int32_t>(next);
      result[stack_id] = {total.bytes, (total.scaled_count + MEMLEAK_COUNT_SCALE / 2) / MEMLEAK_COUNT_SCALE};
    }
    key = next;
    previous = &key;
  }
  return result;
}

std::vector<StackSummary> summarize_samples(const std::vector<OutstandingAllocation>& samples,
                                            const std::map<uint64_t, uint64_t>& weights, uint64_t now_ns,
                                            uint64_t min_age_ns, const std::vector<BlockVerdict>* verdicts) {
  struct Estimate {
    double count = 0, leaked_count = 0, reachable_count = 0;
  };
  std::vector<StackSummary> summaries = summarize_by_stack(samples, now_ns, min_age_ns, verdicts);
  for (auto& summary : summaries) {
    Estimate estimate;
    summary.bytes = summary.leaked_bytes = summary.reachable_bytes = 0;
    for (size_t index : summary.allocations) {
      const auto& sample = samples[index];
      auto found = weights.find(sample.address);
      uint64_t weight = found != weights.end() ? found->second : sample.size;
      double count = sample.size ? static_cast<double>(weight) / static_cast<double>(sample.size) : 1;
      summary.bytes += weight;
      estimate.count += count;
      if (verdicts && index < verdicts->size()) {
        if ((*verdicts)[index] == BlockVerdict::Leaked) {
          summary.leaked_bytes += weight;
          estimate.leaked_count += count;
        } else {
          summary.reachable_bytes += weight;
          estimate.reachable_count += count;
        }
      }
    }
    summary.count = static_cast<uint64_t>(std::llround(estimate.count));
    summary.leaked_count = static_cast<uint64_t>(std::llround(estimate.leaked_count));
    summary.reachable_count = static_cast<uint64_t>(std::llround(estimate.reachable_count));
  }
  return summaries;
}

void add_allocating_stacks(std::vector<StackSummary>& summaries,
                           const std::map<int32_t, SampledAllocTotal>& alloc_totals) {
  std::set<int32_t> present;
  for (const auto& summary : summaries) present.insert(summary.stack_id);
  for (const auto& [stack_id, total] : alloc_totals)
    if (!present.count(stack_id) && total.bytes > 0) {
      StackSummary summary;
      summary.stack_id = stack_id;
      summaries.push_back(summary);
    }
}

void SamplerFrames::load(pid_t pid) {
  ranges_.clear();
  std::ifstream maps(fmt::format("/proc/{}/maps", pid));
  std::string line;
  while (std::getline(maps, line)) {
    if (line.find(kSamplerLibraryName) == std::string::npos) continue;
    uint64_t start = 0, end = 0;
    if (sscanf(line.c_str(), "%lx-%lx", &start, &end) == 2) ranges_.emplace_back(start, end);
  }
}

void SamplerFrames::strip(output::Stack& stack) const {
  size_t drop = 0;
  auto inside = [&](uint64_t address) {
    for (auto [start, end] : ranges_)
      if (address >= start && address < end) return true;
    return false;
  };
  while (drop < stack.user.size() && inside(stack.user[drop])) drop++;
  if (drop == 0 || drop == stack.user.size()) return;
  stack.user.erase(stack.user.begin(), stack.user.begin() + static_cast<std::ptrdiff_t>(drop));
  stack.user_frame_pointer_frames = drop >= 64 ? 0 : stack.user_frame_pointer_frames >> drop;
}

}  // namespace memscope::memleak
