#include "stack_oracle.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "harness.hpp"

namespace memscope::test::oracle {
namespace {

// Where the parameter list starts: the first '(' outside template arguments, whose own
// parentheses ("(__gnu_cxx::_Lock_policy)2") are no parameter list.
size_t parameter_list_start(const std::string& name, size_t from = 0) {
  int depth = 0;
  for (size_t i = from; i < name.size(); i++) {
    if (name[i] == '<') depth++;
    if (name[i] == '>' && depth > 0) depth--;
    if (name[i] == '(' && depth == 0 && i > 0) return i;
  }
  return std::string::npos;
}

std::string trim(const std::string& text) {
  size_t begin = text.find_first_not_of(" \t");
  size_t end = text.find_last_not_of(" \t");
  return begin == std::string::npos ? "" : text.substr(begin, end - begin + 1);
}

std::string xml_unescape(std::string text) {
  const std::pair<const char*, const char*> entities[] = {
      {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}, {"&amp;", "&"}};
  for (const auto& [entity, character] : entities)
    for (size_t at = 0; (at = text.find(entity, at)) != std::string::npos; at++)
      text.replace(at, std::string(entity).size(), character);
  return text;
}

// The text of each <tag>…</tag> in `xml`, in order (valgrind's XML has no attributes).
std::vector<std::string> elements(const std::string& xml, const std::string& tag) {
  std::vector<std::string> found;
  std::string open = "<" + tag + ">", close = "</" + tag + ">";
  for (size_t at = 0; (at = xml.find(open, at)) != std::string::npos;) {
    size_t end = xml.find(close, at);
    if (end == std::string::npos) break;
    found.push_back(xml.substr(at + open.size(), end - at - open.size()));
    at = end + close.size();
  }
  return found;
}

std::string read_whole(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::string ExpectedFrame::describe() const {
  if (names.size() == 1) return names[0];
  std::string text = "{";
  for (const auto& name : names) text += (text.size() > 1 ? "|" : "") + name;
  return text + "}";
}

std::string describe(const ExpectedStack& expected) {
  std::string text;
  for (const auto& frame : expected) text += (text.empty() ? "" : " <- ") + frame.describe();
  return text;
}

std::string comparable_name(const std::string& function) {
  std::string name = function.substr(0, parameter_list_start(function));
  for (size_t at; (at = name.find("[abi:")) != std::string::npos;) {
    size_t end = name.find(']', at);
    name.erase(at, end == std::string::npos ? std::string::npos : end - at + 1);
  }
  name = name.substr(0, name.find('@'));
  if (name.starts_with("__GI_")) name.erase(0, 5);
  name.erase(0, name.find_first_not_of('_'));
  return trim(name);
}

std::string first_missing_frame(const Stack& stack, const ExpectedStack& expected) {
  size_t at = 0;
  for (const auto& frame : expected) {
    bool found = false;
    for (; at < stack.size() && !found; at++)
      for (const auto& name : frame.names)
        if (comparable_name(stack[at]) == comparable_name(name)) found = true;
    if (!found) return frame.describe();
  }
  return "";
}

Run gdb_backtrace(const std::vector<std::string>& argv, const std::string& break_at,
                  const std::vector<std::string>& commands) {
  // No debuginfod (no network here, and the answer must not depend on it), no ASLR to disable
  // (refused inside containers), breakpoints in libraries not yet loaded allowed.
  std::vector<std::string> gdb = {"/usr/bin/gdb", "-nx", "-batch", "-iex", "set debuginfod enabled off",
                                  "-ex", "set pagination off", "-ex", "set disable-randomization off",
                                  "-ex", "set breakpoint pending on", "-ex", "break " + break_at, "-ex", "run"};
  for (const auto& command : commands) gdb.insert(gdb.end(), {"-ex", command});
  gdb.insert(gdb.end(), {"-ex", "bt", "-ex", "kill", "--args"});
  gdb.insert(gdb.end(), argv.begin(), argv.end());
  Run result;
  if (access(gdb[0].c_str(), X_OK) != 0) {
    result.error = "gdb is not installed (Debian package gdb)";
    return result;
  }
  Finished finished = run(gdb, std::chrono::seconds(60));
  // "#1  0x… in grow_heap_here (bytes=…) at …", "#0  __brk (addr=…) at …", "#2  <signal handler called>"
  for (const auto& line : lines(finished.out)) {
    if (line.size() < 2 || line[0] != '#' || !isdigit(static_cast<unsigned char>(line[1]))) continue;
    std::string rest = trim(line.substr(line.find_first_of(" \t")));
    if (rest.starts_with("0x") && rest.find(" in ") != std::string::npos) rest = rest.substr(rest.find(" in ") + 4);
    if (rest.starts_with("<signal handler called>")) {
      result.stack.push_back("<signal handler called>");
      continue;
    }
    result.stack.push_back(trim(rest.substr(0, parameter_list_start(rest))));
  }
  if (result.stack.empty())
    result.error = fmt::format("gdb printed no backtrace (exit {}):\n{}{}", finished.exit_code, finished.out, finished.err);
  return result;
}

Blocks valgrind_blocks(const std::vector<std::string>& argv) {
  Blocks result;
  if (access("/usr/bin/valgrind", X_OK) != 0) {
    result.error = "valgrind is not installed (Debian package valgrind)";
    return result;
  }
  std::string xml_path = fmt::format("{}/memscope-oracle-{}.xml", std::filesystem::temp_directory_path().string(), getpid());
  std::vector<std::string> valgrind = {"/usr/bin/valgrind", "--leak-check=full", "--show-leak-kinds=all",
                                       "--num-callers=50", "--xml=yes", "--xml-file=" + xml_path};
  valgrind.insert(valgrind.end(), argv.begin(), argv.end());
  Finished finished = run(valgrind, std::chrono::seconds(60));
  std::string xml = read_whole(xml_path);
  std::filesystem::remove(xml_path);
  for (const auto& error : elements(xml, "error")) {
    auto kind = elements(error, "kind");
    if (kind.empty() || !kind[0].starts_with("Leak_")) continue;
    Block block;
    auto bytes = elements(error, "leakedbytes"), blocks = elements(error, "leakedblocks");
    if (!bytes.empty()) block.bytes = std::stoull(bytes[0]);
    if (!blocks.empty()) block.blocks = std::stoull(blocks[0]);
    for (const auto& stack : elements(error, "stack"))
      for (const auto& frame : elements(stack, "frame")) {
        auto function = elements(frame, "fn");
        block.stack.push_back(function.empty() ? "??" : xml_unescape(function[0]));
      }
    result.blocks.push_back(block);
  }
  if (result.blocks.empty())
    result.error = fmt::format("valgrind listed no heap blocks (exit {}):\n{}", finished.exit_code, finished.err);
  return result;
}

const Block* find_block(const Blocks& blocks, const ExpectedStack& expected) {
  for (const auto& block : blocks.blocks)
    if (first_missing_frame(block.stack, expected).empty()) return &block;
  return nullptr;
}

std::string describe(const Blocks& blocks) {
  std::string text;
  for (const auto& block : blocks.blocks) {
    text += fmt::format("{} B in {}:", block.bytes, block.blocks);
    for (const auto& function : block.stack) text += " " + function;
    text += "\n";
  }
  return text;
}

}  // namespace memscope::test::oracle
