// The leak proof on a live process: stop it, read registers and root memory, mark what the roots
// reach (scan_marking.hpp), resume it. Root selection is scan_regions.hpp.
#include "tools/memleak/heap_scanner.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "runtime/log.hpp"
#include "tools/memleak/process_stopper.hpp"
#include "tools/memleak/scan_marking.hpp"
#include "tools/memleak/scan_regions.hpp"

namespace memscope::memleak {
namespace {

using scan::MemoryRange;

// Reads another process's memory with process_vm_readv, many ranges per call; falls back to
// /proc/PID/mem where process_vm_readv is unavailable (seccomp, CONFIG_CROSS_MEMORY_ATTACH=n).
class ProcessMemory : public scan::RemoteMemory {
 public:
  explicit ProcessMemory(pid_t pid) : pid_(pid), page_size_(static_cast<uint64_t>(sysconf(_SC_PAGESIZE))) {}
  ~ProcessMemory() override {
    if (mem_fd_ >= 0) close(mem_fd_);
    if (pagemap_fd_ >= 0) close(pagemap_fd_);
  }

  // What can hold a reference: only readable mappings are read (the rest reads as zeros without a
  // system call per page), and in large private ranges only pages the process ever touched
  // (/proc/PID/pagemap: present or swapped); a page never touched reads as zeros anyway.
  void set_mappings(const std::vector<scan::Mapping>& mappings) {
    for (const scan::Mapping& mapping : mappings)
      if (mapping.readable) readable_.push_back(mapping);
    std::sort(readable_.begin(), readable_.end(),
              [](const scan::Mapping& a, const scan::Mapping& b) { return a.start < b.start; });
    pagemap_fd_ = open(fmt::format("/proc/{}/pagemap", pid_).c_str(), O_RDONLY | O_CLOEXEC);
  }
  void set_budget(uint64_t max_bytes, std::chrono::steady_clock::time_point deadline, bool has_deadline) {
    max_bytes_ = max_bytes;
    deadline_ = deadline;
    has_deadline_ = has_deadline;
  }
  // Empty, or which bound stopped the scan.
  const std::string& over_budget() const { return over_budget_; }
  uint64_t bytes_skipped() const { return bytes_skipped_; }
  ProcessMemory(const ProcessMemory&) = delete;
  ProcessMemory& operator=(const ProcessMemory&) = delete;

  // The process disappeared (killed) while it was being read.
  bool gone() const { return gone_; }

  uint64_t read(std::span<const MemoryRange> ranges, uint8_t* out) override {
    Cursor cursor{ranges, out};
    uint64_t read_bytes = 0;
    while (!cursor.done()) {
      if (!over_budget_.empty() || check_budget()) {
        // Stopped: the rest reads as zeros, and the caller discards the verdicts.
        for (; !cursor.done();) {
          uint64_t length = cursor.range_end() - cursor.address();
          std::memset(cursor.destination(), 0, length);
          cursor.advance(length);
        }
        break;
      }
      uint64_t limit = 0;
      uint64_t zeros = skippable(cursor.address(), cursor.range_end(), limit);
      if (zeros > 0) {
        std::memset(cursor.destination(), 0, zeros);
        cursor.advance(zeros);
        bytes_skipped_ += zeros;
        continue;
      }
      int64_t got = use_proc_mem_ ? read_proc_mem(cursor, limit) : read_vm(cursor, limit);
      if (got > 0) {
        read_bytes += static_cast<uint64_t>(got);
        cursor.advance(static_cast<uint64_t>(got));
      } else if (got == 0) {
        // The page at the cursor cannot be read (unmapped since, PROT_NONE, a device mapping): its
        // bytes stay zero.
        uint64_t address = cursor.address();
        uint64_t page_end = (address | (page_size_ - 1)) + 1;
        uint64_t length = std::min(page_end, cursor.range_end()) - address;
        std::memset(cursor.destination(), 0, length);
        cursor.advance(length);
      }
      // got < 0: switched to /proc/PID/mem; retry from the same place.
    }
    total_read_ += read_bytes;
    return read_bytes;
  }

 private:
  struct Cursor {
    std::span<const MemoryRange> ranges;
    uint8_t* out;
    size_t index = 0;
    uint64_t offset = 0;  // within ranges[index]

    bool done() const { return index >= ranges.size(); }
    uint64_t address() const { return ranges[index].start + offset; }
    uint64_t range_end() const { return ranges[index].end; }
    uint8_t* destination() const { return out; }
    void advance(uint64_t bytes) {
      out += bytes;
      while (bytes > 0 && index < ranges.size()) {
        uint64_t left = ranges[index].size() - offset;
        uint64_t step = std::min(left, bytes);
        offset += step;
        bytes -= step;
        if (offset == ranges[index].size()) {
          ++index;
          offset = 0;
        }
      }
      while (index < ranges.size() && ranges[index].size() == 0) ++index;
    }
  };

  bool check_budget() {
    if (max_bytes_ && total_read_ >= max_bytes_)
      over_budget_ = fmt::format("it read {} MiB, its budget", max_bytes_ >> 20);
    else if (has_deadline_ && std::chrono::steady_clock::now() >= deadline_)
      over_budget_ = "it reached its time budget";
    return !over_budget_.empty();
  }

  // How many bytes from `address` (before `end`) need not be read: outside every readable mapping,
  // or pages of a private mapping the process never touched. Otherwise 0, and `limit` is set to the
  // bytes worth reading in one go when the range is large (0: no limit).
  uint64_t skippable(uint64_t address, uint64_t end, uint64_t& limit) {
    limit = 0;
    if (readable_.empty()) return 0;
    auto after = std::upper_bound(readable_.begin(), readable_.end(), address,
                                  [](uint64_t value, const scan::Mapping& m) { return value < m.start; });
    if (after == readable_.begin() || !std::prev(after)->contains(address)) {
      uint64_t next = after == readable_.end() ? end : std::min(end, after->start);
      return next - address;
    }
    const scan::Mapping& mapping = *std::prev(after);
    uint64_t stop = std::min(end, mapping.end);
    constexpr uint64_t kLargeRange = 64 * 1024;
    if (pagemap_fd_ < 0 || mapping.shared || stop - address < kLargeRange) {
      limit = stop - address;
      return 0;
    }
    // One pagemap word per page: find the run of untouched (or touched) pages at address.
    uint64_t page = address & ~(page_size_ - 1);
    bool first_touched = false;
    uint64_t run_end = page;
    constexpr size_t kWords = 512;
    uint64_t words[kWords];
    bool first = true;
    while (run_end < stop) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(kWords, (stop - run_end + page_size_ - 1) / page_size_));
      ssize_t got = pread(pagemap_fd_, words, want * sizeof(uint64_t),
                          static_cast<off_t>(run_end / page_size_ * sizeof(uint64_t)));
      if (got <= 0) {
        if (first) {
          limit = stop - address;
          return 0;
        }
        break;
      }
      size_t count = static_cast<size_t>(got) / sizeof(uint64_t);
      size_t i = 0;
      for (; i < count; i++) {
        bool touched = (words[i] >> 62) != 0;  // bit 63 present, bit 62 swapped
        if (first) {
          first_touched = touched;
          first = false;
        } else if (touched != first_touched) {
          break;
        }
      }
      run_end += i * page_size_;
      if (i < count) break;
    }
    run_end = std::min(std::max(run_end, address + 1), stop);
    if (!first_touched) return run_end - address;
    limit = run_end - address;
    return 0;
  }

  // Bytes read from the cursor on, 0 when its first page is unreadable, -1 after switching method.
  // limit > 0: read at most that many bytes, from the cursor's range only.
  int64_t read_vm(const Cursor& cursor, uint64_t limit) {
    constexpr size_t kMaxIovecs = 1024;  // IOV_MAX
    iovec local[kMaxIovecs];
    iovec remote[kMaxIovecs];
    size_t count = 0;
    uint8_t* destination = cursor.out;
    for (size_t i = cursor.index; i < cursor.ranges.size() && count < kMaxIovecs; ++i) {
      uint64_t start = cursor.ranges[i].start + (i == cursor.index ? cursor.offset : 0);
      size_t length = static_cast<size_t>(cursor.ranges[i].end - start);
      if (limit) length = static_cast<size_t>(std::min<uint64_t>(length, limit));
      if (length == 0) continue;
      local[count] = {destination, length};
      remote[count] = {reinterpret_cast<void*>(start), length};
      destination += length;
      ++count;
      if (limit) break;
    }
    ssize_t got = process_vm_readv(pid_, local, count, remote, count, 0);
    if (got >= 0) return got;
    if (errno == ENOSYS || errno == EPERM) {
      mem_fd_ = open(fmt::format("/proc/{}/mem", pid_).c_str(), O_RDONLY | O_CLOEXEC);
      if (mem_fd_ >= 0) {
        log::verbose("leak proof: process_vm_readv failed ({}), reading /proc/{}/mem", std::strerror(errno),
                     pid_);
        use_proc_mem_ = true;
        return -1;
      }
    }
    if (errno == ESRCH) gone_ = true;  // every page reads as zero from now on: the verdicts are void
    return 0;                          // EFAULT: the first remote page is unreadable
  }

  int64_t read_proc_mem(const Cursor& cursor, uint64_t limit) {
    uint64_t length = cursor.range_end() - cursor.address();
    if (limit) length = std::min(length, limit);
    ssize_t got = pread(mem_fd_, cursor.destination(), static_cast<size_t>(length),
                        static_cast<off_t>(cursor.address()));
    return got > 0 ? got : 0;
  }

  pid_t pid_;
  uint64_t page_size_;
  bool gone_ = false;
  int mem_fd_ = -1;
  bool use_proc_mem_ = false;
  std::vector<scan::Mapping> readable_;
  int pagemap_fd_ = -1;
  uint64_t max_bytes_ = 0;
  uint64_t total_read_ = 0;
  uint64_t bytes_skipped_ = 0;
  std::chrono::steady_clock::time_point deadline_{};
  bool has_deadline_ = false;
  std::string over_budget_;
};

std::string read_text_file(const std::string& path) {
  std::ifstream file(path);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

Result<ScanReport> scan_threads(pid_t pid, const std::vector<ThreadRegisters>& threads,
                                const std::vector<TrackedBlock>& blocks, const ScanOptions& options,
                                std::chrono::steady_clock::time_point started) {
  std::string maps_text = read_text_file(fmt::format("/proc/{}/maps", pid));
  if (maps_text.empty()) return Error{fmt::format("cannot read /proc/{}/maps: the process is gone", pid)};
  std::vector<scan::Mapping> mappings = scan::parse_maps(maps_text);

  scan::BlockIndex index(blocks);
  std::vector<scan::ThreadPointers> pointers;
  for (const ThreadRegisters& thread : threads)
    pointers.push_back({thread.tid, thread.stack_pointer, thread.thread_pointer});
  std::vector<scan::RootRegion> regions = scan::classify_roots(mappings, pointers, index, options);
  std::vector<MemoryRange> roots = scan::root_ranges(regions, index);

  if (log::verbosity() > 0) {
    std::map<std::string, uint64_t> bytes_by_kind;
    for (const scan::RootRegion& region : regions)
      bytes_by_kind[scan::root_kind_name(region.kind)] += region.range.size();
    std::string summary;
    for (const auto& [kind, bytes] : bytes_by_kind) summary += fmt::format(" {}={}K", kind, bytes / 1024);
    log::verbose("leak proof: PID {}, {} threads, {} tracked blocks, roots:{}", pid, threads.size(),
                 blocks.size(), summary);
  }

  ProcessMemory memory(pid);
  memory.set_mappings(mappings);
  memory.set_budget(options.max_bytes, started + options.max_pause, options.max_pause.count() > 0);
  scan::ReachabilityMarker marker(index, memory);
  // Stacks inside tracked blocks first: the stack pointer register must not queue the whole block.
  for (const scan::RootRegion& region : regions) {
    if (region.stack_block == scan::BlockIndex::npos) continue;
    marker.mark_reached_without_scanning(region.stack_block);
    marker.add_root_range(region.range);
  }
  for (const ThreadRegisters& thread : threads)
    for (uint64_t word : thread.words) marker.add_root_word(word);
  for (const MemoryRange& range : roots) marker.add_root_range(range);
  marker.run();

  if (memory.gone()) return Error{fmt::format("PID {} exited during the leak scan", pid)};
  if (!memory.over_budget().empty())
    return Error{fmt::format("leak scan of PID {} stopped: {} (the process was resumed; no verdicts)", pid,
                             memory.over_budget())};
  log::verbose("leak proof: {} KiB not read (unreadable or never-touched pages)", memory.bytes_skipped() / 1024);

  ScanReport report;
  report.verdicts = marker.verdicts(blocks.size());
  report.bytes_scanned = marker.bytes_scanned();
  report.threads = threads.size();
  return report;
}

double milliseconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

Result<ScanReport> scan_process(pid_t pid, const std::vector<TrackedBlock>& blocks,
                                const ScanOptions& options) {
  return scan_process_reading_blocks(pid, [&] { return blocks; }, options);
}

Result<ScanReport> scan_process_reading_blocks(pid_t pid, const BlockReader& read_blocks,
                                               const ScanOptions& options) {
  Result<ProcessStopper> stopper = ProcessStopper::stop(pid, options.max_stop_wait);
  if (!stopper) return stopper.error();
  std::vector<ThreadRegisters> threads;
  for (pid_t tid : stopper->threads()) {
    Result<ThreadRegisters> registers = read_thread_registers(tid);
    if (registers) {
      threads.push_back(std::move(*registers));
    } else if (errno != ESRCH) {
      return registers.error();  // the stopper resumes the process
    }
    // ESRCH: SIGKILLed while stopped; nothing of it is left to scan.
  }
  if (threads.empty()) return Error{fmt::format("PID {} exited during the leak scan", pid)};
  // Every thread is stopped: no allocation or free can happen while the blocks are read.
  std::vector<TrackedBlock> blocks = read_blocks();
  Result<ScanReport> report = scan_threads(pid, threads, blocks, options, stopper->first_interrupt());
  stopper->resume();
  if (report) report->pause_ms = milliseconds_since(stopper->first_interrupt());
  return report;
}

Result<ScanReport> scan_stopped_process(pid_t pid, const std::vector<pid_t>& stopped_tids,
                                        const std::vector<TrackedBlock>& blocks, const ScanOptions& options) {
  auto start = std::chrono::steady_clock::now();
  std::vector<ThreadRegisters> threads;
  for (pid_t tid : stopped_tids) {
    Result<ThreadRegisters> registers = read_thread_registers(tid);
    if (registers) {
      threads.push_back(std::move(*registers));
    } else if (errno != ESRCH) {
      return registers.error();
    }
    // ESRCH: a thread exit_group() already took down; it has no frames left to scan.
  }
  if (threads.empty()) return Error{fmt::format("no stopped thread of PID {} to scan", pid)};
  Result<ScanReport> report = scan_threads(pid, threads, blocks, options, start);
  if (report) report->pause_ms = milliseconds_since(start);
  return report;
}

}  // namespace memscope::memleak
