// Sinks render records from their schema: text columns, BCC-style prose, JSON lines.
#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "output/histogram.hpp"
#include "output/sink.hpp"
#include "symbols/symbolizer.hpp"

namespace memscope::output {
namespace {

std::string capture(Format format, const std::function<void(Sink&)>& body) {
  char* buffer = nullptr;
  size_t size = 0;
  FILE* stream = open_memstream(&buffer, &size);
  symbols::StackSymbolizer symbolizer;
  {
    auto sink = make_sink(SinkOptions{format, false, stream}, symbolizer);
    body(*sink);
  }
  std::fclose(stream);
  std::string text(buffer, size);
  free(buffer);
  return text;
}

const Schema kSchema = {"drsnoop",
                        {{"comm", "COMM", FieldType::String, 16, true},
                         {"pid", "PID", FieldType::UInt, 7},
                         {"latency_ns", "LAT(ms)", FieldType::DurationNs, 8, false, 3},
                         {"pages", "PAGES", FieldType::UInt, 6}}};

TEST(TextSink, AlignsColumnsUnderHeaders) {
  std::string text = capture(Format::Text, [](Sink& sink) {
    sink.header(kSchema);
    sink.record(kSchema, {std::string("stress"), uint64_t{1234}, uint64_t{1500000}, uint64_t{32}});
  });
  EXPECT_EQ(text,
            "COMM                 PID  LAT(ms)  PAGES\n"
            "stress              1234    1.500     32\n");
}

TEST(TextSink, RendersProseLayouts) {
  Schema prose = {"oom_kill",
                  {{"pid", "PID", FieldType::UInt}, {"comm", "COMM", FieldType::String}},
                  "Triggered by PID {0} (\"{1}\")"};
  std::string text = capture(Format::Text, [&](Sink& sink) {
    sink.header(prose);
    sink.record(prose, {uint64_t{7}, std::string("perl")});
  });
  EXPECT_EQ(text, "Triggered by PID 7 (\"perl\")\n");
}

TEST(JsonSink, OneObjectPerRecordWithStableNames) {
  std::string text = capture(Format::Json, [](Sink& sink) {
    sink.header(kSchema);
    sink.record(kSchema, {std::string("stress"), uint64_t{1234}, uint64_t{1500000}, uint64_t{32}});
  });
  auto object = nlohmann::json::parse(text);
  EXPECT_EQ(object["event"], "drsnoop");
  EXPECT_EQ(object["comm"], "stress");
  EXPECT_EQ(object["pid"], 1234);
  EXPECT_EQ(object["latency_ns"], 1500000);
  EXPECT_TRUE(object.contains("ts"));
}

TEST(Histogram, BucketsFollowLog2) {
  EXPECT_EQ(log2_bucket(0), 0u);
  EXPECT_EQ(log2_bucket(1), 1u);
  EXPECT_EQ(log2_bucket(2), 2u);
  EXPECT_EQ(log2_bucket(3), 2u);
  EXPECT_EQ(log2_bucket(1024), 11u);
  Histogram histogram{"lat", "Latency", "usecs", {0, 2, 0, 4}};
  auto lines = render_histogram_text(histogram);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_NE(lines[2].find("1 -> 1"), std::string::npos);
  EXPECT_NE(lines[4].find("4 -> 7"), std::string::npos);
  EXPECT_NE(lines[4].find(std::string(40, '*')), std::string::npos);
  EXPECT_EQ(histogram.total(), 6u);
}

TEST(JsonSink, HistogramListsNonEmptyBuckets) {
  std::string text = capture(Format::Json, [](Sink& sink) {
    sink.histogram(Histogram{"lat", "Latency", "usecs", {0, 2, 0, 4}});
  });
  auto object = nlohmann::json::parse(text);
  EXPECT_EQ(object["buckets"].size(), 2u);
  EXPECT_EQ(object["buckets"][1]["low"], 4);
  EXPECT_EQ(object["buckets"][1]["count"], 4);
}

}  // namespace
}  // namespace memscope::output
