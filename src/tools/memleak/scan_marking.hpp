// The pure part of the leak proof: which tracked blocks are reachable from a set of root words and
// root memory ranges, following references transitively through the blocks themselves.
// Free of ptrace so that the unit tier tests exactly the code the scanner runs, on synthetic memory.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <span>
#include <vector>

#include "tools/memleak/heap_scanner.hpp"

namespace memscope::memleak::scan {

struct MemoryRange {
  uint64_t start = 0;
  uint64_t end = 0;  // exclusive
  uint64_t size() const { return end - start; }
  bool operator==(const MemoryRange&) const = default;
};

// Tracked blocks sorted by address, with a lookup from any word to the block it points into.
// Blocks sharing an address (a stale entry whose free was missed, then the address reused) form one
// slot whose extent is the largest of them; all of them get the slot's verdict. Blocks are expected
// to be disjoint otherwise (live allocations are); with a stale overlapping entry, a word resolves to
// the block starting closest below it.
class BlockIndex {
 public:
  static constexpr size_t npos = std::numeric_limits<size_t>::max();

  explicit BlockIndex(const std::vector<TrackedBlock>& blocks);

  size_t slot_count() const { return starts_.size(); }
  MemoryRange slot_range(size_t slot) const { return {starts_[slot], limits_[slot].end}; }
  size_t slot_of_entry(size_t entry) const { return slot_of_entry_[entry]; }

  // The slot whose [start, end) holds value, or npos. This runs once per scanned word: most words
  // are rejected by the bounds check or by one probe of a small hash table of 64 KiB granules; the
  // rest binary-search (without branches: the outcome is random) the few slots of one granule.
  // scan() runs the same three steps (granule, search, confirm) over a window of words at a time,
  // prefetching between steps so that the cache misses of different words overlap.
  size_t find(uint64_t value) const;

  // The last slot of the granule starting at or below value (npos if none): a candidate.
  size_t search(uint64_t value, const void* granule_handle) const;

  size_t confirm(uint64_t value, size_t slot) const;

  const void* granule(uint64_t value) const;
  void prefetch_limit(size_t slot) const { __builtin_prefetch(&limits_[slot]); }

  // Cheap first filter and a hint: scan() prefetches the hash entries of a window of candidate
  // words before looking any of them up, so that their cache misses overlap.
  bool within_bounds(uint64_t value) const { return value >= lowest_ && value < highest_end_; }
  void prefetch(uint64_t value) const { __builtin_prefetch(&table_[hash(value >> kGranuleShift) & mask_]); }

  // The slot whose [start, end) holds address, with no exception for glibc chunk headers.
  size_t find_containing(uint64_t address) const;

  // True when some tracked block overlaps [start, end).
  bool overlaps(uint64_t start, uint64_t end) const;

  // [start, end) minus every tracked block: tracked blocks are scanned only once reached.
  void subtract_blocks(MemoryRange range, std::vector<MemoryRange>& out) const;

 private:
  static constexpr unsigned kGranuleShift = 16;
  struct Granule {
    uint64_t key = 0;  // granule number + 1; 0 = empty
    uint32_t first_slot = 0;
    uint32_t end_slot = 0;
  };

  void build_granule_table();

  // glibc malloc keeps a 16-byte header before each chunk's user memory and rounds chunk sizes up to
  // 16 (at least 32), so the header of the next chunk (address - 16 + chunk size) falls inside the
  // last 8 bytes of a block whose size is 1..8 modulo 16. glibc's own bookkeeping points at chunk
  // headers: the top chunk, the last remainder, and the fd/bk links of free chunks in the unsorted,
  // small and large bins (main_arena is in libc's .data, a root). That one value is not a reference
  // to the block, else a block followed by a free chunk would always look reachable. Any other
  // interior pointer still counts; with allocators without inline headers this only ignores a
  // pointer to that exact byte.
  static uint64_t glibc_next_chunk(uint64_t address, uint64_t size, uint64_t end);

  static size_t hash(uint64_t granule) { return static_cast<size_t>(granule * 0x9E3779B97F4A7C15ULL >> 20); }

  Granule& probe(uint64_t granule);

  const Granule* granule_of(uint64_t granule) const;

  std::vector<uint32_t> order_;          // entries sorted by address
  std::vector<uint32_t> slot_of_entry_;  // entry (input index) -> slot
  struct Limit {
    uint64_t end;
    uint64_t next_chunk;  // glibc's next chunk header when inside the block, else 0
  };
  std::vector<uint64_t> starts_;  // per slot, sorted
  std::vector<Limit> limits_;     // per slot
  uint64_t lowest_ = 0, highest_end_ = 0;
  std::vector<Granule> table_;
  size_t mask_ = 0;
};

// Another process's memory, read in batches.
class RemoteMemory {
 public:
  virtual ~RemoteMemory() = default;
  // Reads `ranges` back to back into `out` (sized to their total length). Bytes that cannot be read
  // are zero-filled: zero is never a reference. Returns the number of bytes actually read.
  virtual uint64_t read(std::span<const MemoryRange> ranges, uint8_t* out) = 0;
};

// Marks slots reached from root words and root memory, transitively, with an explicit worklist.
//
// Reading is what costs: process_vm_readv pays about a microsecond per range, as much as copying a
// few KiB. So reads are batched (up to kBatchRanges ranges, about kBatchBytes bytes per call), and
// each round takes the whole worklist in address order and reads blocks that lie close together
// (gaps up to kCoalesceGap) as one range, scanning only the blocks' own bytes in it: on a heap whose
// blocks are mostly reachable this reads it nearly sequentially.
class ReachabilityMarker {
 public:
  static constexpr size_t kBatchRanges = 1024;  // process_vm_readv takes at most IOV_MAX iovecs
  static constexpr uint64_t kBatchBytes = 4ULL << 20;
  static constexpr uint64_t kCoalesceGap = 4096;

  ReachabilityMarker(const BlockIndex& index, RemoteMemory& memory)
      : index_(index), memory_(memory), marked_(index.slot_count(), 0) {}

  // A root held outside memory (a register).
  void add_root_word(uint64_t value) { visit(value); }

  // A block known to be reachable whose contents are scanned in part only, through add_root_range
  // (a thread stack inside a tracked block: the part below the stack pointer is dead).
  void mark_reached_without_scanning(size_t slot) { marked_[slot] = 1; }

  // Root memory; read lazily in batches by run().
  void add_root_range(MemoryRange range) { queue(range, /*coalesce=*/false); }

  // Scans every queued root range, then every block reached, until nothing new is reached.
  void run();

  // The aligned words of memory at `address` (its contents in data[0, bytes)). Words are taken at
  // 8-byte-aligned target addresses, as the ABI aligns pointers; an unaligned word is not a reference.
  void scan(uint64_t address, const uint8_t* data, size_t bytes);

  bool marked(size_t slot) const { return marked_[slot] != 0; }
  // Bytes of roots and reached blocks scanned (unreadable bytes excluded; the gaps read along to save
  // system calls are not counted).
  uint64_t bytes_scanned() const { return bytes_scanned_; }
  // Bytes copied from the target, gaps included.
  uint64_t bytes_read() const { return bytes_read_; }

  std::vector<BlockVerdict> verdicts(size_t entries) const;

 private:
  // One range read from the target, and the pieces of it to scan.
  struct Read {
    MemoryRange range;
    size_t first_piece;
    size_t pieces;
  };

  // The words of the window in three passes, each prefetching what the next one reads.
  void visit_window();

  void visit(uint64_t value);

  void queue(MemoryRange range, bool coalesce);

  void flush();

  const BlockIndex& index_;
  RemoteMemory& memory_;
  std::vector<uint8_t> marked_;
  std::vector<size_t> worklist_;
  std::vector<Read> reads_;
  std::vector<MemoryRange> pieces_;
  std::vector<MemoryRange> batch_ranges_;
  uint64_t pending_bytes_ = 0;
  bool coalescing_ = false;  // the last read holds blocks (roots are never extended over a gap)
  std::vector<uint8_t> buffer_;
  uint64_t bytes_scanned_ = 0;
  uint64_t bytes_read_ = 0;
  static constexpr size_t kWindow = 16;
  uint64_t window_[kWindow];
  size_t window_size_ = 0;
};

}  // namespace memscope::memleak::scan
