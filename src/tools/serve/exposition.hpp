// Prometheus text exposition (format 0.0.4): metric families with HELP and TYPE, label values
// escaped, histograms as cumulative _bucket/_sum/_count series. Small enough that a client library
// (prometheus-cpp, with its own HTTP server and registry) would cost more than it saves.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace memscope::serve {

using Labels = std::vector<std::pair<std::string, std::string>>;

struct Sample {
  std::string suffix;  // "_bucket", "_sum", "_count" for histograms; empty otherwise
  Labels labels;
  double value = 0;
};

enum class MetricType { Counter, Gauge, Histogram };

struct MetricFamily {
  std::string name;
  std::string help;
  MetricType type = MetricType::Gauge;
  std::vector<Sample> samples;

  void add(Labels labels, double value) { samples.push_back({"", std::move(labels), value}); }
  // A histogram from log2 buckets of nanoseconds (bucket i counts values in [2^(i-1), 2^i), bucket
  // 0 counts 0; output/histogram.hpp's rule), exposed in seconds with `le` from 2^min_bucket to
  // 2^max_bucket ns. The count is the sum of the buckets so that +Inf and _count always agree.
  void add_log2_ns_histogram(const Labels& labels, const std::vector<uint64_t>& log2_buckets, double sum_ns,
                             int min_bucket, int max_bucket);
};

// "a\"b" for label values: backslash, double quote and newline escaped.
std::string escape_label_value(const std::string& value);
// Metric and label names: [a-zA-Z_:][a-zA-Z0-9_:]* (label names without ':').
bool valid_metric_name(const std::string& name);

std::string render(const std::vector<MetricFamily>& families);

}  // namespace memscope::serve
