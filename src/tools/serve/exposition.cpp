#include "exposition.hpp"

#include <fmt/format.h>

#include <cmath>

namespace memscope::serve {
namespace {

const char* type_name(MetricType type) {
  switch (type) {
    case MetricType::Counter: return "counter";
    case MetricType::Gauge: return "gauge";
    case MetricType::Histogram: return "histogram";
  }
  return "untyped";
}

std::string escape_help(const std::string& help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Integers (counters, bytes) exactly; others with enough digits to round-trip.
  if (value == std::floor(value) && std::fabs(value) < 1e15) return fmt::format("{:.0f}", value);
  return fmt::format("{}", value);
}

}  // namespace

std::string escape_label_value(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

bool valid_metric_name(const std::string& name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); i++) {
    char c = name[i];
    bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

void MetricFamily::add_log2_ns_histogram(const Labels& labels, const std::vector<uint64_t>& log2_buckets,
                                         double sum_ns, int min_bucket, int max_bucket) {
  uint64_t cumulative = 0;
  size_t next = 0;
  for (int bucket = min_bucket; bucket <= max_bucket; bucket++) {
    // Values below 2^bucket ns are in the log2 buckets 0..bucket.
    for (; next < log2_buckets.size() && next <= static_cast<size_t>(bucket); next++) cumulative += log2_buckets[next];
    Labels with_le = labels;
    with_le.emplace_back("le", fmt::format("{}", std::ldexp(1.0, bucket) / 1e9));
    samples.push_back({"_bucket", std::move(with_le), static_cast<double>(cumulative)});
  }
  for (; next < log2_buckets.size(); next++) cumulative += log2_buckets[next];
  Labels with_inf = labels;
  with_inf.emplace_back("le", "+Inf");
  samples.push_back({"_bucket", std::move(with_inf), static_cast<double>(cumulative)});
  samples.push_back({"_sum", labels, sum_ns / 1e9});
  samples.push_back({"_count", labels, static_cast<double>(cumulative)});
}

std::string render(const std::vector<MetricFamily>& families) {
  std::string out;
  for (const auto& family : families) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", family.name, escape_help(family.help), family.name,
                       type_name(family.type));
    for (const auto& sample : family.samples) {
      out += family.name;
      out += sample.suffix;
      if (!sample.labels.empty()) {
        out += '{';
        for (size_t i = 0; i < sample.labels.size(); i++) {
          if (i) out += ',';
          out += sample.labels[i].first;
          out += "=\"";
          out += escape_label_value(sample.labels[i].second);
          out += '"';
        }
        out += '}';
      }
      out += ' ';
      out += format_value(sample.value);
      out += '\n';
    }
  }
  return out;
}

}  // namespace memscope::serve
