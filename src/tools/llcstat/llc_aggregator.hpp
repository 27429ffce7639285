// llcstat's counting path as a pure class: samples of per-CPU, per-task reference and miss counts
// (from the BPF map, or a fake source in tests) summed into per-process (or per-thread, per-CPU)
// rows with a hit ratio.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace memscope::llc {

// Counts of one task on one CPU since the previous drain.
struct LlcSample {
  uint32_t cpu = 0;
  uint32_t pid = 0;
  uint32_t tid = 0;
  std::string comm;
  uint64_t references = 0;
  uint64_t misses = 0;
};

// Where samples come from: the BPF map in memscope, a fake in unit tests.
class LlcSampleSource {
 public:
  virtual ~LlcSampleSource() = default;
  // Everything counted since the last call.
  virtual std::vector<LlcSample> drain() = 0;
};

struct LlcRow {
  uint32_t pid = 0;
  uint32_t tid = 0;  // 0 unless grouped per thread
  int cpu = -1;      // -1 unless grouped per CPU
  std::string comm;
  uint64_t references = 0;
  uint64_t misses = 0;

  // Share of references that hit: (references - misses) / references. Sampling two independent
  // counters can report more misses than references for a small task; that reads as 0, not negative.
  double hit_ratio() const;
};

class LlcAggregator {
 public:
  LlcAggregator(bool per_thread, bool per_cpu) : per_thread_(per_thread), per_cpu_(per_cpu) {}

  void add(const LlcSample& sample);

  void add_all(LlcSampleSource& source) {
    for (const auto& sample : source.drain()) add(sample);
  }

  // Rows with the most references first (ties: lower PID, TID, CPU first).
  std::vector<LlcRow> rows() const;

  LlcRow total() const;

  void clear() { rows_.clear(); }

 private:
  using Key = std::tuple<uint32_t, uint32_t, int>;  // pid, tid (0), cpu (-1)
  bool per_thread_;
  bool per_cpu_;
  std::map<Key, LlcRow> rows_;
};

}  // namespace memscope::llc
