#include "runtime/user_stacks.hpp"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <gelf.h>
#include <libelf.h>
#include <pthread.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <future>
#include <set>
#include <thread>
#include <tuple>

#include "memscope_unwind_shared.h"
#include "runtime/kernel_introspection.hpp"
#include "runtime/log.hpp"
#include "runtime/result.hpp"
#include "runtime/stack_map.hpp"
#include "runtime/uprobe_multi.hpp"
#include "runtime/kernel_btf.hpp"
#include "symbols/cfi_table.hpp"
#include "symbols/process_maps.hpp"
#include "symbols/symbolizer.hpp"
#include "symbols/target_files.hpp"

namespace memscope {
namespace {

// Everything the tables of all objects may take together; an object past it is crossed with frame
// pointers (and -v says so).
constexpr uint64_t kMaxTableBytes = 256ull << 20;

struct LoadSegment {
  uint64_t file_offset = 0;
  uint64_t file_size = 0;
  uint64_t vaddr = 0;
  bool executable = false;
};

// The object a mapping shows: the file's identity (a replaced file is a new object), or the vDSO.
using ObjectKey = std::tuple<uint64_t, uint64_t, uint64_t, int64_t>;  // device, inode, size, mtime
const ObjectKey kVdsoKey{0, 0, 0, -1};

ObjectKey object_key(const struct stat& status) {
  return {status.st_dev, status.st_ino, static_cast<uint64_t>(status.st_size),
          status.st_mtim.tv_sec * 1'000'000'000ll + status.st_mtim.tv_nsec};
}

std::vector<LoadSegment> load_segments(Elf* elf) {
  std::vector<LoadSegment> segments;
  size_t count = 0;
  if (!elf || elf_getphdrnum(elf, &count) != 0) return segments;
  for (size_t i = 0; i < count && i < 4096; i++) {
    GElf_Phdr header;
    if (!gelf_getphdr(elf, static_cast<int>(i), &header) || header.p_type != PT_LOAD) continue;
    segments.push_back({header.p_offset, header.p_filesz, header.p_vaddr, (header.p_flags & PF_X) != 0});
  }
  return segments;
}

// The link-time address of a mapping's start: its file offset translated through the segment
// that holds it, executable segments first (two segments may share a page of the file).
std::optional<uint64_t> link_address_of(const std::vector<LoadSegment>& segments, uint64_t file_offset) {
  for (int pass = 0; pass < 2; pass++) {
    for (const auto& segment : segments) {
      if (segment.executable != (pass == 0)) continue;
      // Mappings start page-aligned, segments need not: compare with the segment's page.
      uint64_t page_start = segment.file_offset & ~0xfffull;
      if (file_offset >= page_start && file_offset < segment.file_offset + segment.file_size)
        return segment.vaddr - (segment.file_offset - file_offset);
    }
  }
  return std::nullopt;
}

// The dynamic loader a process runs with: the mapping at AT_BASE of its auxiliary vector.
std::optional<std::string> dynamic_loader_path(pid_t pid) {
  std::string auxv_path = fmt::format("/proc/{}/auxv", pid);
  int fd = open(auxv_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  uint64_t auxv[2 * 64] = {};
  ssize_t length = read(fd, auxv, sizeof(auxv));
  close(fd);
  uint64_t base = 0;
  for (ssize_t i = 0; i + 1 < length / static_cast<ssize_t>(sizeof(uint64_t)); i += 2)
    if (auxv[i] == AT_BASE) base = auxv[i + 1];
  auto maps = symbols::read_proc_maps(pid);
  if (!base || !maps) return std::nullopt;  // static executables have no loader
  for (const auto& entry : *maps)
    if (entry.start == base && entry.file_backed()) return entry.path;
  return std::nullopt;
}

std::string own_vdso_image() {
  auto start = getauxval(AT_SYSINFO_EHDR);
  if (!start) return {};
  auto maps = symbols::read_proc_maps(getpid());
  if (!maps) return {};
  for (const auto& entry : *maps) {
    if (entry.path == "[vdso]" && entry.start == start)
      return std::string(reinterpret_cast<const char*>(entry.start), entry.end - entry.start);
  }
  return {};
}

int find_map_fd(bpf_object* object, const char* name) {
  bpf_map* map = bpf_object__find_map_by_name(object, name);
  return map ? bpf_map__fd(map) : -1;
}

// Writes `value` into the .rodata variable `name` before load; false when the object has none.
template <typename T>
bool set_rodata(bpf_object* object, const char* name, T value) {
  const btf* types = bpf_object__btf(object);
  if (!types) return false;
  int section_id = btf__find_by_name_kind(types, ".rodata", BTF_KIND_DATASEC);
  if (section_id < 0) return false;
  const btf_type* section = btf__type_by_id(types, section_id);
  bpf_map* rodata = nullptr;
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, object) {
    const char* map_name = bpf_map__name(map);
    size_t length = std::strlen(map_name);
    if (bpf_map__is_internal(map) && length >= 7 && std::strcmp(map_name + length - 7, ".rodata") == 0)
      rodata = map;
  }
  if (!rodata) return false;
  size_t size = 0;
  // The skeleton writes its .rodata through this same memory before load (libbpf 1.1 returns it const).
  auto* data = static_cast<char*>(const_cast<void*>(bpf_map__initial_value(rodata, &size)));
  const btf_var_secinfo* variables = btf_var_secinfos(section);
  for (unsigned i = 0; i < btf_vlen(section); i++) {
    const btf_type* variable = btf__type_by_id(types, variables[i].type);
    if (std::strcmp(btf__name_by_offset(types, variable->name_off), name) != 0) continue;
    if (!data || variables[i].offset + sizeof(T) > size || variables[i].size != sizeof(T)) return false;
    std::memcpy(data + variables[i].offset, &value, sizeof(T));
    return true;
  }
  return false;
}

// The processes whose tables are loaded before tracing starts: -p's, and -t's process.
std::vector<pid_t> preload_pids(const CommonOptions& options) {
  if (options.pid > 0) return {static_cast<pid_t>(options.pid)};
  if (options.tid > 0) {
    // A thread's process: the Tgid line of its status.
    std::string status = fmt::format("/proc/{}/status", options.tid);
    FILE* file = fopen(status.c_str(), "re");
    int tgid = 0;
    if (file) {
      char line[256];
      while (fgets(line, sizeof(line), file))
        if (std::sscanf(line, "Tgid: %d", &tgid) == 1) break;
      fclose(file);
    }
    if (tgid > 0) return {static_cast<pid_t>(tgid)};
  }
  return {};
}

}  // namespace

struct UserStacks::LoadedObject {
  uint32_t id = 0;  // 0: no rows (frame pointers)
  uint32_t rows = 0;
  uint64_t bytes = 0;
  uint32_t users = 0;  // processes whose stored mapping table names the object
  std::vector<LoadSegment> segments;
};

// A process whose mapping table is in unwind_processes: which table (its generation), the process's
// start time (a pid may be reused) and the objects it maps, each counted once in their `users`.
struct LoadedProcess {
  uint32_t generation = 0;
  uint64_t start_ticks = 0;
  std::vector<ObjectKey> objects;
};

struct UserStacks::Impl {
  bpf_object* object = nullptr;
  int stacks_fd = -1;
  int tables_fd = -1;
  int processes_fd = -1;
  int requests_fd = -1;
  int counters_fd = -1;
  int stopped_threads_fd = -1;
  pid_t stop_pid = 0;
  BpfObjectLinks links;
  bool loader_uprobe_multi = false; // the loaders' uprobes are uprobe_multi links (6.6+)
  ring_buffer* requests = nullptr;
  std::thread server;
  std::atomic<bool> stopping{false};

  mutable std::mutex mutex;  // guards everything below
  std::map<ObjectKey, LoadedObject> objects;
  std::map<pid_t, LoadedProcess> processes;
  // Table ids whose objects no process maps any more, free for the next object (lowest first).
  std::set<uint32_t> free_ids;
  uint64_t tables_freed = 0;
  std::chrono::steady_clock::time_point next_sweep{};
  std::vector<std::pair<std::chrono::steady_clock::time_point, pid_t>> reloads;
  std::vector<std::pair<uint32_t, int>> unplaced_tables;  // object id, rows map: made, not yet in unwind_tables
  uint32_t next_object_id = 1;
  uint32_t table_generation = 0;  // of the last process table stored (memscope_unwind_process::generation)
  uint64_t table_bytes = 0;
  uint64_t table_rows = 0;
  std::string vdso_image;
  bool vdso_read = false;

  // An object's rows and load segments, compiled without touching shared state (several objects
  // compile at once).
  struct CompiledObject {
    std::vector<LoadSegment> segments;
    Result<symbols::CfiTable> table = Error{"not compiled"};
  };

  static CompiledObject compile_object(int fd, const std::string& image) {
    CompiledObject compiled;
    Elf* elf = fd >= 0 ? elf_begin(fd, ELF_C_READ, nullptr)
                       : elf_memory(const_cast<char*>(image.data()), image.size());
    compiled.segments = load_segments(elf);
    if (elf) elf_end(elf);
    compiled.table = fd >= 0 ? symbols::compile_cfi_table(fd, -1) : symbols::compile_cfi_table_from_image(image);
    return compiled;
  }

  // The objects of the preloaded processes, compiled on a thread while the BPF object loads (their
  // rows need no map until start()), then taken by load_objects() instead of compiling them again.
  std::vector<std::future<std::vector<std::pair<ObjectKey, CompiledObject>>>> compiling_ahead;
  std::map<ObjectKey, CompiledObject> compiled_ahead;

  void compile_ahead(pid_t pid) {
    compiling_ahead.push_back(std::async(std::launch::async, [pid] {
      std::vector<std::pair<ObjectKey, CompiledObject>> compiled;
      auto maps = symbols::read_proc_maps(pid);
      if (!maps) return compiled;
      std::set<ObjectKey> seen;
      for (const auto& entry : *maps) {
        if (!entry.executable || !entry.file_backed()) continue;
        auto opened = symbols::open_mapped_file(pid, entry.start, entry.end);
        if (!opened) continue;
        ObjectKey key = object_key(opened->status);
        if (!seen.insert(key).second) continue;
        compiled.emplace_back(key, compile_object(opened->fd.get(), {}));
      }
      return compiled;
    }));
  }

  // Under the mutex, before the first load_process().
  void collect_compiled_ahead() {
    for (auto& compiling : compiling_ahead)
      for (auto& [key, compiled] : compiling.get()) compiled_ahead.emplace(key, std::move(compiled));
    compiling_ahead.clear();
  }

  // Loads compiled rows into a map of their own (under the mutex); the object without rows when
  // that fails (logged).
  LoadedObject store_object(CompiledObject& compiled, const std::string& what) {
    LoadedObject loaded;
    loaded.segments = std::move(compiled.segments);
    auto& table = compiled.table;
    if (!table) {
      log::verbose("unwind table of {}: {}; its frames are crossed with frame pointers", what,
                   table.error().message);
      return loaded;
    }
    if (table->rows.empty() || (free_ids.empty() && next_object_id >= MEMSCOPE_UNWIND_MAX_OBJECTS) ||
        table_bytes + table->bytes() > kMaxTableBytes) {
      log::verbose("unwind table of {}: {}", what,
                   table->rows.empty() ? "no call-frame information" : "table limit reached");
      return loaded;
    }
    // Memory-mapped: the rows are copied in with one memcpy rather than element by element.
    LIBBPF_OPTS(bpf_map_create_opts, create, .map_flags = BPF_F_INNER_MAP | BPF_F_MMAPABLE);
    int rows_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "unwind_rows", sizeof(uint32_t),
                                 sizeof(memscope_unwind_row), table->rows.size(), &create);
    if (rows_fd < 0) {
      log::warning("unwind table of {}: cannot create its map: {}", what, strerror(errno));
      return loaded;
    }
    size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    size_t length = (table->bytes() + page - 1) / page * page;
    void* rows = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, rows_fd, 0);
    int err = rows == MAP_FAILED ? -1 : 0;
    if (!err) {
      std::memcpy(rows, table->rows.data(), table->bytes());
      munmap(rows, length);
    }
    if (err) {
      log::warning("unwind table of {}: cannot fill its map: {}", what, strerror(errno));
      close(rows_fd);
      return loaded;
    }
    uint32_t id = next_object_id;
    if (!free_ids.empty()) {
      id = *free_ids.begin();
      free_ids.erase(free_ids.begin());
    } else {
      next_object_id++;
    }
    // Put into unwind_tables by insert_tables(), all of a process's new objects at once.
    unplaced_tables.push_back({id, rows_fd});
    loaded.id = id;
    loaded.rows = static_cast<uint32_t>(table->rows.size());
    loaded.bytes = table->bytes();
    table_bytes += table->bytes();
    table_rows += table->rows.size();
    log::verbose("unwind table of {}: {} rows from {} ({} KiB){}", what, table->rows.size(), table->source,
                 table->bytes() / 1024,
                 table->unsupported_rows ? fmt::format(", {} rules crossed with frame pointers",
                                                       table->unsupported_rows)
                                         : "");
    return loaded;
  }

  // Every update of a map of maps waits for running BPF programs (an RCU grace period, milliseconds):
  // one batch update for all the tables store_object() made, rather than one wait per object.
  void insert_tables() {
    if (unplaced_tables.empty()) return;
    std::vector<uint32_t> ids;
    std::vector<uint32_t> fds;
    for (const auto& [id, fd] : unplaced_tables) {
      ids.push_back(id);
      fds.push_back(static_cast<uint32_t>(fd));
    }
    uint32_t count = static_cast<uint32_t>(ids.size());
    if (bpf_map_update_batch(tables_fd, ids.data(), fds.data(), &count, nullptr) != 0) {
      for (size_t i = 0; i < ids.size(); i++)
        if (bpf_map_update_elem(tables_fd, &ids[i], &fds[i], BPF_ANY) != 0)
          log::warning("unwind table {}: cannot load it: {}", ids[i], strerror(errno));
    }
    for (const auto& [id, fd] : unplaced_tables) close(fd);  // the outer map keeps them
    unplaced_tables.clear();
  }

  // Each object of `keys` loses a user (a process that mapped it exited, exec()ed or no longer maps
  // it); those no process maps any more are forgotten.
  void release(const std::vector<ObjectKey>& keys) {
    for (const auto& key : keys) {
      auto found = objects.find(key);
      if (found != objects.end() && found->second.users) found->second.users--;
    }
    forget_unused(keys);
  }

  // Forgets the objects of `keys` that no process maps: their tables leave unwind_tables (the
  // kernel frees a table once nothing holds it) and their ids are free for the next objects. Each
  // delete from a map of maps waits for running BPF programs, so no walk that looked the table up
  // is still running when its id comes to name another object; and no stored process table names
  // the id any more (its users are gone).
  void forget_unused(const std::vector<ObjectKey>& keys) {
    std::vector<uint32_t> ids;
    for (const auto& key : keys) {
      auto found = objects.find(key);
      if (found == objects.end() || found->second.users) continue;
      if (found->second.id) {
        ids.push_back(found->second.id);
        table_bytes -= found->second.bytes;
        table_rows -= found->second.rows;
        tables_freed++;
      }
      objects.erase(found);
    }
    for (uint32_t id : ids) {
      if (bpf_map_delete_elem(tables_fd, &id) != 0 && errno != ENOENT)
        log::verbose("unwind table {}: cannot delete it: {}", id, strerror(errno));
      free_ids.insert(id);
    }
  }

  // The exit or exec hook deleted a process's table (generation `generation`): unless a newer one
  // is stored already, the process no longer uses its objects.
  void forget_process(pid_t pid, uint32_t generation) {
    std::lock_guard lock(mutex);
    auto found = processes.find(pid);
    if (found == processes.end() || found->second.generation != generation) return;
    std::vector<ObjectKey> mapped = std::move(found->second.objects);
    processes.erase(found);
    release(mapped);
  }

  // Processes gone without a word from the exit hook (the requests ring buffer was full, or their
  // table was stored just after the hook ran): once a second, their tables are deleted here.
  void forget_exited_processes() {
    auto now = std::chrono::steady_clock::now();
    if (now < next_sweep) return;
    next_sweep = now + std::chrono::seconds(1);
    std::lock_guard lock(mutex);
    std::vector<ObjectKey> mapped;
    for (auto it = processes.begin(); it != processes.end();) {
      if (process_start_ticks(it->first) == it->second.start_ticks) {
        ++it;
        continue;
      }
      uint32_t key = static_cast<uint32_t>(it->first);
      bpf_map_delete_elem(processes_fd, &key);  // a table stored for that process, not a newer one's
      mapped.insert(mapped.end(), it->second.objects.begin(), it->second.objects.end());
      it = processes.erase(it);
    }
    release(mapped);
  }

  // The objects behind a process's executable mappings that are not loaded yet: opened now, while
  // the mappings are fresh; compiled by load_objects().
  struct PendingObject {
    ObjectKey key;
    int fd = -1;
    std::string path;
    CompiledObject compiled;
  };

  // The key of a mapping's object, with the file opened (fd) when it is not loaded yet.
  std::optional<ObjectKey> key_of(pid_t pid, const symbols::MapsEntry& entry, std::vector<PendingObject>& pending) {
    if (entry.path == "[vdso]") {
      if (!objects.count(kVdsoKey)) {
        if (!vdso_read) vdso_image = own_vdso_image();
        vdso_read = true;
        if (vdso_image.empty()) return std::nullopt;
        CompiledObject compiled = compile_object(-1, vdso_image);
        // Into unwind_tables with the process's other new objects (load_objects): one wait.
        objects.emplace(kVdsoKey, store_object(compiled, "[vdso]"));
      }
      return kVdsoKey;
    }
    if (!entry.file_backed()) return std::nullopt;
    // map_files reaches the very file mapped (deleted, replaced, or in another mount namespace).
    // Opened O_PATH and checked (a regular file of bounded size) before it is opened for reading; read
    // with pread by compile_object(), never mapped.
    auto opened = symbols::open_mapped_file(pid, entry.start, entry.end);
    if (!opened) {
      log::verbose("unwind table of {}: {}", entry.path, opened.error().message);
      return std::nullopt;
    }
    int fd = opened->fd.release();
    ObjectKey key = object_key(opened->status);
    bool known = objects.count(key) ||
                 std::any_of(pending.begin(), pending.end(), [&](const auto& other) { return other.key == key; });
    if (known)
      close(fd);
    else
      pending.push_back({key, fd, entry.path, {}});
    return key;
  }

  // Compiles the pending objects on every CPU, then loads them.
  void load_objects(std::vector<PendingObject>& pending) {
    std::vector<PendingObject*> to_compile;
    for (auto& object : pending) {
      auto ahead = compiled_ahead.find(object.key);
      if (ahead == compiled_ahead.end()) {
        to_compile.push_back(&object);
        continue;
      }
      object.compiled = std::move(ahead->second);
      compiled_ahead.erase(ahead);
    }
    size_t workers = std::min<size_t>(to_compile.size(), std::max(1u, std::thread::hardware_concurrency()));
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t i = next++; i < to_compile.size(); i = next++)
        to_compile[i]->compiled = compile_object(to_compile[i]->fd, {});
    };
    std::vector<std::thread> threads;
    for (size_t i = 1; i < workers; i++) threads.emplace_back(work);
    work();
    for (auto& thread : threads) thread.join();
    for (auto& object : pending) {
      close(object.fd);
      if (!objects.count(object.key)) objects.emplace(object.key, store_object(object.compiled, object.path));
    }
    insert_tables();
  }

  // A uprobe on a dynamic loader's _dl_debug_state(): ld.so calls it after mapping a program's
  // libraries and at every dlopen()/dlclose(), so tables load before they are needed.
  void watch_dynamic_loader(pid_t pid, const std::string& path, const std::string& shown) {
    bpf_program* program = bpf_object__find_program_by_name(object, "memscope_unwind_libraries_changed");
    if (!program) return;
    auto offset = symbols::StackSymbolizer::symbol_file_offset(path, "_dl_debug_state");
    if (!offset) {
      log::verbose("{} has no _dl_debug_state; libraries loaded later are found on their first stack", shown);
      return;
    }
    if (loader_uprobe_multi) {
      int fd = attach_uprobe_multi(program, path, {*offset}, pid, false);
      if (fd < 0) {
        log::verbose("uprobe_multi on {}'s _dl_debug_state: {}", shown, strerror(-fd));
        return;
      }
      links.adopt_fd(fd);
      return;
    }
    bpf_link* link = bpf_program__attach_uprobe(program, false, pid, path.c_str(), *offset);
    if (!link) {
      log::verbose("uprobe on {}'s _dl_debug_state: {}", shown, strerror(errno));
      return;
    }
    links.adopt(link);
  }

  // Each target's loader, for that process only: a uprobe on every process's loader would put its
  // breakpoint into code that emulators (valgrind) and self-checking programs read.
  void watch_dynamic_loaders(const std::vector<pid_t>& pids) {
    for (pid_t pid : pids) {
      auto loader = dynamic_loader_path(pid);
      if (loader)
        watch_dynamic_loader(pid, fmt::format("/proc/{}/root{}", pid, *loader), fmt::format("pid {}: {}", pid, *loader));
    }
  }

  // A process loaded when it exec()ed has only its executable and loader mapped; ld.so maps the
  // libraries within milliseconds. Reading its mappings again shortly after loads their tables
  // before the program's own code runs, without a breakpoint in its loader.
  void load_again_soon(pid_t pid) {
    auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mutex);
    for (auto delay : {std::chrono::milliseconds(20), std::chrono::milliseconds(200)}) reloads.push_back({now + delay, pid});
  }

  void load_due_processes() {
    std::vector<pid_t> due;
    {
      std::lock_guard lock(mutex);
      auto now = std::chrono::steady_clock::now();
      for (auto it = reloads.begin(); it != reloads.end();) {
        if (it->first <= now) {
          due.push_back(it->second);
          it = reloads.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (pid_t pid : due) load_process(pid);
  }

  void load_process(pid_t pid) {
    auto start_ticks = process_start_ticks(pid);
    auto maps = symbols::read_proc_maps(pid);
    if (!maps || !start_ticks) return;  // gone, or a kernel thread's empty maps below
    std::lock_guard lock(mutex);
    std::vector<std::optional<ObjectKey>> keys;
    std::vector<PendingObject> pending;
    for (const auto& entry : *maps)
      keys.push_back(entry.executable && entry.path != "[vsyscall]" ? key_of(pid, entry, pending) : std::nullopt);
    load_objects(pending);
    memscope_unwind_process table{};
    for (size_t index = 0; index < maps->size(); index++) {
      const auto& entry = (*maps)[index];
      if (!entry.executable || entry.path == "[vsyscall]") continue;
      if (table.count == MEMSCOPE_UNWIND_MAX_MAPPINGS) {
        log::verbose("pid {}: more than {} executable mappings; the rest are crossed with frame pointers",
                     pid, MEMSCOPE_UNWIND_MAX_MAPPINGS);
        break;
      }
      memscope_unwind_mapping& mapping = table.mappings[table.count++];
      mapping.start = entry.start;
      mapping.end = entry.end;
      auto known = keys[index] ? objects.find(*keys[index]) : objects.end();
      if (known == objects.end() || !known->second.id) continue;
      const LoadedObject* object = &known->second;
      uint64_t file_offset = entry.path == "[vdso]" ? 0 : entry.file_offset;
      auto link_address = link_address_of(object->segments, file_offset);
      if (!link_address) continue;
      mapping.bias = entry.start - *link_address;
      mapping.object_id = object->id;
      mapping.rows = object->rows;
    }
    // /proc/PID/maps is sorted by address already; the walker's binary search relies on it.
    std::sort(table.mappings, table.mappings + table.count,
              [](const auto& a, const auto& b) { return a.start < b.start; });
    uint32_t key = static_cast<uint32_t>(pid);
    std::vector<ObjectKey> mapped;
    for (const auto& object_key : keys)
      if (object_key && std::find(mapped.begin(), mapped.end(), *object_key) == mapped.end())
        mapped.push_back(*object_key);
    if (table.count == 0) return forget_unused(mapped);
    // Rows the walker cached under an older table of this pid (or of an earlier process with the
    // same pid) must not match: every stored table gets a generation of its own.
    table.generation = ++table_generation;
    if (table.generation == 0) table.generation = ++table_generation;
    if (bpf_map_update_elem(processes_fd, &key, &table, BPF_ANY) != 0) {
      log::verbose("pid {}: unwind mapping table not stored: {}", pid, strerror(errno));
      return forget_unused(mapped);
    }
    for (const auto& object_key : mapped) objects[object_key].users++;
    LoadedProcess& record = processes[pid];
    std::vector<ObjectKey> previous = std::move(record.objects);
    record = {table.generation, *start_ticks, std::move(mapped)};
    release(previous);
    uint32_t with_tables = 0;
    for (uint32_t i = 0; i < table.count; i++) with_tables += table.mappings[i].object_id != 0;
    log::verbose("pid {}: {} executable mappings stored ({} with unwind tables)", pid, table.count, with_tables);
  }
};

UserStacks::UserStacks(bpf_object* object, const CommonOptions& options) : impl_(std::make_unique<Impl>()) {
  impl_->object = object;
  bool has_unwinder = bpf_object__find_map_by_name(object, "unwound_stacks") != nullptr;
  Support kernel = cfi_unwinding_support();
  if (has_unwinder && options.stack_mode != "fp" && !kernel.available) log::verbose("user stacks: {}", kernel.reason);
  cfi_enabled_ = has_unwinder && options.stack_mode != "fp" && kernel.available &&
                 set_rodata(object, "unwind_with_cfi", true);
  if (cfi_enabled_) set_rodata(object, "unwind_max_frames", static_cast<uint32_t>(options.stack_depth));
  if (has_unwinder && options.stack_mode == "fp") log::verbose("user stacks: frame pointers (--stack-mode fp)");
  if (!has_unwinder) return;
  elf_version(EV_CURRENT);  // before any thread compiles
  for (pid_t pid : preload_pids(options)) preload(pid);
  for (const char* name : {"memscope_unwind_forget_on_exec", "memscope_unwind_forget_on_exit",
                           "memscope_unwind_libraries_changed"}) {
    if (bpf_program* program = bpf_object__find_program_by_name(object, name))
      bpf_program__set_autoload(program, cfi_enabled_);
  }
  // A perf-event uprobe took ~20 ms to create on 6.18, a uprobe_multi link well under 1 ms.
  bpf_program* loader_probe = bpf_object__find_program_by_name(object, "memscope_unwind_libraries_changed");
  if (cfi_enabled_ && loader_probe && uprobe_multi_supported()) {
    expect_uprobe_multi(loader_probe);
    impl_->loader_uprobe_multi = true;
  }
}

void UserStacks::stop_while_loading(pid_t pid) {
  if (cfi_enabled_ && set_rodata(impl_->object, "unwind_stop_pid", static_cast<uint32_t>(pid))) {
    impl_->stop_pid = pid;
    preload(pid);
  }
}

bool UserStacks::take_stop(pid_t tid) {
  if (!cfi_enabled_ || !impl_->stop_pid) return false;
  uint32_t key = static_cast<uint32_t>(tid);
  if (impl_->stopped_threads_fd < 0 || bpf_map_delete_elem(impl_->stopped_threads_fd, &key) != 0) return false;
  impl_->load_process(impl_->stop_pid);
  return true;
}

UserStacks::~UserStacks() {
  impl_->links.detach(); // while the server still answers a loader's stop
  impl_->stopping = true;
  if (impl_->server.joinable()) impl_->server.join();
  if (cfi_enabled_ && impl_->counters_fd >= 0) {
    UserStackCounters seen = counters();
    log::verbose("user stacks: {} walked with CFI, {} truncated, {} frames crossed with frame pointers, "
                 "{} taken with frame pointers before their process was loaded, {} load requests lost; {}",
                 seen.stacks, seen.truncated, seen.frame_pointer_frames, seen.unknown_process,
                 seen.requests_lost, table_summary());
  }
  if (impl_->requests) ring_buffer__free(impl_->requests);
}

BpfObjectLinks& UserStacks::links() { return impl_->links; }

void UserStacks::preload(pid_t pid) {
  if (std::find(preloaded_.begin(), preloaded_.end(), pid) != preloaded_.end()) return;
  preloaded_.push_back(pid);
  if (cfi_enabled_) impl_->compile_ahead(pid);
}

void UserStacks::start() {
  const std::vector<pid_t>& pids = preloaded_;
  impl_->stacks_fd = find_map_fd(impl_->object, "unwound_stacks");
  if (!cfi_enabled_) return;
  impl_->tables_fd = find_map_fd(impl_->object, "unwind_tables");
  impl_->processes_fd = find_map_fd(impl_->object, "unwind_processes");
  impl_->requests_fd = find_map_fd(impl_->object, "unwind_requests");
  impl_->counters_fd = find_map_fd(impl_->object, "unwind_counters");
  impl_->stopped_threads_fd = find_map_fd(impl_->object, "unwind_stopped_threads");
  for (const char* name : {"memscope_unwind_forget_on_exec", "memscope_unwind_forget_on_exit"}) {
    bpf_program* program = bpf_object__find_program_by_name(impl_->object, name);
    bpf_link* link = program ? bpf_program__attach(program) : nullptr;
    if (!link) throw FatalError(fmt::format("attaching the unwinder's {} failed: {}", name, strerror(errno)));
    impl_->links.adopt(link);
  }
  auto started = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(impl_->mutex);
    impl_->collect_compiled_ahead();
  }
  // Registering the loaders' uprobe waits for an RCU grace period (uprobe registration takes a
  // per-CPU rw-semaphore for writing), as does putting the tables into unwind_tables: on a thread
  // of its own, the two waits overlap (~10-15 ms each here). It touches only the links.
  auto watching = std::async(std::launch::async, [this, &pids] { impl_->watch_dynamic_loaders(pids); });
  for (pid_t pid : pids) impl_->load_process(pid);
  watching.get();
  if (!pids.empty())
    log::verbose("user stacks: DWARF call-frame information; {} loaded in {} ms", table_summary(),
                 std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started)
                     .count());
  else
    log::verbose("user stacks: DWARF call-frame information, tables loaded as processes appear");
  impl_->requests = ring_buffer__new(
      impl_->requests_fd,
      [](void* context, void* data, size_t size) -> int {
        if (size < sizeof(memscope_unwind_request)) return 0;
        auto* self = static_cast<Impl*>(context);
        const auto& request = *static_cast<memscope_unwind_request*>(data);
        if (request.reason == MEMSCOPE_UNWIND_REQUEST_FORGOTTEN) {
          self->forget_process(static_cast<pid_t>(request.pid), static_cast<uint32_t>(request.address));
          return 0;
        }
        self->load_process(static_cast<pid_t>(request.pid));
        if (request.reason == MEMSCOPE_UNWIND_REQUEST_EXEC) self->load_again_soon(static_cast<pid_t>(request.pid));
        return 0;
      },
      impl_.get(), nullptr);
  if (!impl_->requests) throw FatalError(fmt::format("unwinder requests: {}", strerror(errno)));
  // Ctrl-C, SIGTERM and SIGCHLD belong to the event loop (a signalfd in the main thread): a signal
  // sent to the process must never be delivered to this thread, which inherits the mask it is
  // created with.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &previous);
  impl_->server = std::thread([this] { serve_requests(); });
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

void UserStacks::serve_requests() {
  while (!impl_->stopping) {
    ring_buffer__poll(impl_->requests, 10);
    impl_->load_due_processes();
    impl_->forget_exited_processes();
  }
}

void UserStacks::load_process(pid_t pid) {
  if (cfi_enabled_) impl_->load_process(pid);
}

std::vector<uint64_t> UserStacks::read(int stack_map_fd, int32_t stack_id) const {
  output::Stack stack;
  read_into(stack, stack_map_fd, stack_id);
  return stack.user;
}

void UserStacks::read_into(output::Stack& stack, int stack_map_fd, int32_t stack_id) const {
  stack.user.clear();
  if (stack_id < 0) return;
  if (!(stack_id & MEMSCOPE_UNWOUND_STACK_ID)) {
    stack.user = read_stack(stack_map_fd, stack_id);
    return;
  }
  uint32_t key = static_cast<uint32_t>(stack_id) & MEMSCOPE_UNWOUND_STACK_ID_MASK;
  memscope_unwound_stack unwound{};
  if (impl_->stacks_fd < 0 || bpf_map_lookup_elem(impl_->stacks_fd, &key, &unwound) != 0) return;
  uint32_t frames = std::min<uint32_t>(unwound.frames, MEMSCOPE_UNWIND_MAX_FRAMES);
  stack.user.assign(unwound.addresses, unwound.addresses + frames);
  stack.user_frame_pointer_frames = unwound.frame_pointer_frames;
  stack.user_truncated = unwound.truncated != 0;
}

void UserStacks::forget(int stack_map_fd, int32_t stack_id) const {
  if (stack_id < 0) return;
  uint32_t key = static_cast<uint32_t>(stack_id);
  if (stack_id & MEMSCOPE_UNWOUND_STACK_ID) {
    key &= MEMSCOPE_UNWOUND_STACK_ID_MASK;
    if (impl_->stacks_fd >= 0) bpf_map_delete_elem(impl_->stacks_fd, &key);
  } else if (stack_map_fd >= 0) {
    bpf_map_delete_elem(stack_map_fd, &key);
  }
}

std::vector<StoredStackMap> UserStacks::stored_stack_maps(int stack_map_fd) const {
  std::vector<StoredStackMap> maps = {{stack_map_fd, 0}};
  if (impl_->stacks_fd >= 0) maps.push_back({impl_->stacks_fd, MEMSCOPE_UNWOUND_STACK_ID});
  return maps;
}

UserStackCounters UserStacks::counters() const {
  UserStackCounters counters;
  if (impl_->counters_fd < 0) return counters;
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return counters;
  std::vector<uint64_t> values(static_cast<size_t>(cpus));
  auto sum = [&](uint32_t counter) {
    uint64_t total = 0;
    if (bpf_map_lookup_elem(impl_->counters_fd, &counter, values.data()) == 0)
      for (uint64_t value : values) total += value;
    return total;
  };
  counters.stacks = sum(MEMSCOPE_UNWIND_STACKS);
  counters.truncated = sum(MEMSCOPE_UNWIND_TRUNCATED);
  counters.frame_pointer_frames = sum(MEMSCOPE_UNWIND_FRAME_POINTER_FRAMES);
  counters.unknown_process = sum(MEMSCOPE_UNWIND_UNKNOWN_PROCESS);
  counters.requests_lost = sum(MEMSCOPE_UNWIND_REQUESTS_LOST);
  return counters;
}

std::string UserStacks::table_summary() const {
  std::lock_guard lock(impl_->mutex);
  size_t with_rows = 0;
  for (const auto& [key, object] : impl_->objects) with_rows += object.id != 0;
  return fmt::format(
      "unwind tables: {} objects ({} without call-frame information), {} rows, {:.1f} MiB; {} processes; "
      "{} tables freed",
      with_rows, impl_->objects.size() - with_rows, impl_->table_rows, impl_->table_bytes / 1048576.0,
      impl_->processes.size(), impl_->tables_freed);
}

Support cfi_unwinding_support() {
  static const Support support = [] {
    if (!KernelBtf::get()) return Support{false, "no kernel BTF"};
    for (const char* helper : {"BPF_FUNC_loop", "BPF_FUNC_task_pt_regs", "BPF_FUNC_send_signal_thread"})
      if (!kernel_has_bpf_helper(helper))
        return Support{false, fmt::format("the kernel lacks {} (stacks use frame pointers)", helper)};
    return Support{true, "DWARF call-frame information, frame pointers where an object has none"};
  }();
  return support;
}

}  // namespace memscope
