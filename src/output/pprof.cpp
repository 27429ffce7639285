#include "output/pprof.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <fmt/format.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <span>
#include <tuple>
#include <unordered_map>

#include "output/sink.hpp"
#include "runtime/result.hpp"
#include "symbols/symbolizer.hpp"

namespace memscope::output {
namespace {

// Field numbers of profile.proto (github.com/google/pprof/proto/profile.proto).
namespace profile_field {
constexpr uint32_t kSampleType = 1, kSample = 2, kMapping = 3, kLocation = 4, kFunction = 5, kStringTable = 6,
                   kTimeNanos = 9, kDefaultSampleType = 14;
}
namespace value_type_field {
constexpr uint32_t kType = 1, kUnit = 2;
}
namespace sample_field {
constexpr uint32_t kLocationId = 1, kValue = 2, kLabel = 3;
}
namespace label_field {
constexpr uint32_t kKey = 1, kStr = 2, kNum = 3;
}
namespace mapping_field {
constexpr uint32_t kId = 1, kFilename = 5, kHasFunctions = 7, kHasFilenames = 8, kHasLineNumbers = 9;
}
namespace location_field {
constexpr uint32_t kId = 1, kMappingId = 2, kAddress = 3, kLine = 4;
}
namespace line_field {
constexpr uint32_t kFunctionId = 1, kLine = 2;
}
namespace function_field {
constexpr uint32_t kId = 1, kName = 2, kSystemName = 3, kFilename = 4;
}

// Interns strings into the profile's string table (index 0 is always "").
class StringTable {
 public:
  StringTable() { index(""); }
  uint64_t index(const std::string& text) {
    auto [it, inserted] = indexes_.try_emplace(text, strings_.size());
    if (inserted) strings_.push_back(text);
    return it->second;
  }
  const std::vector<std::string>& strings() const { return strings_; }

 private:
  std::unordered_map<std::string, uint64_t> indexes_;
  std::vector<std::string> strings_;
};

bool is_identifier(const std::string& name) {
  return name.size() > 3 && name.compare(name.size() - 3, 3, "_id") == 0;
}

std::string unit_of(const std::string& name) {
  return name.find("bytes") != std::string::npos ? "bytes" : "count";
}

struct Label {
  uint64_t key;
  uint64_t str = 0;  // string-table index, or 0 for a numeric label
  int64_t num = 0;
};

}  // namespace

void ProtoWriter::varint(uint64_t value) {
  while (value >= 0x80) {
    data_.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  data_.push_back(static_cast<char>(value));
}

void ProtoWriter::varint_field(uint32_t field, uint64_t value) {
  varint(uint64_t{field} << 3);  // wire type 0
  varint(value);
}

void ProtoWriter::bytes_field(uint32_t field, const std::string& bytes) {
  varint((uint64_t{field} << 3) | 2);  // wire type 2: length-delimited
  varint(bytes.size());
  data_ += bytes;
}

void ProtoWriter::packed_field(uint32_t field, const std::vector<uint64_t>& values) {
  ProtoWriter packed;
  for (uint64_t value : values) packed.varint(value);
  bytes_field(field, packed.data_);
}

std::string encode_pprof(const StackReport& report, symbols::StackSymbolizer& symbolizer, int64_t time_ns) {
  StringTable strings;
  ProtoWriter profile;

  // Sample types: every numeric value any entry has, in order of first appearance.
  std::vector<std::string> value_names;
  for (const auto& entry : report.entries)
    for (const auto& [name, value] : entry.values)
      if (!is_identifier(name) &&
          std::find(value_names.begin(), value_names.end(), name) == value_names.end())
        value_names.push_back(name);
  for (const auto& name : value_names) {
    ProtoWriter value_type;
    value_type.varint_field(value_type_field::kType, strings.index(name));
    value_type.varint_field(value_type_field::kUnit, strings.index(unit_of(name)));
    profile.message_field(profile_field::kSampleType, value_type);
  }

  // One mapping per module, one function per (name, file), one location per (module, address).
  std::map<std::string, uint64_t> mapping_ids;
  std::map<std::pair<std::string, std::string>, uint64_t> function_ids;
  std::map<std::tuple<pid_t, bool, uint64_t>, uint64_t> location_ids;
  uint64_t location_count = 0;
  ProtoWriter mappings, functions, locations;

  auto mapping_id = [&](const symbols::Frame& frame) {
    std::string module = frame.module.empty() ? (frame.kernel ? "[kernel]" : "[unknown]") : frame.module;
    auto [it, inserted] = mapping_ids.try_emplace(module, mapping_ids.size() + 1);
    if (inserted) {
      ProtoWriter mapping;
      mapping.varint_field(mapping_field::kId, it->second);
      mapping.varint_field(mapping_field::kFilename, strings.index(module));
      // Frames are symbolized here: pprof must not try to symbolize the addresses itself.
      mapping.varint_field(mapping_field::kHasFunctions, 1);
      mapping.varint_field(mapping_field::kHasFilenames, 1);
      mapping.varint_field(mapping_field::kHasLineNumbers, 1);
      mappings.message_field(profile_field::kMapping, mapping);
    }
    return it->second;
  };
  auto function_id = [&](const symbols::Frame& frame) {
    std::string name =
        frame.function.empty() ? fmt::format("[unknown] {:#x}", frame.address) : frame.function;
    auto [it, inserted] = function_ids.try_emplace({name, frame.file}, function_ids.size() + 1);
    if (inserted) {
      ProtoWriter function;
      function.varint_field(function_field::kId, it->second);
      function.varint_field(function_field::kName, strings.index(name));
      function.varint_field(function_field::kSystemName, strings.index(name));
      function.varint_field(function_field::kFilename, strings.index(frame.file));
      functions.message_field(profile_field::kFunction, function);
    }
    return it->second;
  };
  // `chain`: the frames of one address, inlined functions first and the function containing them
  // last, which is the order of a Location's lines in profile.proto.
  auto location_id = [&](pid_t pid, std::span<const symbols::Frame> chain) {
    const symbols::Frame& frame = chain.back();
    // User addresses mean something only within their process; kernel addresses are global.
    auto [it, inserted] = location_ids.try_emplace({frame.kernel ? 0 : pid, frame.kernel, frame.address}, 0);
    if (inserted) {
      it->second = ++location_count;
      ProtoWriter location;
      location.varint_field(location_field::kId, it->second);
      location.varint_field(location_field::kMappingId, mapping_id(frame));
      location.varint_field(location_field::kAddress, frame.address);
      for (const auto& function : chain) {
        ProtoWriter line;
        line.varint_field(line_field::kFunctionId, function_id(function));
        line.varint_field(line_field::kLine, static_cast<uint64_t>(function.line));
        location.message_field(location_field::kLine, line);
      }
      locations.message_field(profile_field::kLocation, location);
    }
    return it->second;
  };
  // The root of every truncated stack: one location of its own, without mapping or address.
  uint64_t truncated_location_id = 0;
  auto truncated_root_id = [&] {
    if (truncated_location_id != 0) return truncated_location_id;
    truncated_location_id = ++location_count;
    symbols::Frame marker{.function = std::string(kTruncatedStackMarker)};
    ProtoWriter line;
    line.varint_field(line_field::kFunctionId, function_id(marker));
    ProtoWriter location;
    location.varint_field(location_field::kId, truncated_location_id);
    location.message_field(location_field::kLine, line);
    locations.message_field(profile_field::kLocation, location);
    return truncated_location_id;
  };

  for (const auto& entry : report.entries) {
    std::vector<uint64_t> location_list;  // leaf first, as pprof wants
    std::vector<symbols::Frame> frames = frames_of(entry.stack, symbolizer);
    for (size_t first = 0; first < frames.size();) {
      size_t last = first;
      while (last + 1 < frames.size() && frames[last].inlined) last++;
      location_list.push_back(
          location_id(entry.stack.pid, std::span<const symbols::Frame>(&frames[first], last - first + 1)));
      first = last + 1;
    }
    if (entry.stack.user_truncated) location_list.push_back(truncated_root_id());
    std::vector<uint64_t> values(value_names.size(), 0);
    std::vector<Label> labels;
    for (const auto& [name, value] : entry.values) {
      if (is_identifier(name)) {
        labels.push_back({strings.index(name), 0, static_cast<int64_t>(value)});
        continue;
      }
      auto position = std::find(value_names.begin(), value_names.end(), name) - value_names.begin();
      values[position] = value;
    }
    if (!entry.comm.empty()) labels.push_back({strings.index("comm"), strings.index(entry.comm)});
    if (entry.stack.pid > 0) labels.push_back({strings.index("pid"), 0, entry.stack.pid});
    for (const auto& [key, text] : entry.labels) labels.push_back({strings.index(key), strings.index(text)});
    for (const auto& [key, set] : entry.flags)
      if (set) labels.push_back({strings.index(key), strings.index("true")});

    ProtoWriter sample;
    sample.packed_field(sample_field::kLocationId, location_list);
    sample.packed_field(sample_field::kValue, values);
    for (const auto& label : labels) {
      ProtoWriter encoded;
      encoded.varint_field(label_field::kKey, label.key);
      if (label.str)
        encoded.varint_field(label_field::kStr, label.str);
      else
        encoded.varint_field(label_field::kNum, static_cast<uint64_t>(label.num));
      sample.message_field(sample_field::kLabel, encoded);
    }
    profile.message_field(profile_field::kSample, sample);
  }

  ProtoWriter tail;
  tail.varint_field(profile_field::kTimeNanos, static_cast<uint64_t>(time_ns));
  // The default view is the value tools sort by: the first one (bytes for memleak).
  if (!value_names.empty())
    tail.varint_field(profile_field::kDefaultSampleType, strings.index(value_names.front()));
  std::string encoded = profile.data() + mappings.data() + locations.data() + functions.data();
  ProtoWriter string_table;
  for (const auto& text : strings.strings()) string_table.bytes_field(profile_field::kStringTable, text);
  return encoded + string_table.data() + tail.data();
}

void write_gzip_file_atomically(const std::string& path, const std::string& profile) {
  // The temporary file gets a name no one can predict and is created exclusively (mkostemp: O_CREAT |
  // O_EXCL, which never follows a symlink), in the target's directory so that rename() replaces the
  // target in one step. A fixed "FILE.tmp" would let anyone who can write there plant a symlink that
  // root memscope then writes through.
  std::string temporary = path + ".XXXXXX";
  int fd = mkostemp(temporary.data(), O_CLOEXEC);
  if (fd < 0) throw FatalError(fmt::format("cannot write a temporary file next to {}: {}", path, strerror(errno)));
  fchmod(fd, 0644);  // what the profile would have had from gzopen() under the usual umask
  gzFile file = gzdopen(fd, "wb");
  if (!file) {
    close(fd);
    unlink(temporary.c_str());
    throw FatalError(fmt::format("cannot write {}: {}", temporary, strerror(errno)));
  }
  bool written = profile.empty() || gzwrite(file, profile.data(), static_cast<unsigned>(profile.size())) > 0;
  if (gzclose(file) != Z_OK || !written) {
    unlink(temporary.c_str());
    throw FatalError(fmt::format("cannot write {}", temporary));
  }
  if (rename(temporary.c_str(), path.c_str()) != 0) {
    int error = errno;
    unlink(temporary.c_str());
    throw FatalError(fmt::format("cannot replace {}: {}", path, strerror(error)));
  }
}

namespace {

class PprofFileSink : public Sink {
 public:
  PprofFileSink(std::unique_ptr<Sink> inner, std::string path, symbols::StackSymbolizer& symbolizer)
      : inner_(std::move(inner)), path_(std::move(path)), symbolizer_(symbolizer) {}

  void header(const Schema& schema) override { inner_->header(schema); }
  void record(const Schema& schema, const std::vector<Value>& values) override {
    inner_->record(schema, values);
  }
  void stacks(const StackReport& report) override {
    inner_->stacks(report);
    auto now = std::chrono::system_clock::now().time_since_epoch();
    write_gzip_file_atomically(
        path_,
        encode_pprof(report, symbolizer_, std::chrono::duration_cast<std::chrono::nanoseconds>(now).count()));
  }
  void histogram(const Histogram& histogram) override { inner_->histogram(histogram); }
  void message(const std::string& text) override { inner_->message(text); }

 private:
  std::unique_ptr<Sink> inner_;
  std::string path_;
  symbols::StackSymbolizer& symbolizer_;
};

}  // namespace

std::unique_ptr<Sink> with_pprof_file(std::unique_ptr<Sink> inner, const std::string& path,
                                      symbols::StackSymbolizer& symbolizer) {
  return std::make_unique<PprofFileSink>(std::move(inner), path, symbolizer);
}

}  // namespace memscope::output
