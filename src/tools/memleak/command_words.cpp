#include "tools/memleak/command_words.hpp"

#include <fmt/format.h>

#include <string>
#include <string_view>
#include <vector>

#include "runtime/result.hpp"

namespace memscope::memleak {

Result<std::vector<std::string>> split_command_words(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;  // a word has started, even if it is still empty ("" or '')
  size_t i = 0;
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\n'; };
  while (i < text.size()) {
    char c = text[i];
    if (blank(c)) {
      if (in_word) {
        words.push_back(word);
        word.clear();
        in_word = false;
      }
      i++;
      continue;
    }
    if (c == '\\') {
      if (i + 1 >= text.size()) return Error{"the command line ends with a lone backslash"};
      if (text[i + 1] != '\n') {
        word += text[i + 1];
        in_word = true;
      }
      i += 2;
      continue;
    }
    if (c == '\'') {
      size_t close = text.find('\'', i + 1);
      if (close == std::string_view::npos)
        return Error{fmt::format("unterminated single quote in the command line at offset {}", i)};
      word.append(text.substr(i + 1, close - i - 1));
      in_word = true;
      i = close + 1;
      continue;
    }
    if (c == '"') {
      size_t j = i + 1;
      for (;; j++) {
        if (j >= text.size())
          return Error{fmt::format("unterminated double quote in the command line at offset {}", i)};
        char d = text[j];
        if (d == '"') break;
        if (d == '\\' && j + 1 < text.size()) {
          char next = text[j + 1];
          if (next == '"' || next == '\\' || next == '$' || next == '`') {
            word += next;
            j++;
            continue;
          }
          if (next == '\n') {
            j++;
            continue;
          }
        }
        word += d;
      }
      in_word = true;
      i = j + 1;
      continue;
    }
    word += c;
    in_word = true;
    i++;
  }
  if (in_word) words.push_back(word);
  return words;
}

}  // namespace memscope::memleak
