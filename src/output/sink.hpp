// Sinks: where records, stack reports and histograms go. One sink per format; adding a sink touches
// no tool, adding a tool touches no sink.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "output/histogram.hpp"
#include "output/record.hpp"
#include "output/stack.hpp"

namespace memscope::symbols {
class StackSymbolizer;
struct Frame;
}

namespace memscope::output {

enum class Format { Text, Json, Folded };

class Sink {
 public:
  virtual ~Sink() = default;
  // Column header line (text only). Printed by tools once their probes are attached.
  virtual void header(const Schema& schema) = 0;
  virtual void record(const Schema& schema, const std::vector<Value>& values) = 0;
  virtual void stacks(const StackReport& report) = 0;
  virtual void histogram(const Histogram& histogram) = 0;
  // Free-form human text (e.g. a summary line). JSON sinks turn it into {"event":"message"}.
  virtual void message(const std::string& text) = 0;
};

struct SinkOptions {
  Format format = Format::Text;
  bool timestamps = false;  // -T: a TIME column in text
  FILE* stream = stdout;
};

std::unique_ptr<Sink> make_sink(const SinkOptions& options, symbols::StackSymbolizer& symbolizer);

// Helpers shared by sinks and tests.
// A stack's frames, innermost first: the kernel part, then the user part with each address's inline
// chain expanded (see StackSymbolizer::user_frames) and Frame::unwound_by_frame_pointer set on every
// frame of an address that Stack::user_frame_pointer_frames marks. Stack::user_truncated is left to
// each sink to show.
std::vector<symbols::Frame> frames_of(const Stack& stack, symbols::StackSymbolizer& symbolizer);
std::string format_text_value(const Field& field, const Value& value);
std::string wall_clock_hms();

}  // namespace memscope::output
