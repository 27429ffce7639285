// The leak proof's pure parts on synthetic memory: marking from roots through tracked blocks, and the
// choice of root regions from /proc/PID/maps.
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "tools/memleak/scan_marking.hpp"
#include "tools/memleak/scan_regions.hpp"

namespace memscope::memleak::scan {
namespace {

using V = BlockVerdict;

// A sparse address space: segments of bytes at addresses; everything else unreadable (reads as 0).
class FakeMemory : public RemoteMemory {
 public:
  void put_word(uint64_t address, uint64_t value) {
    std::vector<uint8_t>& bytes = segment_for(address, 8);
    std::memcpy(bytes.data() + (address - segment_start(address)), &value, 8);
  }
  // A readable zeroed segment.
  void map(uint64_t start, uint64_t size) { segments_[start].resize(size); }

  uint64_t read(std::span<const MemoryRange> ranges, uint8_t* out) override {
    uint64_t read_bytes = 0;
    ++calls;
    for (const MemoryRange& range : ranges) {
      std::memset(out, 0, range.size());
      for (const auto& [start, bytes] : segments_) {
        uint64_t end = start + bytes.size();
        uint64_t from = std::max(start, range.start), to = std::min(end, range.end);
        if (from >= to) continue;
        std::memcpy(out + (from - range.start), bytes.data() + (from - start), to - from);
        read_bytes += to - from;
      }
      out += range.size();
    }
    return read_bytes;
  }
  int calls = 0;

 private:
  uint64_t segment_start(uint64_t address) const {
    auto it = segments_.upper_bound(address);
    return std::prev(it)->first;
  }
  std::vector<uint8_t>& segment_for(uint64_t address, uint64_t size) {
    auto it = segments_.upper_bound(address);
    if (it != segments_.begin()) {
      auto& [start, bytes] = *std::prev(it);
      if (address + size <= start + bytes.size()) return bytes;
    }
    ADD_FAILURE() << "write outside mapped memory at " << std::hex << address;
    static std::vector<uint8_t> sink(64);
    return sink;
  }
  std::map<uint64_t, std::vector<uint8_t>> segments_;
};

constexpr uint64_t kRoots = 0x10000;  // a root region, 4 KiB
constexpr uint64_t kHeap = 0x100000;  // blocks live from here

struct Fixture {
  FakeMemory memory;
  std::vector<TrackedBlock> blocks;

  Fixture() {
    memory.map(kRoots, 4096);
    memory.map(kHeap, 1 << 20);
  }
  // Block n at kHeap + n * 0x100, `size` bytes.
  uint64_t block(int n, uint64_t size = 64) {
    uint64_t address = kHeap + static_cast<uint64_t>(n) * 0x100;
    blocks.push_back({address, size});
    return address;
  }
  std::vector<V> mark(std::vector<uint64_t> register_words = {},
                      std::vector<MemoryRange> roots = {{kRoots, kRoots + 4096}}) {
    BlockIndex index(blocks);
    ReachabilityMarker marker(index, memory);
    for (uint64_t word : register_words) marker.add_root_word(word);
    for (const MemoryRange& range : roots) marker.add_root_range(range);
    marker.run();
    bytes_scanned = marker.bytes_scanned();
    return marker.verdicts(blocks.size());
  }
  uint64_t bytes_scanned = 0;
};

TEST(HeapScannerMarking, ChainFromARootIsReachableTheRestLeaked) {
  Fixture f;
  uint64_t a = f.block(0), b = f.block(1), c = f.block(2), d = f.block(3);
  f.memory.put_word(kRoots + 8, a);
  f.memory.put_word(a + 16, b);
  f.memory.put_word(b + 56, c);  // last word of b
  (void)d;
  EXPECT_EQ(f.mark(), (std::vector<V>{V::Reachable, V::Reachable, V::Reachable, V::Leaked}));
  EXPECT_EQ(f.bytes_scanned, 4096u + 3 * 64) << "roots, then each reached block once";
}

TEST(HeapScannerMarking, CycleAndSelfReferenceUnreachableFromRootsAreLeaked) {
  Fixture f;
  uint64_t e = f.block(0), g = f.block(1), self = f.block(2), kept = f.block(3);
  f.memory.put_word(e, g);
  f.memory.put_word(g, e);
  f.memory.put_word(self + 8, self);
  f.memory.put_word(kRoots, kept);
  f.memory.put_word(kept, kept);  // a reachable cycle terminates too
  EXPECT_EQ(f.mark(), (std::vector<V>{V::Leaked, V::Leaked, V::Leaked, V::Reachable}));
}

TEST(HeapScannerMarking, InteriorPointersCountOnePastTheEndDoesNot) {
  Fixture f;
  uint64_t a = f.block(0, 64), b = f.block(1, 64);
  f.memory.put_word(kRoots, a + 40);      // interior
  f.memory.put_word(kRoots + 8, b + 64);  // one past the end of b: not inside
  EXPECT_EQ(f.mark(), (std::vector<V>{V::Reachable, V::Leaked}));
}

TEST(HeapScannerMarking, ReferencesOnlyFromLeakedBlocksAreLeaked) {
  Fixture f;
  uint64_t lost = f.block(0), indirect = f.block(1), kept = f.block(2), from_kept = f.block(3);
  f.memory.put_word(lost, indirect);
  f.memory.put_word(lost + 8, kept);  // a leaked block pointing at a reachable one changes nothing
  f.memory.put_word(kRoots + 16, kept);
  f.memory.put_word(kept + 24, from_kept);
  EXPECT_EQ(f.mark(), (std::vector<V>{V::Leaked, V::Leaked, V::Reachable, V::Reachable}));
}

TEST(HeapScannerMarking, UnalignedWordsAreNotReferences) {
  Fixture f;
  uint64_t a = f.block(0), b = f.block(1);
  // An 8-byte value stored at an address that is not a multiple of 8 (packed struct): ignored, as by
  // LeakSanitizer and valgrind.
  uint64_t aligned_value = 0;
  f.memory.put_word(kRoots + 32, 0);
  f.memory.put_word(kRoots + 40, 0);
  uint8_t bytes[16] = {};
  std::memcpy(bytes + 4, &a, 8);
  uint64_t lo, hi;
  std::memcpy(&lo, bytes, 8);
  std::memcpy(&hi, bytes + 8, 8);
  f.memory.put_word(kRoots + 32, lo);
  f.memory.put_word(kRoots + 40, hi);
  // A root range that starts at an unaligned address: words are aligned to target addresses, so the
  // aligned word at kRoots + 72 is read, starting 4 bytes into the range.
  f.memory.put_word(kRoots + 72, b);
  (void)aligned_value;
  EXPECT_EQ(f.mark({}, {{kRoots, kRoots + 64}, {kRoots + 68, kRoots + 80}}),
            (std::vector<V>{V::Leaked, V::Reachable}));
}

TEST(HeapScannerMarking, GlibcNextChunkHeaderIsNotAReference) {
  Fixture f;
  // 56 bytes: chunk size 64, so the next chunk's header is at a + 48, inside the block. glibc's bins
  // and top pointer hold such addresses; they must not keep the block alive.
  uint64_t a = f.block(0, 56), b = f.block(1, 56), c = f.block(2, 64);
  f.memory.put_word(kRoots, a + 48);
  f.memory.put_word(kRoots + 8, b + 40);   // any other interior pointer counts
  f.memory.put_word(kRoots + 16, c + 56);  // 64 bytes: the next header is past the end, no exception
  EXPECT_EQ(f.mark(), (std::vector<V>{V::Leaked, V::Reachable, V::Reachable}));
}

TEST(HeapScannerMarking, RegistersAreRoots) {
  Fixture f;
  uint64_t a = f.block(0), b = f.block(1);
  f.memory.put_word(a, b);
  EXPECT_EQ(f.mark({0, 42, a + 3}, {}), (std::vector<V>{V::Reachable, V::Reachable}));
}

TEST(HeapScannerMarking, DuplicateAndZeroSizedEntriesShareTheVerdictOfTheirAddress) {
  Fixture f;
  uint64_t a = f.block(0, 64);
  f.blocks.push_back({a, 16});     // the same address tracked twice (a free that was missed)
  uint64_t empty = f.block(1, 0);  // malloc(0)
  uint64_t empty_leaked = f.block(2, 0);
  f.memory.put_word(kRoots, a + 32);  // inside the larger of the two
  f.memory.put_word(kRoots + 8, empty);
  (void)empty_leaked;
  EXPECT_EQ(f.mark(), (std::vector<V>{V::Reachable, V::Reachable, V::Reachable, V::Leaked}));
}

TEST(HeapScannerMarking, LongChainAndLargeBlocksNeedNoRecursionAndBatchReads) {
  FakeMemory memory;
  std::vector<TrackedBlock> blocks;
  constexpr int kChain = 20000;
  constexpr uint64_t kBase = 0x7f0000000000;
  memory.map(kBase, kChain * 32ULL);
  memory.map(kRoots, 4096);
  // Chain in reverse address order, so the walk is as deep as it is long.
  for (int i = 0; i < kChain; ++i) {
    uint64_t address = kBase + (kChain - 1 - i) * 32ULL;
    blocks.push_back({address, 32});
    if (i + 1 < kChain) memory.put_word(address + 24, kBase + (kChain - 2 - i) * 32ULL);
  }
  // A 9 MiB block (read in pieces) whose last word points at a block in another granule.
  constexpr uint64_t kLarge = 0x7e0000000000;
  constexpr uint64_t kLargeSize = 9ULL << 20;
  memory.map(kLarge, kLargeSize);
  blocks.push_back({kLarge, kLargeSize});
  memory.map(0x600000000000, 64);
  blocks.push_back({0x600000000000, 64});
  memory.put_word(kLarge + kLargeSize - 8, 0x600000000000 + 8);
  memory.put_word(kRoots, blocks.front().address);
  memory.put_word(kRoots + 8, kLarge + (5ULL << 20));  // interior, in the 6th granule of the block

  BlockIndex index(blocks);
  ReachabilityMarker marker(index, memory);
  marker.add_root_range({kRoots, kRoots + 4096});
  marker.run();
  std::vector<V> verdicts = marker.verdicts(blocks.size());
  for (int i = 0; i < kChain; ++i) ASSERT_EQ(verdicts[i], V::Reachable) << "chain link " << i;
  EXPECT_EQ(verdicts[kChain], V::Reachable);
  EXPECT_EQ(verdicts[kChain + 1], V::Reachable);
  EXPECT_EQ(marker.bytes_scanned(), 4096 + kChain * 32ULL + kLargeSize + 64);
}

TEST(HeapScannerMarking, BlocksReachedTogetherAreReadTogether) {
  FakeMemory memory;
  std::vector<TrackedBlock> blocks;
  constexpr uint64_t kFanOut = 20000;
  constexpr uint64_t kArray = 0x7d0000000000, kBase = 0x7f0000000000;
  memory.map(kRoots, 4096);
  memory.map(kArray, kFanOut * 8);
  memory.map(kBase, kFanOut * 48);
  blocks.push_back({kArray, kFanOut * 8});
  for (uint64_t i = 0; i < kFanOut; ++i) {
    blocks.push_back({kBase + i * 48, 40});
    memory.put_word(kArray + i * 8, kBase + i * 48);
  }
  memory.put_word(kRoots, kArray);
  BlockIndex index(blocks);
  ReachabilityMarker marker(index, memory);
  marker.add_root_range({kRoots, kRoots + 4096});
  marker.run();
  for (V verdict : marker.verdicts(blocks.size())) ASSERT_EQ(verdict, V::Reachable);
  // Roots, the array, then the 20000 blocks, 8 bytes apart: one read of them all.
  EXPECT_EQ(memory.calls, 3);
  EXPECT_EQ(marker.bytes_scanned(), 4096 + kFanOut * 8 + kFanOut * 40) << "the gaps are read, not scanned";
  EXPECT_EQ(marker.bytes_read(), 4096 + kFanOut * 8 + (kFanOut - 1) * 48 + 40);
}

TEST(HeapScannerMarking, BlocksFarApartAreReadSeparatelyUpToTheIovecLimit) {
  FakeMemory memory;
  std::vector<TrackedBlock> blocks;
  constexpr uint64_t kFanOut = 3000;
  constexpr uint64_t kArray = 0x7d0000000000, kBase = 0x7f0000000000, kStride = 8192;
  memory.map(kRoots, 4096);
  memory.map(kArray, kFanOut * 8);
  blocks.push_back({kArray, kFanOut * 8});
  for (uint64_t i = 0; i < kFanOut; ++i) {
    memory.map(kBase + i * kStride, 64);
    blocks.push_back({kBase + i * kStride, 64});
    memory.put_word(kArray + i * 8, kBase + i * kStride);
  }
  memory.put_word(kRoots, kArray);
  BlockIndex index(blocks);
  ReachabilityMarker marker(index, memory);
  marker.add_root_range({kRoots, kRoots + 4096});
  marker.run();
  for (V verdict : marker.verdicts(blocks.size())) ASSERT_EQ(verdict, V::Reachable);
  EXPECT_EQ(memory.calls, 2 + 3) << "3000 separate ranges, 1024 per call";
}

TEST(HeapScannerMarking, UnreachedBlocksBetweenCoalescedOnesAreNotScanned) {
  Fixture f;
  // Blocks 0 and 2 are reached in the same round and read as one range with block 1 in between;
  // block 1 is leaked and its pointer to block 3 must not count.
  uint64_t first = f.block(0), leaked = f.block(1), second = f.block(2), only_from_leaked = f.block(3);
  f.memory.put_word(kRoots, first);
  f.memory.put_word(kRoots + 8, second);
  f.memory.put_word(leaked, only_from_leaked);
  f.memory.put_word(kHeap + 0x100 - 8, only_from_leaked);  // in the gap after block 0: free memory
  EXPECT_EQ(f.mark(), (std::vector<V>{V::Reachable, V::Leaked, V::Reachable, V::Leaked}));
}

TEST(HeapScannerMarking, UnreadableMemoryReadsAsZeroAndIsNotCounted) {
  Fixture f;
  uint64_t a = f.block(0);
  f.memory.put_word(kRoots, a);
  // 8 KiB of roots of which only the first 4 KiB is mapped.
  EXPECT_EQ(f.mark({}, {{kRoots, kRoots + 8192}}), (std::vector<V>{V::Reachable}));
  EXPECT_EQ(f.bytes_scanned, 4096u + 64);
}

TEST(HeapScannerBlockIndex, FindsContainingBlockAcrossGranules) {
  std::vector<TrackedBlock> blocks = {
      {0x55550000'0010, 0x20},
      {0x55550000'1000, 3ULL << 20},  // spans 4 granules
      {0x7fff0000'0000, 16},
      {0x55550000'0030, 0x10},
  };
  BlockIndex index(blocks);
  auto entry_at = [&](uint64_t value) -> int {
    size_t slot = index.find(value);
    if (slot == BlockIndex::npos) return -1;
    for (size_t entry = 0; entry < blocks.size(); ++entry)
      if (index.slot_of_entry(entry) == slot) return static_cast<int>(entry);
    return -2;
  };
  EXPECT_EQ(entry_at(0x55550000'0010), 0);
  EXPECT_EQ(entry_at(0x55550000'002f), 0);
  EXPECT_EQ(entry_at(0x55550000'0030), 3);
  EXPECT_EQ(entry_at(0x55550000'0040), -1);
  EXPECT_EQ(entry_at(0x55550000'0fff), -1);
  EXPECT_EQ(entry_at(0x55550000'1000 + (2ULL << 20) + 5), 1);
  EXPECT_EQ(entry_at(0x55550000'1000 + (3ULL << 20)), -1);
  EXPECT_EQ(entry_at(0x7fff0000'0008), 2);
  EXPECT_EQ(entry_at(0), -1);
  EXPECT_EQ(entry_at(~0ULL), -1);
  EXPECT_TRUE(index.overlaps(0x55550000'0000, 0x55550000'0011));
  EXPECT_TRUE(index.overlaps(0x55550000'0020, 0x55550000'0021));
  EXPECT_FALSE(index.overlaps(0x55550000'0040, 0x55550000'1000));
}

TEST(HeapScannerBlockIndex, SubtractsTrackedBlocksFromRootRanges) {
  std::vector<TrackedBlock> blocks = {{0x1100, 0x100}, {0x1300, 0x100}, {0x2000, 0x800}};
  BlockIndex index(blocks);
  std::vector<MemoryRange> out;
  index.subtract_blocks({0x1000, 0x2400}, out);
  EXPECT_EQ(out, (std::vector<MemoryRange>{{0x1000, 0x1100}, {0x1200, 0x1300}, {0x1400, 0x2000}}));
  out.clear();
  index.subtract_blocks({0x1180, 0x1380}, out);
  EXPECT_EQ(out, (std::vector<MemoryRange>{{0x1200, 0x1300}}));
}

// A trimmed /proc/PID/maps of a two-thread program.
const char* kMaps =
    "555555554000-555555555000 r--p 00000000 08:01 1234    /usr/bin/prog\n"
    "555555555000-555555556000 r-xp 00001000 08:01 1234    /usr/bin/prog\n"
    "555555557000-555555558000 r--p 00002000 08:01 1234    /usr/bin/prog\n"
    "555555558000-555555559000 rw-p 00003000 08:01 1234    /usr/bin/prog\n"
    "555555559000-55555555a000 rw-p 00000000 00:00 0 \n"  // .bss of prog
    "55555555a000-55555557b000 rw-p 00000000 00:00 0       [heap]\n"
    "7ffff0000000-7ffff0021000 rw-p 00000000 00:00 0 \n"  // a thread arena: holds a block
    "7ffff0021000-7ffff4000000 ---p 00000000 00:00 0 \n"
    "7ffff6000000-7ffff6100000 rw-p 00000000 00:00 0 \n"  // an app mmap: no block
    "7ffff6100000-7ffff6200000 rw-s 00000000 00:05 77      /dev/zero (deleted)\n"
    "7ffff6200000-7ffff6300000 rw-s 00000000 08:01 99      /var/db/data.mdb\n"
    "7ffff7000000-7ffff7001000 ---p 00000000 00:00 0 \n"  // guard
    "7ffff7001000-7ffff7801000 rw-p 00000000 00:00 0 \n"  // thread 2's stack, TCB at the top
    "7ffff7dd0000-7ffff7df0000 r-xp 00000000 08:01 555     /usr/lib/libc.so.6\n"
    "7ffff7df0000-7ffff7df4000 rw-p 00020000 08:01 555     /usr/lib/libc.so.6\n"
    "7ffff7df4000-7ffff7e00000 rw-p 00000000 00:00 0 \n"  // .bss of libc
    "7ffff7fc0000-7ffff7fc4000 r--p 00000000 00:00 0       [vvar]\n"
    "7ffff7ffd000-7ffff7ffe000 rw-p 00030000 08:01 556     /usr/lib/ld-linux-x86-64.so.2\n"
    "7ffff7ffe000-7ffff7fff000 rw-p 00000000 00:00 0 \n"  // ld.so .bss, main thread TLS
    "7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0       [stack]\n";

TEST(HeapScannerRoots, ParsesMaps) {
  std::vector<Mapping> maps = parse_maps(kMaps);
  ASSERT_EQ(maps.size(), 20u);
  EXPECT_EQ(maps[3].start, 0x555555558000u);
  EXPECT_TRUE(maps[3].file_backed());
  EXPECT_TRUE(maps[3].writable);
  EXPECT_TRUE(maps[4].anonymous());
  EXPECT_TRUE(maps[5].malloc_heap());
  EXPECT_TRUE(maps[9].shared_anonymous());
  EXPECT_TRUE(maps[9].deleted);
  EXPECT_EQ(maps[9].path, "/dev/zero");
  EXPECT_FALSE(maps[9].file_backed());
  EXPECT_TRUE(maps[10].shared);
  EXPECT_TRUE(maps[10].file_backed());
  EXPECT_EQ(maps[19].path, "[stack]");
}

std::map<uint64_t, std::pair<uint64_t, RootKind>> by_start(const std::vector<RootRegion>& regions) {
  std::map<uint64_t, std::pair<uint64_t, RootKind>> result;
  for (const RootRegion& region : regions) result[region.range.start] = {region.range.end, region.kind};
  return result;
}

TEST(HeapScannerRoots, ClassifiesStacksTlsDataBssAndForeignMemory) {
  std::vector<Mapping> maps = parse_maps(kMaps);
  std::vector<TrackedBlock> blocks = {{0x55555555a010, 32}, {0x7ffff0000900, 64}};
  BlockIndex index(blocks);
  std::vector<ThreadPointers> threads = {
      {100, 0x7fffffffe000, 0x7ffff7ffe740},  // main: [stack], TLS in ld.so's .bss
      {101, 0x7ffff7800000, 0x7ffff78006c0},  // thread 2: TCB at the top of its own stack
  };
  auto roots = by_start(classify_roots(maps, threads, index, ScanOptions{}));
  using P = std::pair<uint64_t, RootKind>;
  std::map<uint64_t, P> expected = {
      {0x7fffffffe000 - 128, P{0x7ffffffff000, RootKind::Stack}},
      {0x7ffff7800000 - 128, P{0x7ffff7801000, RootKind::Stack}},
      {0x7ffff7ffe000, P{0x7ffff7fff000, RootKind::Bss}},  // also the main thread's TLS (merged later)
      {0x555555558000, P{0x555555559000, RootKind::Data}},
      {0x555555559000, P{0x55555555a000, RootKind::Bss}},
      {0x7ffff6000000, P{0x7ffff6100000, RootKind::ForeignAnonymous}},
      {0x7ffff6100000, P{0x7ffff6200000, RootKind::ForeignAnonymous}},
      {0x7ffff7df0000, P{0x7ffff7df4000, RootKind::Data}},
      {0x7ffff7df4000, P{0x7ffff7e00000, RootKind::Bss}},
      {0x7ffff7ffd000, P{0x7ffff7ffe000, RootKind::Data}},
  };
  EXPECT_EQ(roots, expected) << "not roots: [heap], the arena holding a block, the shared database file, "
                                "[vvar], guard pages, the dead part of thread 2's stack";
}

TEST(HeapScannerRoots, LateAttachScansUntrackedHeapAroundTrackedBlocks) {
  std::vector<Mapping> maps = parse_maps(kMaps);
  std::vector<TrackedBlock> blocks = {{0x55555555a010, 32}, {0x7ffff0000900, 64}};
  BlockIndex index(blocks);
  std::vector<ThreadPointers> threads = {{100, 0x7fffffffe000, 0x7ffff7ffe740}};
  ScanOptions late;
  late.roots_include_untracked_heap = true;
  std::vector<RootRegion> regions = classify_roots(maps, threads, index, late);
  auto roots = by_start(regions);
  EXPECT_EQ(roots.at(0x55555555a000),
            (std::pair<uint64_t, RootKind>{0x55555557b000, RootKind::UntrackedHeap}));
  EXPECT_EQ(roots.at(0x7ffff0000000),
            (std::pair<uint64_t, RootKind>{0x7ffff0021000, RootKind::UntrackedHeap}));
  // After merging, the tracked blocks themselves are not roots.
  std::vector<MemoryRange> ranges = root_ranges(regions, index);
  for (const MemoryRange& range : ranges) {
    EXPECT_FALSE(range.start < 0x55555555a030 && range.end > 0x55555555a010) << std::hex << range.start;
    EXPECT_FALSE(range.start < 0x7ffff0000940 && range.end > 0x7ffff0000900) << std::hex << range.start;
  }
  // [heap] begins right after prog's .bss: the merged range runs through, split only by the block.
  EXPECT_NE(std::find(ranges.begin(), ranges.end(), MemoryRange{0x555555558000, 0x55555555a010}),
            ranges.end());
  EXPECT_NE(std::find(ranges.begin(), ranges.end(), MemoryRange{0x55555555a030, 0x55555557b000}),
            ranges.end());
}

TEST(HeapScannerRoots, StackInsideATrackedBlockIsScannedFromTheStackPointerOnly) {
  // memleak tracks mmap, so a pthread stack is a tracked block: the thread runs on it (reachable),
  // but only its live part is a root and the block is not otherwise scanned.
  std::vector<Mapping> maps = parse_maps(kMaps);
  std::vector<TrackedBlock> blocks = {{0x7ffff7000000, 0x801000}};
  BlockIndex index(blocks);
  std::vector<ThreadPointers> threads = {{101, 0x7ffff7800000, 0x7ffff78006c0}};
  std::vector<RootRegion> regions = classify_roots(maps, threads, index, ScanOptions{});
  auto stack = std::find_if(regions.begin(), regions.end(), [](const RootRegion& r) {
    return r.kind == RootKind::Stack && r.range.start == 0x7ffff7800000 - 128;
  });
  ASSERT_NE(stack, regions.end());
  EXPECT_EQ(stack->range.end, 0x7ffff7801000u);
  EXPECT_EQ(stack->stack_block, index.slot_of_entry(0));
  for (const MemoryRange& range : root_ranges(regions, index))
    EXPECT_FALSE(range.start < 0x7ffff7801000 && range.end > 0x7ffff7000000)
        << "the stack block is left to the caller";

  // What the scanner does with it: a pointer below the stack pointer (a dead frame) does not count.
  FakeMemory memory;
  memory.map(0x7ffff7001000, 0x800000);
  blocks.push_back({0x100000, 64});
  blocks.push_back({0x100100, 64});
  memory.put_word(0x7ffff7800000 - 256, 0x100000);  // dead frame
  memory.put_word(0x7ffff7800000 + 64, 0x100100);   // live frame
  BlockIndex with_heap(blocks);
  ReachabilityMarker marker(with_heap, memory);
  marker.mark_reached_without_scanning(with_heap.slot_of_entry(0));
  marker.add_root_word(0x7ffff7800000);  // rsp
  marker.add_root_range({0x7ffff7800000 - 128, 0x7ffff7801000});
  marker.run();
  EXPECT_EQ(marker.verdicts(3), (std::vector<V>{V::Reachable, V::Leaked, V::Reachable}));
}

TEST(HeapScannerRoots, MainStackWithoutAStackPointerIsScannedWhole) {
  std::vector<Mapping> maps = parse_maps(kMaps);
  BlockIndex index({});
  // Only thread 2 is known (the leader is a zombie): [stack] is scanned whole.
  std::vector<ThreadPointers> threads = {{101, 0x7ffff7800000, 0}};
  auto roots = by_start(classify_roots(maps, threads, index, ScanOptions{}));
  EXPECT_EQ(roots.at(0x7ffffffde000), (std::pair<uint64_t, RootKind>{0x7ffffffff000, RootKind::Stack}));
}

TEST(HeapScannerRoots, ThreadPointerInHeapScansOnlyAWindow) {
  // A static binary's main thread: glibc sbrk()s its TLS into the [heap].
  std::vector<Mapping> maps = parse_maps(
      "00400000-004c0000 r-xp 00000000 08:01 1 /usr/bin/static\n"
      "004c0000-004c8000 rw-p 000c0000 08:01 1 /usr/bin/static\n"
      "01000000-01400000 rw-p 00000000 00:00 0 [heap]\n"
      "7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0 [stack]\n");
  BlockIndex index({});
  std::vector<ThreadPointers> threads = {{100, 0x7fffffffe000, 0x01001000}};
  auto roots = by_start(classify_roots(maps, threads, index, ScanOptions{}));
  EXPECT_EQ(roots.at(0x01000000), (std::pair<uint64_t, RootKind>{0x01002000, RootKind::ThreadLocal}));
}

}  // namespace
}  // namespace memscope::memleak::scan
