#include "output/histogram.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace memscope::output {

uint64_t Histogram::total() const {
  uint64_t sum = 0;
  for (uint64_t count : log2_buckets) sum += count;
  return sum;
}

unsigned log2_bucket(uint64_t value) {
  unsigned bucket = 0;
  while (value) {
    value >>= 1;
    bucket++;
  }
  return bucket;
}

std::vector<std::string> render_histogram_text(const Histogram& histogram) {
  std::vector<std::string> lines;
  size_t last = 0;
  uint64_t peak = 0;
  for (size_t i = 0; i < histogram.log2_buckets.size(); i++) {
    if (histogram.log2_buckets[i]) last = i;
    peak = std::max(peak, histogram.log2_buckets[i]);
  }
  lines.push_back(histogram.title + ":");
  lines.push_back(fmt::format("{:>20} : {:<10} {:<40}", histogram.unit, "count", "distribution"));
  if (peak == 0) return lines;
  size_t first = 0;
  while (first < last && histogram.log2_buckets[first] == 0) first++;
  for (size_t i = first; i <= last; i++) {
    uint64_t low = i == 0 ? 0 : (1ULL << (i - 1));
    uint64_t high = i == 0 ? 0 : (1ULL << i) - 1;
    uint64_t count = histogram.log2_buckets[i];
    size_t stars = static_cast<size_t>(count * 40 / peak);
    lines.push_back(fmt::format("{:>10} -> {:<10}: {:<10} |{:<40}|", low, high, count, std::string(stars, '*')));
  }
  return lines;
}

}  // namespace memscope::output
