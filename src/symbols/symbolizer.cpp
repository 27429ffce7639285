#include "symbols/symbolizer.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <compare>
#include <map>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "runtime/log.hpp"
#include "symbols/elf_object.hpp"
#include "symbols/kernel_symbols.hpp"
#include "symbols/process_maps.hpp"

namespace memscope::symbols {
namespace {

// Bounds for the per-process memo tables: a long system-wide trace sees garbage addresses from
// frame-pointer-less code and should not grow without limit.
constexpr size_t kFrameCacheLimit = 65536;
constexpr size_t kUnmappedAddressLimit = 4096;
// Objects no live process maps are kept up to this many, so that short-lived processes running the
// same programs (a build, a test suite) do not re-parse libc each time.
constexpr size_t kIdleObjectLimit = 256;

std::string basename_of(std::string_view path) {
  size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

struct ObjectKey {
  uint64_t device = 0;
  uint64_t inode = 0;
  auto operator<=>(const ObjectKey&) const = default;
};

struct MappedRegion {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t file_offset = 0;
  std::string module;
  std::shared_ptr<const ElfObject> object;  // null for anonymous code, unreadable files and non-ELF files
};

struct ProcessImage {
  std::vector<MappedRegion> regions;  // executable mappings, sorted by start
  // Addresses that stayed outside every mapping after a fresh read; they do not trigger another one.
  std::unordered_set<uint64_t> unmapped;
  // An address's frames: its inline chain, the containing function last.
  std::unordered_map<uint64_t, std::vector<Frame>> exact_frames;
  std::unordered_map<uint64_t, std::vector<Frame>> return_frames;
  bool exited = false;  // maps can no longer be read: keep the last snapshot for good

  const MappedRegion* region_of(uint64_t address) const {
    auto after =
        std::upper_bound(regions.begin(), regions.end(), address,
                         [](uint64_t value, const MappedRegion& region) { return value < region.start; });
    if (after == regions.begin()) return nullptr;
    const MappedRegion& region = *(after - 1);
    return address < region.end ? &region : nullptr;
  }
};

std::optional<std::string> read_process_memory(pid_t pid, uint64_t start, uint64_t size) {
  int fd = open(fmt::format("/proc/{}/mem", pid).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string bytes(size, '\0');
  ssize_t got = pread(fd, bytes.data(), size, static_cast<off_t>(start));
  close(fd);
  if (got != static_cast<ssize_t>(size)) return std::nullopt;
  return bytes;
}

// Our own vdso, for when the target's memory is not readable: every process of one ABI on one kernel
// maps the same image. Only returned when the sizes agree, which rules out a 32-bit target's vdso.
std::optional<std::string> own_vdso_image(uint64_t expected_size) {
  uint64_t base = getauxval(AT_SYSINFO_EHDR);
  if (base == 0) return std::nullopt;
  auto maps = read_proc_maps(getpid());
  if (!maps) return std::nullopt;
  for (const auto& entry : *maps) {
    if (entry.path != "[vdso]" || entry.start != base) continue;
    if (entry.end - entry.start != expected_size) return std::nullopt;
    return std::string(reinterpret_cast<const char*>(base), expected_size);
  }
  return std::nullopt;
}

Frame unknown_user_frame(uint64_t address) {
  Frame frame;
  frame.address = address;
  return frame;
}

}  // namespace

std::string Frame::display() const {
  if (function == kLostStackFunction) return function;
  std::string text;
  if (inlined)
    text = fmt::format("{} (inlined)", short_name());
  else if (function.empty() || function == kHiddenKernelFunction)
    text = fmt::format("[unknown] {:#x}", address);
  else
    text = fmt::format("{}+{:#x}", function, offset);
  if (!module.empty()) text += fmt::format(" [{}]", module);
  if (!file.empty() && line > 0) text += fmt::format(" ({}:{})", basename_of(file), line);
  return text;
}

std::string Frame::short_name() const {
  return function.empty() ? std::string(kHiddenKernelFunction) : function;
}

struct StackSymbolizer::Impl {
  explicit Impl(SymbolizerOptions options_in) : options(std::move(options_in)) {}

  SymbolizerOptions options;
  mutable std::mutex mutex;
  std::unordered_map<pid_t, ProcessImage> processes;
  std::map<ObjectKey, std::shared_ptr<const ElfObject>> objects;
  std::map<std::string, std::shared_ptr<const ElfObject>> vdso_objects;  // keyed by the image bytes
  std::optional<KernelSymbolTable> kernel;
  bool warned_hidden_kernel = false;

  ProcessImage* find_or_prepare(pid_t pid) {
    if (pid <= 0) return nullptr;
    auto found = processes.find(pid);
    if (found != processes.end()) return &found->second;
    ProcessImage image;
    if (!refresh(pid, image)) return nullptr;
    return &processes.emplace(pid, std::move(image)).first->second;
  }

  bool refresh(pid_t pid, ProcessImage& image) {
    auto maps = read_proc_maps(pid);
    if (!maps) return false;
    std::vector<MappedRegion> regions;
    for (const auto& entry : *maps) {
      // Only code can be on a stack.
      if (!entry.executable) continue;
      MappedRegion region{entry.start, entry.end, entry.file_offset, {}, nullptr};
      if (entry.path == "[vdso]") {
        region.module = entry.path;
        region.object = vdso_object(pid, entry);
      } else if (entry.file_backed()) {
        region.module = basename_of(entry.path);
        region.object = file_object(pid, entry);
      } else if (!entry.path.empty() && entry.path.front() == '[' && entry.path.rfind("[anon", 0) != 0) {
        region.module = entry.path;  // [vsyscall]
      }
      regions.push_back(std::move(region));
    }
    std::sort(regions.begin(), regions.end(),
              [](const MappedRegion& a, const MappedRegion& b) { return a.start < b.start; });
    image.regions = std::move(regions);
    // Earlier answers may describe code that has been unmapped or replaced since.
    image.unmapped.clear();
    image.exact_frames.clear();
    image.return_frames.clear();
    return true;
  }

  std::shared_ptr<const ElfObject> file_object(pid_t pid, const MapsEntry& entry) {
    ObjectKey key{makedev(entry.device_major, entry.device_minor), entry.inode};
    auto process_root = FileRoot::of_process(pid);
    auto cached = objects.find(key);
    if (cached != objects.end()) {
      if (!process_root || !stale(*cached->second, *process_root, entry)) return cached->second;
      objects.erase(cached);
    }

    std::optional<OpenedFile> file;
    if (!entry.deleted && process_root) {
      auto opened = process_root->open(entry.path);
      // The path may now name a different file (a rebuilt binary, an upgraded package). Only the inode
      // is compared: on overlayfs and btrfs the device in maps differs from what stat reports.
      if (opened && opened->status.st_ino == entry.inode) file = std::move(*opened);
      if (!opened) memscope::log::verbose("symbols: pid {}: {}", pid, opened.error().message);
    }
    if (!file) {
      // The exact file that is mapped, even if deleted; needs CAP_SYS_ADMIN (or CAP_CHECKPOINT_RESTORE).
      auto opened = open_mapped_file(pid, entry.start, entry.end);
      if (opened) {
        file = std::move(*opened);
      } else {
        memscope::log::verbose("symbols: cannot open {} of pid {}{}: {}", entry.path, pid,
                               entry.deleted ? " (deleted)" : "", opened.error().message);
        return nullptr;
      }
    }
    std::shared_ptr<const ElfObject> object = ElfObject::open_file(
        *file, DebugFileSearch{process_root ? *process_root : FileRoot::host(), entry.path, options.debug_directories});
    if (object) objects.emplace(key, object);
    return object;
  }

  // Whether the file at the mapping's path (in the process's root) is provably not the one `object` was
  // parsed from although it carries the same inode number: the old file was deleted and its inode
  // reused (a rebuilt test binary, say).
  // When the path no longer leads to that inode there is nothing to compare, and the cache stands.
  static bool stale(const ElfObject& object, const FileRoot& root, const MapsEntry& entry) {
    if (entry.deleted) return false;
    auto found = root.status(entry.path);
    if (!found || found->st_ino != entry.inode) return false;
    const struct stat& status = *found;
    FileIdentity parsed = object.file_identity();
    int64_t modified_ns = static_cast<int64_t>(status.st_mtim.tv_sec) * 1000000000 + status.st_mtim.tv_nsec;
    return parsed.size != static_cast<uint64_t>(status.st_size) || parsed.modified_ns != modified_ns;
  }

  std::shared_ptr<const ElfObject> vdso_object(pid_t pid, const MapsEntry& entry) {
    uint64_t size = entry.end - entry.start;
    auto bytes = read_process_memory(pid, entry.start, size);
    if (!bytes) bytes = own_vdso_image(size);
    if (!bytes) return nullptr;
    auto cached = vdso_objects.find(*bytes);
    if (cached != vdso_objects.end()) return cached->second;
    std::shared_ptr<const ElfObject> object = ElfObject::from_memory(*bytes);
    if (object) vdso_objects.emplace(std::move(*bytes), object);
    return object;
  }

  // `may_refresh` allows one re-read of maps per call so that a stack full of garbage addresses does
  // not re-read them once per frame.
  std::vector<Frame> user_frames_at(pid_t pid, uint64_t address, bool return_address, bool& may_refresh) {
    ProcessImage* image = find_or_prepare(pid);
    if (image == nullptr) return {unknown_user_frame(address)};
    auto& memo = return_address ? image->return_frames : image->exact_frames;
    if (auto found = memo.find(address); found != memo.end()) return found->second;

    const MappedRegion* region = image->region_of(address);
    if (region == nullptr && may_refresh && !image->exited && !image->unmapped.contains(address)) {
      // Possibly a library dlopen()ed after the snapshot.
      may_refresh = false;
      if (!refresh(pid, *image)) image->exited = true;
      region = image->region_of(address);
      if (region == nullptr) {
        if (image->unmapped.size() >= kUnmappedAddressLimit) image->unmapped.clear();
        image->unmapped.insert(address);
      }
    }
    std::vector<Frame> frames = symbolize(region, address, return_address);
    // Misses are not memoised: a later call may re-read the maps and find the address (the one re-read
    // of this call may have gone to an earlier frame).
    if (region == nullptr) return frames;
    if (memo.size() >= kFrameCacheLimit) memo.clear();
    memo.emplace(address, frames);
    return frames;
  }

  // The address's inline chain, innermost first; one frame when nothing is inlined there or DWARF is
  // missing.
  static std::vector<Frame> symbolize(const MappedRegion* region, uint64_t address, bool return_address) {
    Frame frame = unknown_user_frame(address);
    if (region == nullptr) return {frame};
    frame.module = region->module;
    if (!region->object) return {frame};
    uint64_t lookup = return_address && address > region->start ? address - 1 : address;
    // The load bias is implicit here: the mapping says which file offset `start` holds, and the
    // PT_LOAD headers say which link-time address that file offset has. This holds for PIE, shared
    // libraries, non-PIE executables (bias 0) and mappings split by mprotect alike.
    auto vaddr = region->object->vaddr_of_file_offset(lookup - region->start + region->file_offset, true);
    if (!vaddr) return {frame};
    uint64_t address_vaddr = *vaddr + (address - lookup);
    if (const ElfSymbol* symbol = region->object->symbol_at(*vaddr)) {
      frame.function = readable_symbol_name(symbol->name);
      frame.offset = address_vaddr - symbol->start;
    } else {
      frame.offset = address_vaddr;
    }
    std::vector<SourceFrame> source = region->object->source_frames(*vaddr);
    std::vector<Frame> frames;
    frames.reserve(std::max<size_t>(source.size(), 1));
    for (size_t i = 0; i + 1 < source.size(); i++) {
      Frame inlined = frame;
      inlined.function = std::move(source[i].function);
      inlined.file = std::move(source[i].location.file);
      inlined.line = source[i].location.line;
      inlined.inlined = true;
      frames.push_back(std::move(inlined));
    }
    // The containing function keeps the symbol table's name, as without DWARF.
    if (!source.empty()) {
      frame.file = std::move(source.back().location.file);
      frame.line = source.back().location.line;
    }
    frames.push_back(std::move(frame));
    return frames;
  }

  const KernelSymbolTable& kernel_table() {
    if (!kernel) kernel = KernelSymbolTable::load();
    if (kernel->addresses_hidden() && !warned_hidden_kernel) {
      warned_hidden_kernel = true;
      memscope::log::warning(
          "/proc/kallsyms hides kernel addresses (kernel.kptr_restrict or missing CAP_SYSLOG); "
          "kernel frames will show as [unknown]");
    }
    return *kernel;
  }

  Frame kernel_frame(uint64_t address, bool return_address) {
    Frame frame;
    frame.address = address;
    frame.kernel = true;
    frame.module = "kernel";
    const KernelSymbolTable& table = kernel_table();
    if (table.addresses_hidden()) {
      frame.function = kHiddenKernelFunction;
      return frame;
    }
    uint64_t lookup = return_address && address > 0 ? address - 1 : address;
    if (auto symbol = table.find(lookup)) {
      frame.function = symbol->name;
      frame.offset = address - symbol->address;
      if (!symbol->module.empty()) frame.module = symbol->module;
    }
    return frame;
  }

  void prune_idle_objects() {
    if (objects.size() <= kIdleObjectLimit) return;
    for (auto it = objects.begin(); it != objects.end() && objects.size() > kIdleObjectLimit;) {
      if (it->second.use_count() == 1)
        it = objects.erase(it);
      else
        ++it;
    }
  }
};

StackSymbolizer::StackSymbolizer() : StackSymbolizer(SymbolizerOptions{}) {}
StackSymbolizer::StackSymbolizer(SymbolizerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
StackSymbolizer::~StackSymbolizer() = default;

void StackSymbolizer::prepare(pid_t pid) {
  std::lock_guard lock(impl_->mutex);
  impl_->find_or_prepare(pid);
}

Frame StackSymbolizer::user_frame(pid_t pid, uint64_t address) {
  std::lock_guard lock(impl_->mutex);
  bool may_refresh = true;
  return impl_->user_frames_at(pid, address, false, may_refresh).back();
}

std::vector<Frame> StackSymbolizer::user_frames(pid_t pid, const std::vector<uint64_t>& addresses) {
  std::lock_guard lock(impl_->mutex);
  bool may_refresh = true;
  std::vector<Frame> frames;
  frames.reserve(addresses.size());
  for (size_t i = 0; i < addresses.size(); i++) {
    std::vector<Frame> chain = impl_->user_frames_at(pid, addresses[i], i > 0, may_refresh);
    frames.insert(frames.end(), std::make_move_iterator(chain.begin()), std::make_move_iterator(chain.end()));
  }
  return frames;
}

Frame StackSymbolizer::kernel_frame(uint64_t address) {
  std::lock_guard lock(impl_->mutex);
  return impl_->kernel_frame(address, false);
}

// A stack captured by a BPF program attached to a tracepoint starts inside the machinery that ran
// it: the program itself (bpf_prog_<tag>_<name>, in kallsyms since 4.18), the tp_btf/raw_tp
// trampolines (bpf_trace_run6, __bpf_trace_kmalloc), the tracepoint's iterator (__traceiter_kmalloc)
// or the perf glue of classic tracepoints (perf_trace_kmalloc, perf_trace_run_bpf_submit).
bool is_tracing_machinery(std::string_view function) {
  for (std::string_view prefix : {"bpf_prog_", "bpf_trace_run", "__bpf_trace_", "__traceiter_", "perf_trace_",
                                  "trace_call_bpf", "perf_tp_event", "bpf_get_stack"})
    if (function.starts_with(prefix)) return true;
  return false;
}

std::vector<Frame> StackSymbolizer::kernel_frames(const std::vector<uint64_t>& addresses) {
  std::lock_guard lock(impl_->mutex);
  std::vector<Frame> frames;
  frames.reserve(addresses.size());
  for (size_t i = 0; i < addresses.size(); i++) {
    Frame frame = impl_->kernel_frame(addresses[i], i > 0);
    // The top frame must be the traced kernel function, not the machinery that ran the probe.
    if (frames.empty() && i + 1 < addresses.size() && is_tracing_machinery(frame.function)) continue;
    frames.push_back(std::move(frame));
  }
  return frames;
}

void StackSymbolizer::forget(pid_t pid) {
  std::lock_guard lock(impl_->mutex);
  impl_->processes.erase(pid);
  impl_->prune_idle_objects();
}

std::optional<uint64_t> StackSymbolizer::symbol_file_offset(const std::string& elf_path,
                                                            const std::string& symbol) {
  auto target = split_target_path(elf_path);
  if (!target) return std::nullopt;
  auto file = target->root.open(target->path, {.follow_final_symlink = true});
  if (!file) {
    memscope::log::verbose("symbols: {}", file.error().message);
    return std::nullopt;
  }
  auto object =
      ElfObject::open_file(*file, DebugFileSearch{target->root, target->path, SymbolizerOptions{}.debug_directories});
  if (!object) return std::nullopt;
  auto vaddr = object->symbol_address(symbol);
  if (!vaddr) return std::nullopt;
  return object->file_offset_of_vaddr(*vaddr);
}

void StackSymbolizer::load_kernel_symbols(std::istream& kallsyms) {
  std::lock_guard lock(impl_->mutex);
  impl_->kernel = KernelSymbolTable::parse(kallsyms);
  impl_->warned_hidden_kernel = false;
}

bool StackSymbolizer::kernel_symbols_hidden() {
  std::lock_guard lock(impl_->mutex);
  return impl_->kernel_table().addresses_hidden();
}

size_t StackSymbolizer::cached_object_count() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->objects.size();
}

}  // namespace memscope::symbols
