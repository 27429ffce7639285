#include "tools/memleak/scan_marking.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <span>
#include <vector>

#include "tools/memleak/heap_scanner.hpp"

namespace memscope::memleak::scan {

BlockIndex::BlockIndex(const std::vector<TrackedBlock>& blocks) {
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
      limits_.push_back({end, glibc_next_chunk(block.address, size, end)});
    } else {
      limits_.back().end = std::max(limits_.back().end, end);
    }
    slot_of_entry_[entry] = static_cast<uint32_t>(starts_.size() - 1);
  }
  if (!starts_.empty()) {
    lowest_ = starts_.front();
    for (const Limit& limit : limits_) highest_end_ = std::max(highest_end_, limit.end);
  }
  build_granule_table();
}

size_t BlockIndex::find(uint64_t value) const {
  if (!within_bounds(value)) return npos;
  size_t slot = search(value, granule_of(value >> kGranuleShift));
  return slot == npos ? npos : confirm(value, slot);
}

size_t BlockIndex::search(uint64_t value, const void* granule_handle) const {
  const Granule* granule = static_cast<const Granule*>(granule_handle);
  if (granule == nullptr) return npos;
  const uint64_t* base = starts_.data() + granule->first_slot;
  size_t length = granule->end_slot - granule->first_slot;
  if (*base > value) return npos;
  while (length > 1) {
    size_t half = length / 2;
    base = base[half] <= value ? base + half : base;
    length -= half;
  }
  return static_cast<size_t>(base - starts_.data());
}

size_t BlockIndex::confirm(uint64_t value, size_t slot) const {
  const Limit& limit = limits_[slot];
  return value < limit.end && value != limit.next_chunk ? slot : npos;
}

const void* BlockIndex::granule(uint64_t value) const {
  const Granule* found = granule_of(value >> kGranuleShift);
  if (found != nullptr) __builtin_prefetch(starts_.data() + (found->first_slot + found->end_slot) / 2);
  return found;
}

size_t BlockIndex::find_containing(uint64_t address) const {
  auto after = std::upper_bound(starts_.begin(), starts_.end(), address);
  if (after == starts_.begin()) return npos;
  size_t slot = static_cast<size_t>(after - starts_.begin()) - 1;
  return address < limits_[slot].end ? slot : npos;
}

bool BlockIndex::overlaps(uint64_t start, uint64_t end) const {
  auto after = std::upper_bound(starts_.begin(), starts_.end(), start);
  if (after != starts_.end() && *after < end) return true;
  return after != starts_.begin() && limits_[static_cast<size_t>(after - starts_.begin()) - 1].end > start;
}

void BlockIndex::subtract_blocks(MemoryRange range, std::vector<MemoryRange>& out) const {
  uint64_t cursor = range.start;
  auto it = std::upper_bound(starts_.begin(), starts_.end(), range.start);
  if (it != starts_.begin()) --it;
  for (; it != starts_.end() && *it < range.end; ++it) {
    size_t slot = static_cast<size_t>(it - starts_.begin());
    if (limits_[slot].end <= cursor) continue;
    if (starts_[slot] > cursor) out.push_back({cursor, starts_[slot]});
    cursor = std::max(cursor, limits_[slot].end);
    if (cursor >= range.end) return;
  }
  if (cursor < range.end) out.push_back({cursor, range.end});
}

void BlockIndex::build_granule_table() {
  size_t granules = 0;
  for (size_t slot = 0; slot < starts_.size(); ++slot)
    granules += ((limits_[slot].end - 1) >> kGranuleShift) - (starts_[slot] >> kGranuleShift) + 1;
  size_t capacity = 16;
  while (capacity < granules * 2) capacity *= 2;
  table_.assign(capacity, Granule{});
  mask_ = capacity - 1;
  for (size_t slot = 0; slot < starts_.size(); ++slot) {
    for (uint64_t g = starts_[slot] >> kGranuleShift; g <= (limits_[slot].end - 1) >> kGranuleShift; ++g) {
      Granule& entry = probe(g);
      if (entry.key == 0) {
        entry.key = g + 1;
        entry.first_slot = static_cast<uint32_t>(slot);
      }
      entry.end_slot = static_cast<uint32_t>(slot + 1);
    }
  }
}

uint64_t BlockIndex::glibc_next_chunk(uint64_t address, uint64_t size, uint64_t end) {
  if (address < 16 || size > (1ULL << 62)) return 0;
  uint64_t chunk_size = std::max<uint64_t>((size + 8 + 15) & ~uint64_t{15}, 32);
  uint64_t next = address - 16 + chunk_size;
  return next < end ? next : 0;
}

BlockIndex::Granule& BlockIndex::probe(uint64_t granule) {
  size_t i = hash(granule) & mask_;
  while (table_[i].key != 0 && table_[i].key != granule + 1) i = (i + 1) & mask_;
  return table_[i];
}

const BlockIndex::Granule* BlockIndex::granule_of(uint64_t granule) const {
  size_t i = hash(granule) & mask_;
  while (true) {
    const Granule& entry = table_[i];
    if (entry.key == granule + 1) return &entry;
    if (entry.key == 0) return nullptr;
    i = (i + 1) & mask_;
  }
}

void ReachabilityMarker::run() {
  flush();
  std::vector<size_t> round;
  while (!worklist_.empty()) {
    round.swap(worklist_);
    worklist_.clear();
    std::sort(round.begin(), round.end());  // slots are in address order
    for (size_t slot : round) queue(index_.slot_range(slot), /*coalesce=*/true);
    flush();
  }
}

void ReachabilityMarker::scan(uint64_t address, const uint8_t* data, size_t bytes) {
  size_t offset = static_cast<size_t>((8 - (address & 7)) & 7);
  for (; offset + sizeof(uint64_t) <= bytes; offset += sizeof(uint64_t)) {
    uint64_t word;
    std::memcpy(&word, data + offset, sizeof word);
    if (!index_.within_bounds(word)) continue;
    index_.prefetch(word);
    window_[window_size_++] = word;
    if (window_size_ == kWindow) visit_window();
  }
  visit_window();
}

std::vector<BlockVerdict> ReachabilityMarker::verdicts(size_t entries) const {
  std::vector<BlockVerdict> result(entries, BlockVerdict::Leaked);
  for (size_t entry = 0; entry < entries; ++entry)
    if (marked_[index_.slot_of_entry(entry)]) result[entry] = BlockVerdict::Reachable;
  return result;
}

void ReachabilityMarker::visit_window() {
  const void* granules[kWindow];
  size_t slots[kWindow];
  for (size_t i = 0; i < window_size_; ++i) granules[i] = index_.granule(window_[i]);
  for (size_t i = 0; i < window_size_; ++i) {
    slots[i] = index_.search(window_[i], granules[i]);
    if (slots[i] != BlockIndex::npos) index_.prefetch_limit(slots[i]);
  }
  for (size_t i = 0; i < window_size_; ++i) {
    size_t slot = slots[i] == BlockIndex::npos ? slots[i] : index_.confirm(window_[i], slots[i]);
    if (slot != BlockIndex::npos && !marked_[slot]) {
      marked_[slot] = 1;
      worklist_.push_back(slot);
    }
  }
  window_size_ = 0;
}

void ReachabilityMarker::visit(uint64_t value) {
  size_t slot = index_.find(value);
  if (slot != BlockIndex::npos && !marked_[slot]) {
    marked_[slot] = 1;
    worklist_.push_back(slot);
  }
}

void ReachabilityMarker::queue(MemoryRange range, bool coalesce) {
  if (coalesce && !reads_.empty() && reads_.back().range.end <= range.start &&
      range.start - reads_.back().range.end <= kCoalesceGap &&
      range.end - reads_.back().range.start <= kBatchBytes && coalescing_) {
    Read& last = reads_.back();
    pending_bytes_ += range.end - last.range.end;
    last.range.end = range.end;
    pieces_.push_back(range);
    ++last.pieces;
    if (pending_bytes_ >= kBatchBytes) flush();
    return;
  }
  while (range.start < range.end) {
    uint64_t piece = std::min(range.size(), kBatchBytes);
    MemoryRange part{range.start, range.start + piece};
    reads_.push_back({part, pieces_.size(), 1});
    pieces_.push_back(part);
    pending_bytes_ += piece;
    range.start += piece;
    coalescing_ = coalesce;
    if (reads_.size() == kBatchRanges || pending_bytes_ >= kBatchBytes) flush();
  }
}

void ReachabilityMarker::flush() {
  if (reads_.empty()) return;
  batch_ranges_.clear();
  uint64_t total = 0, wanted = 0;
  for (const Read& read : reads_) {
    batch_ranges_.push_back(read.range);
    total += read.range.size();
  }
  for (const MemoryRange& piece : pieces_) wanted += piece.size();
  buffer_.resize(total);
  uint64_t got = memory_.read(batch_ranges_, buffer_.data());
  bytes_read_ += got;
  // Unreadable bytes are taken to be in the pieces (they are whole pages of a root or block).
  bytes_scanned_ += wanted > total - got ? wanted - (total - got) : 0;
  // Newly reached blocks go on the worklist, not into reads_: this loop must not flush again.
  uint64_t offset = 0;
  for (const Read& read : reads_) {
    for (size_t i = read.first_piece; i < read.first_piece + read.pieces; ++i) {
      const MemoryRange& piece = pieces_[i];
      scan(piece.start, buffer_.data() + offset + (piece.start - read.range.start), piece.size());
    }
    offset += read.range.size();
  }
  reads_.clear();
  pieces_.clear();
  pending_bytes_ = 0;
}

}  // namespace memscope::memleak::scan
