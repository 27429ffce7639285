// Records, not print statements: a tool describes its fields once (name, header, type, width) and
// every sink renders any record from that description.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace memscope::output {

enum class FieldType {
  Int,         // signed integer
  UInt,        // unsigned integer
  Hex,         // unsigned integer, shown 0x… in text, number in JSON
  Float,       // shown with `precision` decimals
  String,
  DurationNs,  // nanoseconds; text shows milliseconds with `precision` decimals, JSON the ns
  Bytes,       // byte count; text shows it as is, JSON as a number
};

struct Field {
  std::string name;    // JSON key: stable, snake_case
  std::string header;  // text column header, as BCC/the book print it
  FieldType type = FieldType::String;
  int width = 0;       // text column width; 0 = natural
  bool left = false;   // left-align in text
  int precision = 2;
};

using Value = std::variant<int64_t, uint64_t, double, std::string>;

struct Schema {
  std::string name;  // record kind: "oom_kill", "mmap", …; JSON key "event"
  std::vector<Field> fields;
  // Optional sentence layout for text instead of columns, for tools whose BCC output is prose
  // (oomkill): fmt positional fields {0}, {1}, … receive the formatted values.
  std::string text_format;
};

}  // namespace memscope::output
