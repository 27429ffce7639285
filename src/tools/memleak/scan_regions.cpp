#include "tools/memleak/scan_regions.hpp"

#include <sys/types.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tools/memleak/heap_scanner.hpp"
#include "tools/memleak/scan_marking.hpp"

namespace memscope::memleak::scan {

std::vector<Mapping> parse_maps(std::string_view text) {
  std::vector<Mapping> mappings;
  auto hex = [](std::string_view& rest, char stop, uint64_t& value) {
    auto [next, error] = std::from_chars(rest.data(), rest.data() + rest.size(), value, 16);
    if (error != std::errc() || next == rest.data() + rest.size() || *next != stop) return false;
    rest.remove_prefix(static_cast<size_t>(next - rest.data()) + 1);
    return true;
  };
  auto field = [](std::string_view& rest) {
    size_t begin = rest.find_first_not_of(' ');
    if (begin == std::string_view::npos) begin = rest.size();
    rest.remove_prefix(begin);
    size_t end = std::min(rest.find(' '), rest.size());
    std::string_view value = rest.substr(0, end);
    rest.remove_prefix(end);
    return value;
  };
  while (!text.empty()) {
    size_t newline = std::min(text.find('\n'), text.size());
    std::string_view line = text.substr(0, newline);
    text.remove_prefix(std::min(newline + 1, text.size()));
    Mapping mapping;
    if (!hex(line, '-', mapping.start) || !hex(line, ' ', mapping.end)) continue;
    std::string_view perms = field(line);
    if (perms.size() < 4) continue;
    mapping.readable = perms[0] == 'r';
    mapping.writable = perms[1] == 'w';
    mapping.shared = perms[3] == 's';
    field(line);  // offset
    field(line);  // device
    std::string_view inode = field(line);
    std::from_chars(inode.data(), inode.data() + inode.size(), mapping.inode);
    size_t path_begin = line.find_first_not_of(' ');
    if (path_begin != std::string_view::npos) {
      std::string_view path = line.substr(path_begin);
      constexpr std::string_view kDeleted = " (deleted)";
      if (path.ends_with(kDeleted)) {
        path.remove_suffix(kDeleted.size());
        mapping.deleted = true;
      }
      mapping.path = std::string(path);
    }
    mappings.push_back(std::move(mapping));
  }
  return mappings;
}

const char* root_kind_name(RootKind kind) {
  switch (kind) {
    case RootKind::Stack:
      return "stack";
    case RootKind::ThreadLocal:
      return "tls";
    case RootKind::Data:
      return "data";
    case RootKind::Bss:
      return "bss";
    case RootKind::ForeignAnonymous:
      return "foreign-anonymous";
    case RootKind::UntrackedHeap:
      return "untracked-heap";
  }
  return "?";
}

std::vector<RootRegion> classify_roots(const std::vector<Mapping>& mappings,
                                       const std::vector<ThreadPointers>& threads, const BlockIndex& blocks,
                                       const ScanOptions& options) {
  std::vector<RootRegion> roots;
  std::vector<bool> is_thread_stack(mappings.size(), false);
  auto mapping_of = [&](uint64_t address) -> ptrdiff_t {
    auto it = std::upper_bound(mappings.begin(), mappings.end(), address,
                               [](uint64_t value, const Mapping& m) { return value < m.start; });
    if (it == mappings.begin() || !(it - 1)->contains(address)) return -1;
    return (it - 1) - mappings.begin();
  };
  auto heap_like = [&](const Mapping& m) { return m.malloc_heap() || blocks.overlaps(m.start, m.end); };

  // Stacks: from the stack pointer up, so that dead frames below it do not keep blocks alive.
  for (const ThreadPointers& thread : threads) {
    ptrdiff_t index = mapping_of(thread.stack_pointer);
    if (index < 0) continue;
    const Mapping& m = mappings[static_cast<size_t>(index)];
    is_thread_stack[static_cast<size_t>(index)] = true;
    uint64_t begin = std::max(m.start, thread.stack_pointer > kRedZone ? thread.stack_pointer - kRedZone : 0);
    size_t block = blocks.find_containing(thread.stack_pointer);
    if (block != BlockIndex::npos) {
      // A tracked mmap'd pthread stack, or pthread_attr_setstack on malloc'd memory.
      MemoryRange extent = blocks.slot_range(block);
      roots.push_back({{std::max(begin, extent.start), std::min(extent.end, m.end)}, RootKind::Stack, block});
      continue;
    }
    uint64_t end = heap_like(m) ? std::min(m.end, thread.stack_pointer + kHeapStackLimit) : m.end;
    roots.push_back({{begin, end}, RootKind::Stack});
  }

  // TLS: glibc keeps a non-main thread's static TLS and TCB at the top of its stack mapping (covered
  // above); the main thread's live in memory ld.so allocated at startup.
  for (const ThreadPointers& thread : threads) {
    if (thread.thread_pointer == 0) continue;
    ptrdiff_t index = mapping_of(thread.thread_pointer);
    if (index < 0 || is_thread_stack[static_cast<size_t>(index)]) continue;
    const Mapping& m = mappings[static_cast<size_t>(index)];
    if (!m.readable) continue;
    if (heap_like(m)) {
      uint64_t tp = thread.thread_pointer;
      roots.push_back({{std::max(m.start, tp > kStaticTlsWindowBelow ? tp - kStaticTlsWindowBelow : 0),
                        std::min(m.end, tp + kTcbWindowAbove)},
                       RootKind::ThreadLocal});
    } else {
      roots.push_back({{m.start, m.end}, RootKind::ThreadLocal});
    }
  }

  for (size_t i = 0; i < mappings.size(); ++i) {
    const Mapping& m = mappings[i];
    if (!m.readable || !m.writable || is_thread_stack[i]) continue;
    if (m.path == "[stack]") {
      // The main thread's stack holds no thread's stack pointer (it runs on a sigaltstack, or it is
      // a zombie leader): scan all of it rather than lose its frames.
      roots.push_back({{m.start, m.end}, RootKind::Stack});
      continue;
    }
    if (m.file_backed()) {
      // .data, and a writable private file mapping in general. Shared writable file mappings
      // (databases' mmap'd files) hold no pointers into this process and may be huge: skipped.
      if (!m.shared) roots.push_back({{m.start, m.end}, RootKind::Data});
      continue;
    }
    if (!m.anonymous() && !m.malloc_heap()) continue;  // [vvar], [vdso], …
    // .bss: the anonymous mapping ld.so (or the kernel, for the executable) places right after a
    // file's writable segment.
    bool follows_file_data = i > 0 && mappings[i - 1].end == m.start && mappings[i - 1].file_backed() &&
                             mappings[i - 1].writable && m.path.empty() && !m.shared;
    if (follows_file_data) {
      roots.push_back({{m.start, m.end}, RootKind::Bss});
    } else if (options.roots_include_untracked_heap) {
      roots.push_back({{m.start, m.end}, RootKind::UntrackedHeap});
    } else if (options.roots_include_foreign_anonymous && !m.malloc_heap() &&
               !blocks.overlaps(m.start, m.end)) {
      roots.push_back({{m.start, m.end}, RootKind::ForeignAnonymous});
    }
  }
  return roots;
}

std::vector<MemoryRange> root_ranges(const std::vector<RootRegion>& regions, const BlockIndex& blocks) {
  std::vector<MemoryRange> sorted;
  sorted.reserve(regions.size());
  for (const RootRegion& region : regions)
    if (region.range.end > region.range.start && region.stack_block == BlockIndex::npos)
      sorted.push_back(region.range);
  std::sort(sorted.begin(), sorted.end(),
            [](const MemoryRange& a, const MemoryRange& b) { return a.start < b.start; });
  std::vector<MemoryRange> merged;
  for (const MemoryRange& range : sorted) {
    if (!merged.empty() && range.start <= merged.back().end)
      merged.back().end = std::max(merged.back().end, range.end);
    else
      merged.push_back(range);
  }
  std::vector<MemoryRange> result;
  for (const MemoryRange& range : merged) blocks.subtract_blocks(range, result);
  return result;
}

}  // namespace memscope::memleak::scan
