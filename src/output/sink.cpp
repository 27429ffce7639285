#include "output/sink.hpp"

#include <fmt/args.h>
#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

#include "symbols/symbolizer.hpp"

namespace memscope::output {
namespace {

double epoch_seconds() {
  using namespace std::chrono;
  return duration_cast<duration<double>>(system_clock::now().time_since_epoch()).count();
}

nlohmann::json json_value(const Value& value) {
  return std::visit([](const auto& v) -> nlohmann::json { return v; }, value);
}

}  // namespace

std::vector<symbols::Frame> frames_of(const Stack& stack, symbols::StackSymbolizer& symbolizer) {
  std::vector<symbols::Frame> frames = symbolizer.kernel_frames(stack.kernel);
  std::vector<symbols::Frame> user = symbolizer.user_frames(stack.pid, stack.user);
  // An address's inline chain ends at its one frame that is not inlined.
  size_t address_index = 0;
  for (auto& frame : user) {
    if (address_index < 64 && ((stack.user_frame_pointer_frames >> address_index) & 1) != 0)
      frame.unwound_by_frame_pointer = true;
    if (!frame.inlined) address_index++;
  }
  frames.insert(frames.end(), std::make_move_iterator(user.begin()), std::make_move_iterator(user.end()));
  if (frames.empty() && stack.lost) frames.push_back({.function = std::string(symbols::kLostStackFunction)});
  return frames;
}

namespace {

class TextSink : public Sink {
 public:
  TextSink(const SinkOptions& options, symbols::StackSymbolizer& symbolizer)
      : options_(options), symbolizer_(symbolizer) {}

  void header(const Schema& schema) override {
    if (!schema.text_format.empty()) return;
    std::string line;
    if (options_.timestamps) line += fmt::format("{:<9}", "TIME");
    for (size_t i = 0; i < schema.fields.size(); i++) {
      const Field& field = schema.fields[i];
      bool last = i + 1 == schema.fields.size();
      line += align(field, field.header, last);
      if (!last) line += " ";
    }
    emit(line);
  }

  void record(const Schema& schema, const std::vector<Value>& values) override {
    std::string line;
    if (options_.timestamps) line += fmt::format("{:<9}", wall_clock_hms());
    if (!schema.text_format.empty()) {
      fmt::dynamic_format_arg_store<fmt::format_context> args;
      for (size_t i = 0; i < schema.fields.size() && i < values.size(); i++)
        args.push_back(format_text_value(schema.fields[i], values[i]));
      emit(line + fmt::vformat(schema.text_format, args));
      return;
    }
    for (size_t i = 0; i < schema.fields.size() && i < values.size(); i++) {
      const Field& field = schema.fields[i];
      bool last = i + 1 == schema.fields.size();
      line += align(field, format_text_value(field, values[i]), last);
      if (!last) line += " ";
    }
    emit(line);
  }

  void stacks(const StackReport& report) override {
    if (!report.title.empty()) emit(report.entries.empty() ? report.title + " none" : report.title);
    for (const auto& entry : report.entries) {
      emit("\t" + entry.heading);
      for (const auto& frame : frames_of(entry.stack, symbolizer_))
        emit("\t\t" + frame.display() + (frame.unwound_by_frame_pointer ? " [fp]" : ""));
      if (entry.stack.user_truncated) emit("\t\t" + std::string(kTruncatedStackMarker));
    }
  }

  void histogram(const Histogram& histogram) override {
    for (const auto& line : render_histogram_text(histogram)) emit(line);
  }

  void message(const std::string& text) override { emit(text); }

 private:
  static std::string align(const Field& field, const std::string& text, bool last) {
    if (field.width == 0 || (last && field.left)) return text;
    return field.left ? fmt::format("{:<{}}", text, field.width) : fmt::format("{:>{}}", text, field.width);
  }
  void emit(const std::string& line) {
    fmt::print(options_.stream, "{}\n", line);
    std::fflush(options_.stream);
  }

  SinkOptions options_;
  symbols::StackSymbolizer& symbolizer_;
};

class JsonSink : public Sink {
 public:
  JsonSink(const SinkOptions& options, symbols::StackSymbolizer& symbolizer)
      : options_(options), symbolizer_(symbolizer) {}

  void header(const Schema&) override {}

  void record(const Schema& schema, const std::vector<Value>& values) override {
    nlohmann::ordered_json object;
    object["event"] = schema.name;
    object["ts"] = epoch_seconds();
    for (size_t i = 0; i < schema.fields.size() && i < values.size(); i++)
      object[schema.fields[i].name] = json_value(values[i]);
    emit(object);
  }

  void stacks(const StackReport& report) override {
    nlohmann::ordered_json object;
    object["event"] = report.name;
    object["ts"] = epoch_seconds();
    nlohmann::ordered_json entries = nlohmann::ordered_json::array();
    for (const auto& entry : report.entries) {
      nlohmann::ordered_json item;
      item["pid"] = entry.stack.pid;
      item["comm"] = entry.comm;
      for (const auto& [name, value] : entry.values) item[name] = value;
      for (const auto& [name, value] : entry.labels) item[name] = value;
      for (const auto& [name, value] : entry.flags) item[name] = value;
      nlohmann::ordered_json frames = nlohmann::ordered_json::array();
      for (const auto& frame : frames_of(entry.stack, symbolizer_)) {
        nlohmann::ordered_json f;
        f["address"] = frame.address;
        f["function"] = frame.function;
        f["offset"] = frame.offset;
        f["module"] = frame.module;
        if (!frame.file.empty()) {
          f["file"] = frame.file;
          f["line"] = frame.line;
        }
        f["kernel"] = frame.kernel;
        if (frame.inlined) f["inlined"] = true;
        if (frame.unwound_by_frame_pointer) f["unwound"] = "fp";
        frames.push_back(f);
      }
      item["frames"] = frames;
      if (entry.stack.user_truncated) item["truncated"] = true;
      entries.push_back(item);
    }
    object["stacks"] = entries;
    emit(object);
  }

  void histogram(const Histogram& histogram) override {
    nlohmann::ordered_json object;
    object["event"] = "histogram";
    object["name"] = histogram.name;
    object["unit"] = histogram.unit;
    nlohmann::ordered_json buckets = nlohmann::ordered_json::array();
    for (size_t i = 0; i < histogram.log2_buckets.size(); i++) {
      if (!histogram.log2_buckets[i]) continue;
      uint64_t low = i == 0 ? 0 : (1ULL << (i - 1));
      uint64_t high = i == 0 ? 0 : (1ULL << i) - 1;
      buckets.push_back({{"low", low}, {"high", high}, {"count", histogram.log2_buckets[i]}});
    }
    object["buckets"] = buckets;
    emit(object);
  }

  void message(const std::string& text) override {
    nlohmann::ordered_json object;
    object["event"] = "message";
    object["ts"] = epoch_seconds();
    object["text"] = text;
    emit(object);
  }

 private:
  void emit(const nlohmann::ordered_json& object) {
    fmt::print(options_.stream, "{}\n", object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    std::fflush(options_.stream);
  }
  SinkOptions options_;
  symbols::StackSymbolizer& symbolizer_;
};

// Folded stacks for flamegraph.pl and speedscope: "comm;outer;…;inner weight". Records and
// histograms have no folded form and go to stderr as text so nothing is silently lost.
class FoldedSink : public Sink {
 public:
  FoldedSink(const SinkOptions& options, symbols::StackSymbolizer& symbolizer)
      : options_(options), symbolizer_(symbolizer), side_(SinkOptions{Format::Text, false, stderr}, symbolizer) {}

  void header(const Schema&) override {}
  void record(const Schema& schema, const std::vector<Value>& values) override { side_.record(schema, values); }
  void stacks(const StackReport& report) override {
    for (const auto& entry : report.entries) {
      std::vector<symbols::Frame> frames = frames_of(entry.stack, symbolizer_);
      std::string line = entry.comm.empty() ? "[unknown]" : entry.comm;
      // The missing outermost frames would come first.
      if (entry.stack.user_truncated) line += ";" + std::string(kTruncatedStackMarker);
      for (auto it = frames.rbegin(); it != frames.rend(); ++it) {
        std::string name = it->short_name();
        if (it->kernel) name += "_[k]";
        line += ";" + name;
      }
      fmt::print(options_.stream, "{} {}\n", line, entry.weight);
    }
    std::fflush(options_.stream);
  }
  void histogram(const Histogram& histogram) override { side_.histogram(histogram); }
  void message(const std::string& text) override { side_.message(text); }

 private:
  SinkOptions options_;
  symbols::StackSymbolizer& symbolizer_;
  TextSink side_;
};

}  // namespace

std::string wall_clock_hms() {
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  return fmt::format("{:02}:{:02}:{:02}", local.tm_hour, local.tm_min, local.tm_sec);
}

std::string format_text_value(const Field& field, const Value& value) {
  switch (field.type) {
    case FieldType::Hex:
      if (auto* u = std::get_if<uint64_t>(&value)) return fmt::format("{:#x}", *u);
      break;
    case FieldType::Float:
      if (auto* d = std::get_if<double>(&value)) return fmt::format("{:.{}f}", *d, field.precision);
      break;
    case FieldType::DurationNs:
      if (auto* u = std::get_if<uint64_t>(&value))
        return fmt::format("{:.{}f}", static_cast<double>(*u) / 1e6, field.precision);
      break;
    default:
      break;
  }
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) return v;
        else if constexpr (std::is_same_v<T, double>) return fmt::format("{:.2f}", v);
        else return fmt::format("{}", v);
      },
      value);
}

std::unique_ptr<Sink> make_sink(const SinkOptions& options, symbols::StackSymbolizer& symbolizer) {
  switch (options.format) {
    case Format::Json: return std::make_unique<JsonSink>(options, symbolizer);
    case Format::Folded: return std::make_unique<FoldedSink>(options, symbolizer);
    case Format::Text: break;
  }
  return std::make_unique<TextSink>(options, symbolizer);
}

}  // namespace memscope::output
