// The pure part of the leak proof: which tracked blocks are reachable from a set of root words and
// root memory ranges, following references transitively through the blocks themselves.
// Header-only and free of ptrace so that the unit tier tests exactly the code the scanner runs, on
// synthetic memory.
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

  explicit BlockIndex(const std::vector<TrackedBlock>& blocks) {
    order_.resize(blocks.size());
    std::iota(order_.begin(), order_.end(), 0u);
    std::sort(order_.begin(), order_.end(), [&](uint32_t a, uint32_t b) {
      return blocks[a].address != blocks[b].address ? blocks[a].address < blocks[b].address
                                                     : blocks[a].size > blocks[b].size;
    });
    slot_of_entry_.resize(blocks.size());
    for (uint32_t entry : order_) {
      const TrackedBlock& block = blocks[entry];
      // malloc(0) returns a unique pointer: a reference to it is a word equal to its address.
      uint64_t size = std::max<uint64_t>(block.size, 1);
      uint64_t end = block.address > std::numeric_limits<uint64_t>::max() - size
                         ? std::numeric_limits<uint64_t>::max()
                         : block.address + size;
      if (starts_.empty() || starts_.back() != block.address) {
        starts_.push_back(block.address);
        ends_.push_back(end);
        next_chunk_.push_back(glibc_next_chunk(block.address, size, end));
      } else {
        ends_.back() = std::max(ends_.back(), end);
      }
      slot_of_entry_[entry] = static_cast<uint32_t>(starts_.size() - 1);
    }
    if (!starts_.empty()) {
      lowest_ = starts_.front();
      highest_end_ = *std::max_element(ends_.begin(), ends_.end());
    }
    build_granule_table();
  }

  size_t slot_count() const { return starts_.size(); }
  MemoryRange slot_range(size_t slot) const { return {starts_[slot], ends_[slot]}; }
  size_t slot_of_entry(size_t entry) const { return slot_of_entry_[entry]; }

  // The slot whose [start, end) holds value, or npos. This runs once per scanned word: most words
  // are rejected by the bounds check or by one probe of a small hash table of 1 MiB granules; the
  // rest binary-search only the slots of one granule.
  size_t find(uint64_t value) const {
    if (value < lowest_ || value >= highest_end_) return npos;
    const Granule* granule = granule_of(value >> kGranuleShift);
    if (granule == nullptr) return npos;
    auto first = starts_.begin() + granule->first_slot;
    auto last = starts_.begin() + granule->end_slot;
    auto after = std::upper_bound(first, last, value);
    if (after == first) return npos;
    size_t slot = static_cast<size_t>(after - starts_.begin()) - 1;
    return value < ends_[slot] && value != next_chunk_[slot] ? slot : npos;
  }

  // True when some tracked block overlaps [start, end).
  bool overlaps(uint64_t start, uint64_t end) const {
    auto after = std::upper_bound(starts_.begin(), starts_.end(), start);
    if (after != starts_.end() && *after < end) return true;
    return after != starts_.begin() && ends_[static_cast<size_t>(after - starts_.begin()) - 1] > start;
  }

  // [start, end) minus every tracked block: tracked blocks are scanned only once reached.
  void subtract_blocks(MemoryRange range, std::vector<MemoryRange>& out) const {
    uint64_t cursor = range.start;
    auto it = std::upper_bound(starts_.begin(), starts_.end(), range.start);
    if (it != starts_.begin()) --it;
    for (; it != starts_.end() && *it < range.end; ++it) {
      size_t slot = static_cast<size_t>(it - starts_.begin());
      if (ends_[slot] <= cursor) continue;
      if (starts_[slot] > cursor) out.push_back({cursor, starts_[slot]});
      cursor = std::max(cursor, ends_[slot]);
      if (cursor >= range.end) return;
    }
    if (cursor < range.end) out.push_back({cursor, range.end});
  }

 private:
  static constexpr unsigned kGranuleShift = 20;
  struct Granule {
    uint64_t key = 0;  // granule number + 1; 0 = empty
    uint32_t first_slot = 0;
    uint32_t end_slot = 0;
  };

  void build_granule_table() {
    size_t granules = 0;
    for (size_t slot = 0; slot < starts_.size(); ++slot)
      granules += ((ends_[slot] - 1) >> kGranuleShift) - (starts_[slot] >> kGranuleShift) + 1;
    size_t capacity = 16;
    while (capacity < granules * 2) capacity *= 2;
    table_.assign(capacity, Granule{});
    mask_ = capacity - 1;
    for (size_t slot = 0; slot < starts_.size(); ++slot) {
      for (uint64_t g = starts_[slot] >> kGranuleShift; g <= (ends_[slot] - 1) >> kGranuleShift; ++g) {
        Granule& entry = probe(g);
        if (entry.key == 0) {
          entry.key = g + 1;
          entry.first_slot = static_cast<uint32_t>(slot);
        }
        entry.end_slot = static_cast<uint32_t>(slot + 1);
      }
    }
  }

  // glibc malloc keeps a 16-byte header before each chunk's user memory and rounds chunk sizes up to
  // 16 (at least 32), so the header of the next chunk (address - 16 + chunk size) falls inside the
  // last 8 bytes of a block whose size is 1..8 modulo 16. glibc's own bookkeeping points at chunk
  // headers: the top chunk, the last remainder, and the fd/bk links of free chunks in the unsorted,
  // small and large bins (main_arena is in libc's .data, a root). That one value is not a reference
  // to the block, else a block followed by a free chunk would always look reachable. Any other
  // interior pointer still counts; with allocators without inline headers this only ignores a
  // pointer to that exact byte.
  static uint64_t glibc_next_chunk(uint64_t address, uint64_t size, uint64_t end) {
    if (address < 16 || size > (1ULL << 62)) return 0;
    uint64_t chunk_size = std::max<uint64_t>((size + 8 + 15) & ~uint64_t{15}, 32);
    uint64_t next = address - 16 + chunk_size;
    return next < end ? next : 0;
  }

  static size_t hash(uint64_t granule) { return static_cast<size_t>(granule * 0x9E3779B97F4A7C15ULL >> 20); }

  Granule& probe(uint64_t granule) {
    size_t i = hash(granule) & mask_;
    while (table_[i].key != 0 && table_[i].key != granule + 1) i = (i + 1) & mask_;
    return table_[i];
  }

  const Granule* granule_of(uint64_t granule) const {
    size_t i = hash(granule) & mask_;
    while (true) {
      const Granule& entry = table_[i];
      if (entry.key == granule + 1) return &entry;
      if (entry.key == 0) return nullptr;
      i = (i + 1) & mask_;
    }
  }

  std::vector<uint32_t> order_;          // entries sorted by address
  std::vector<uint32_t> slot_of_entry_;  // entry (input index) -> slot
  std::vector<uint64_t> starts_, ends_;  // per slot, sorted by start
  std::vector<uint64_t> next_chunk_;     // per slot: glibc's next chunk header inside it, or 0
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
class ReachabilityMarker {
 public:
  // Reads are batched into up to kBatchRanges ranges (process_vm_readv takes 1024 iovecs) and about
  // kBatchBytes bytes; a range larger than that is read in pieces.
  static constexpr size_t kBatchRanges = 1024;
  static constexpr uint64_t kBatchBytes = 4ULL << 20;

  ReachabilityMarker(const BlockIndex& index, RemoteMemory& memory)
      : index_(index), memory_(memory), marked_(index.slot_count(), 0) {}

  // A root held outside memory (a register).
  void add_root_word(uint64_t value) { visit(value); }

  // Root memory; read lazily in batches by run().
  void add_root_range(MemoryRange range) {
    if (range.end > range.start) queue(range);
  }

  // Scans every queued root range, then every block reached, until nothing new is reached.
  void run() {
    flush();
    while (!worklist_.empty()) {
      while (!worklist_.empty()) {
        size_t slot = worklist_.back();
        worklist_.pop_back();
        queue(index_.slot_range(slot));
      }
      flush();
    }
  }

  // The aligned words of memory at `address` (its contents in data[0, bytes)). Words are taken at
  // 8-byte-aligned target addresses, as the ABI aligns pointers; an unaligned word is not a reference.
  void scan(uint64_t address, const uint8_t* data, size_t bytes) {
    size_t offset = static_cast<size_t>((8 - (address & 7)) & 7);
    for (; offset + sizeof(uint64_t) <= bytes; offset += sizeof(uint64_t)) {
      uint64_t word;
      std::memcpy(&word, data + offset, sizeof word);
      visit(word);
    }
  }

  bool marked(size_t slot) const { return marked_[slot] != 0; }
  uint64_t bytes_scanned() const { return bytes_scanned_; }

  std::vector<BlockVerdict> verdicts(size_t entries) const {
    std::vector<BlockVerdict> result(entries, BlockVerdict::Leaked);
    for (size_t entry = 0; entry < entries; ++entry)
      if (marked_[index_.slot_of_entry(entry)]) result[entry] = BlockVerdict::Reachable;
    return result;
  }

 private:
  void visit(uint64_t value) {
    size_t slot = index_.find(value);
    if (slot != BlockIndex::npos && !marked_[slot]) {
      marked_[slot] = 1;
      worklist_.push_back(slot);
    }
  }

  void queue(MemoryRange range) {
    while (range.start < range.end) {
      uint64_t piece = std::min(range.size(), kBatchBytes);
      pending_.push_back({range.start, range.start + piece});
      pending_bytes_ += piece;
      range.start += piece;
      if (pending_.size() == kBatchRanges || pending_bytes_ >= kBatchBytes) flush();
    }
  }

  void flush() {
    if (pending_.empty()) return;
    std::vector<MemoryRange> batch;
    batch.swap(pending_);
    pending_bytes_ = 0;
    uint64_t total = 0;
    for (const MemoryRange& range : batch) total += range.size();
    buffer_.resize(total);
    bytes_scanned_ += memory_.read(batch, buffer_.data());
    // Newly reached blocks go on the worklist, not straight into pending_: scanning the batch must not
    // trigger a nested flush that would overwrite buffer_.
    uint64_t offset = 0;
    for (const MemoryRange& range : batch) {
      scan(range.start, buffer_.data() + offset, range.size());
      offset += range.size();
    }
  }

  const BlockIndex& index_;
  RemoteMemory& memory_;
  std::vector<uint8_t> marked_;
  std::vector<size_t> worklist_;
  std::vector<MemoryRange> pending_;
  uint64_t pending_bytes_ = 0;
  std::vector<uint8_t> buffer_;
  uint64_t bytes_scanned_ = 0;
};

}  // namespace memscope::memleak::scan
