// memleak -c "command args…": the command line split into words the way a POSIX shell splits
// them, without running a shell (no expansions, no redirections, no variables), so the traced
// process is the command itself and its argv is what the user typed.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>
#include <vector>

#include "runtime/result.hpp"

namespace memscope::memleak {

// Quoting as in the shell's token recognition (POSIX 2.2):
//   'single quotes'  keep everything literally, up to the next single quote;
//   "double quotes"  keep everything literally except \" \\ \$ \` and backslash-newline;
//   backslash        outside quotes makes the next character literal (backslash-newline vanishes);
//   blanks           (space, tab, newline) outside quotes separate words.
// Quotes join with adjacent text ("a"'b'c is one word abc); "" and '' make an empty word.
Result<std::vector<std::string>> split_command_words(std::string_view text);

}  // namespace memscope::memleak
