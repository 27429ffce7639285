// Log2 histograms in the layout BCC prints (`usecs : count distribution`).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace memscope::output {

struct Histogram {
  std::string name;        // JSON "event" suffix, e.g. "direct_reclaim_latency"
  std::string title;       // text line, e.g. "Direct reclaim latency"
  std::string unit;        // "usecs", "msecs", "pages"
  std::vector<uint64_t> log2_buckets;  // bucket i counts values in [2^(i-1), 2^i), bucket 0 is 0
  uint64_t total() const;
};

// Index of the log2 bucket for a value, the same rule the BPF side uses.
unsigned log2_bucket(uint64_t value);
std::vector<std::string> render_histogram_text(const Histogram& histogram);

}  // namespace memscope::output
