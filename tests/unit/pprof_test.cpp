// pprof encoding: the protobuf wire bytes, and a profile decoded back field by field.
#include "output/pprof.hpp"

#include <gtest/gtest.h>
#include <unistd.h>
#include <sys/stat.h>
#include <zlib.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "inlined_call.hpp"
#include "symbols/symbolizer.hpp"

namespace memscope::output {
namespace {

// A decoded protobuf message: field number -> values (varints as numbers, length-delimited as bytes).
struct Decoded {
  std::multimap<uint32_t, uint64_t> numbers;
  std::multimap<uint32_t, std::string> bytes;

  std::vector<Decoded> messages(uint32_t field) const;
  std::vector<uint64_t> packed(uint32_t field) const;
  uint64_t number(uint32_t field) const {
    auto it = numbers.find(field);
    return it == numbers.end() ? 0 : it->second;
  }
};

uint64_t read_varint(const std::string& data, size_t& at) {
  uint64_t value = 0;
  for (int shift = 0; at < data.size(); shift += 7) {
    uint8_t byte = static_cast<uint8_t>(data[at++]);
    value |= uint64_t{byte & 0x7fu} << shift;
    if (!(byte & 0x80)) return value;
  }
  ADD_FAILURE() << "truncated varint";
  return value;
}

Decoded decode(const std::string& data) {
  Decoded decoded;
  size_t at = 0;
  while (at < data.size()) {
    uint64_t key = read_varint(data, at);
    auto field = static_cast<uint32_t>(key >> 3);
    switch (key & 7) {
      case 0:
        decoded.numbers.emplace(field, read_varint(data, at));
        break;
      case 2: {
        uint64_t length = read_varint(data, at);
        decoded.bytes.emplace(field, data.substr(at, length));
        at += length;
        break;
      }
      default:
        ADD_FAILURE() << "unexpected wire type " << (key & 7);
        return decoded;
    }
  }
  return decoded;
}

std::vector<Decoded> Decoded::messages(uint32_t field) const {
  std::vector<Decoded> result;
  auto [first, last] = bytes.equal_range(field);
  for (auto it = first; it != last; ++it) result.push_back(decode(it->second));
  return result;
}

std::vector<uint64_t> Decoded::packed(uint32_t field) const {
  std::vector<uint64_t> values;
  auto [first, last] = bytes.equal_range(field);
  for (auto it = first; it != last; ++it)
    for (size_t at = 0; at < it->second.size();) values.push_back(read_varint(it->second, at));
  return values;
}

extern "C" __attribute__((noinline)) uint64_t pprof_test_allocating_function() {
  return reinterpret_cast<uint64_t>(__builtin_return_address(0));
}

TEST(ProtoWriter, EncodesVarintsAndLengthDelimitedFieldsAsTheWireFormatSays) {
  ProtoWriter writer;
  writer.varint_field(1, 150);  // the protobuf documentation's example: 08 96 01
  writer.bytes_field(2, "testing");
  writer.packed_field(4, {3, 270});
  EXPECT_EQ(writer.data(), std::string("\x08\x96\x01"
                                       "\x12\x07testing"
                                       "\x22\x03\x03\x8e\x02",
                                       17));
}

TEST(Pprof, ProfileCarriesSampleTypesValuesFramesAndLabels) {
  // A return address inside this test binary's own function, so the symbolizer names it.
  uint64_t inside = reinterpret_cast<uint64_t>(&pprof_test_allocating_function) + 1;
  StackReport report;
  report.name = "outstanding_allocations";
  StackEntry leaky;
  leaky.stack.pid = getpid();
  leaky.stack.user = {inside + 1};
  leaky.comm = "unit";
  leaky.values = {{"bytes", 4096}, {"allocations", 2}, {"stack_id", 7}};
  leaky.labels = {{"verdict", "LEAKED"}};
  StackEntry other;
  other.stack.pid = getpid();
  other.stack.user = {inside + 1};
  other.values = {{"bytes", 100}, {"allocations", 1}, {"leaked_bytes", 100}};
  report.entries = {leaky, other};

  symbols::StackSymbolizer symbolizer;
  Decoded profile = decode(encode_pprof(report, symbolizer, 1234));
  std::vector<std::string> strings;
  for (auto [it, last] = profile.bytes.equal_range(6); it != last; ++it) strings.push_back(it->second);
  ASSERT_FALSE(strings.empty());
  EXPECT_EQ(strings[0], "");
  auto text = [&](uint64_t index) { return index < strings.size() ? strings[index] : "<bad index>"; };

  // Sample types: the union of the numeric values, *_id excluded.
  std::vector<std::pair<std::string, std::string>> types;
  for (const auto& type : profile.messages(1)) types.emplace_back(text(type.number(1)), text(type.number(2)));
  EXPECT_EQ(types, (std::vector<std::pair<std::string, std::string>>{
                       {"bytes", "bytes"}, {"allocations", "count"}, {"leaked_bytes", "bytes"}}));
  EXPECT_EQ(text(profile.number(14)), "bytes");
  EXPECT_EQ(profile.number(9), 1234u);

  auto samples = profile.messages(2);
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_EQ(samples[0].packed(2), (std::vector<uint64_t>{4096, 2, 0}));
  EXPECT_EQ(samples[1].packed(2), (std::vector<uint64_t>{100, 1, 100}));
  std::map<std::string, std::string> labels;
  for (const auto& label : samples[0].messages(3))
    labels[text(label.number(1))] =
        label.numbers.count(3) ? std::to_string(label.number(3)) : text(label.number(2));
  EXPECT_EQ(
      labels,
      (std::map<std::string, std::string>{
          {"stack_id", "7"}, {"comm", "unit"}, {"pid", std::to_string(getpid())}, {"verdict", "LEAKED"}}));

  // Both samples share the one location, which names this file's function.
  ASSERT_EQ(samples[0].packed(1).size(), 1u);
  EXPECT_EQ(samples[0].packed(1), samples[1].packed(1));
  auto locations = profile.messages(4);
  ASSERT_EQ(locations.size(), 1u);
  EXPECT_EQ(locations[0].number(1), samples[0].packed(1)[0]);
  auto lines = locations[0].messages(4);
  ASSERT_EQ(lines.size(), 1u);
  auto functions = profile.messages(5);
  ASSERT_EQ(functions.size(), 1u);
  EXPECT_EQ(functions[0].number(1), lines[0].number(1));
  EXPECT_EQ(text(functions[0].number(2)), "pprof_test_allocating_function");
  EXPECT_NE(text(functions[0].number(4)).find("pprof_test.cpp"), std::string::npos);
  auto mappings = profile.messages(3);
  ASSERT_EQ(mappings.size(), 1u);
  EXPECT_EQ(mappings[0].number(1), locations[0].number(2));
  EXPECT_EQ(mappings[0].number(7), 1u) << "has_functions: pprof must not symbolize again";
}

TEST(Pprof, InlinedFunctionsAreLinesOfOneLocationInnermostFirstAndTruncationIsTheRoot) {
  // A return address in inlined_call::callee()'s code, which is inlined into caller().
  inlined_call::Site site = inlined_call::caller();
  StackReport report;
  report.name = "stacks";
  StackEntry entry;
  entry.stack.pid = getpid();
  entry.stack.user = {reinterpret_cast<uint64_t>(&inlined_call::return_address_of_call), site.return_address};
  entry.stack.user_truncated = true;
  entry.values = {{"bytes", 64}};
  report.entries = {entry};

  symbols::StackSymbolizer symbolizer;
  Decoded profile = decode(encode_pprof(report, symbolizer, 1));
  std::vector<std::string> strings;
  for (auto [it, last] = profile.bytes.equal_range(6); it != last; ++it) strings.push_back(it->second);
  std::map<uint64_t, std::string> function_names;
  for (const auto& function : profile.messages(5))
    function_names[function.number(1)] = strings.at(function.number(2));
  std::map<uint64_t, Decoded> locations;
  for (const auto& location : profile.messages(4)) locations[location.number(1)] = location;

  auto samples = profile.messages(2);
  ASSERT_EQ(samples.size(), 1u);
  // Leaf first: the entry of return_address_of_call(), the inlined call, the truncation marker.
  std::vector<uint64_t> location_ids = samples[0].packed(1);
  ASSERT_EQ(location_ids.size(), 3u);
  auto lines_of = [&](uint64_t location_id) {
    std::vector<std::pair<std::string, uint64_t>> lines;
    for (const auto& line : locations.at(location_id).messages(4))
      lines.emplace_back(function_names.at(line.number(1)), line.number(2));
    return lines;
  };
  ASSERT_EQ(lines_of(location_ids[0]).size(), 1u);
  EXPECT_EQ(lines_of(location_ids[0])[0].first, "memscope::inlined_call::return_address_of_call()");
  EXPECT_EQ(locations.at(location_ids[1]).number(3), site.return_address);
  EXPECT_EQ(lines_of(location_ids[1]),
            (std::vector<std::pair<std::string, uint64_t>>{
                {inlined_call::kCallee, static_cast<uint64_t>(site.callee_line)},
                {inlined_call::kCaller, static_cast<uint64_t>(site.caller_line)}}));
  EXPECT_EQ(lines_of(location_ids[2]), (std::vector<std::pair<std::string, uint64_t>>{{"[truncated]", 0}}));
}

TEST(Pprof, FileIsGzipAndReplacedAtomically) {
  char directory[] = "/tmp/memscope-pprof-XXXXXX";
  ASSERT_NE(mkdtemp(directory), nullptr);
  std::string path = std::string(directory) + "/profile.pb.gz";
  write_gzip_file_atomically(path, "first");
  write_gzip_file_atomically(path, std::string(100000, 'x'));
  gzFile file = gzopen(path.c_str(), "rb");
  ASSERT_NE(file, nullptr);
  std::string content(200000, '\0');
  int read = gzread(file, content.data(), static_cast<unsigned>(content.size()));
  gzclose(file);
  EXPECT_EQ(read, 100000);
  EXPECT_EQ(access((path + ".tmp").c_str(), F_OK), -1) << "the temporary file must be gone";
  unlink(path.c_str());
  rmdir(directory);
}

// Root memscope writing --pprof into a directory others can write to: a symlink planted at the name a
// temporary file would have is neither written through nor replaced.
TEST(Pprof, PlantedSymlinkAtTheTemporaryNameIsNotWrittenThrough) {
  char directory[] = "/tmp/memscope-pprof-XXXXXX";
  ASSERT_NE(mkdtemp(directory), nullptr);
  std::string path = std::string(directory) + "/profile.pb.gz";
  std::string victim = std::string(directory) + "/victim";
  {
    std::ofstream out(victim);
    out << "precious";
  }
  ASSERT_EQ(symlink(victim.c_str(), (path + ".tmp").c_str()), 0);
  write_gzip_file_atomically(path, "profile");
  std::ifstream in(victim);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "precious");
  struct stat status {};
  ASSERT_EQ(lstat(path.c_str(), &status), 0);
  EXPECT_TRUE(S_ISREG(status.st_mode));
  gzFile file = gzopen(path.c_str(), "rb");
  ASSERT_NE(file, nullptr);
  char buffer[64] = {};
  int read = gzread(file, buffer, sizeof(buffer));
  gzclose(file);
  EXPECT_EQ(std::string(buffer, read > 0 ? static_cast<size_t>(read) : 0), "profile");
  unlink((path + ".tmp").c_str());
  unlink(victim.c_str());
  unlink(path.c_str());
  rmdir(directory);
}

}  // namespace
}  // namespace memscope::output
