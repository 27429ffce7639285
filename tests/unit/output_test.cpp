// Sinks render records from their schema: text columns, BCC-style prose, JSON lines.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "inlined_call.hpp"
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

TEST(TextSink, AReportWithoutStacksSaysNoneOnItsTitleLine) {
  StackReport report{"fault_stacks", "Stacks by page faults:", {}};
  EXPECT_EQ(capture(Format::Text, [&](Sink& sink) { sink.stacks(report); }), "Stacks by page faults: none\n");
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

// A stack of this process whose second address is a call inside an inlined function, so that it
// expands to three frames: return_address_of_call(), then callee() inlined into caller(). The second
// address was found by frame pointer, and the unwinder stopped before the outermost frames.
struct MarkedInlineStack {
  inlined_call::Site site = inlined_call::caller();
  StackReport report;
  MarkedInlineStack() {
    StackEntry entry;
    entry.stack.pid = getpid();
    entry.stack.user = {reinterpret_cast<uint64_t>(&inlined_call::return_address_of_call),
                        site.return_address};
    entry.stack.user_frame_pointer_frames = 0b10;
    entry.stack.user_truncated = true;
    entry.comm = "unit";
    entry.values = {{"bytes", 64}};
    entry.weight = 64;
    entry.heading = "64 bytes";
    report.name = "stacks";
    report.entries = {entry};
  }
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

TEST(TextSink, InlinedFramesEachOnTheirOwnLineWithFramePointerAndTruncationMarks) {
  MarkedInlineStack stack;
  auto lines = lines_of(capture(Format::Text, [&](Sink& sink) { sink.stacks(stack.report); }));
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0], "\t64 bytes");
  EXPECT_TRUE(lines[1].starts_with("\t\tmemscope::inlined_call::return_address_of_call()+0x0 ")) << lines[1];
  EXPECT_FALSE(lines[1].ends_with("[fp]")) << lines[1];
  const std::string module = " [unit_tests] ";
  EXPECT_EQ(lines[2], "\t\t" + std::string(inlined_call::kCallee) + " (inlined)" + module +
                          "(inlined_call.hpp:" + std::to_string(stack.site.callee_line) + ") [fp]");
  EXPECT_TRUE(lines[3].starts_with("\t\t" + std::string(inlined_call::kCaller) + "+0x")) << lines[3];
  EXPECT_TRUE(
      lines[3].ends_with(module + "(inlined_call.hpp:" + std::to_string(stack.site.caller_line) + ") [fp]"))
      << lines[3];
  EXPECT_EQ(lines[4], "\t\t[truncated]");
}

TEST(JsonSink, InlinedFramesFramePointerFramesAndTruncatedStacksAreMarked) {
  MarkedInlineStack stack;
  auto object = nlohmann::json::parse(capture(Format::Json, [&](Sink& sink) { sink.stacks(stack.report); }));
  const auto& entry = object["stacks"][0];
  EXPECT_EQ(entry["truncated"], true);
  const auto& frames = entry["frames"];
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_FALSE(frames[0].contains("inlined"));
  EXPECT_FALSE(frames[0].contains("unwound"));
  EXPECT_EQ(frames[1]["function"], inlined_call::kCallee);
  EXPECT_EQ(frames[1]["inlined"], true);
  EXPECT_EQ(frames[1]["line"], stack.site.callee_line);
  EXPECT_EQ(frames[1]["unwound"], "fp");
  EXPECT_EQ(frames[2]["function"], inlined_call::kCaller);
  EXPECT_FALSE(frames[2].contains("inlined"));
  EXPECT_EQ(frames[2]["line"], stack.site.caller_line);
  EXPECT_EQ(frames[2]["unwound"], "fp");
  // One address, two functions.
  EXPECT_EQ(frames[1]["address"], stack.site.return_address);
  EXPECT_EQ(frames[2]["address"], stack.site.return_address);

  stack.report.entries[0].stack.user_truncated = false;
  object = nlohmann::json::parse(capture(Format::Json, [&](Sink& sink) { sink.stacks(stack.report); }));
  EXPECT_FALSE(object["stacks"][0].contains("truncated"));
}

TEST(FoldedSink, InlinedFunctionsAreElementsAndTruncationIsTheRoot) {
  MarkedInlineStack stack;
  std::string text = capture(Format::Folded, [&](Sink& sink) { sink.stacks(stack.report); });
  EXPECT_EQ(text, "unit;[truncated];" + std::string(inlined_call::kCaller) + ";" + inlined_call::kCallee +
                      ";memscope::inlined_call::return_address_of_call() 64\n");
}

}  // namespace
}  // namespace memscope::output
