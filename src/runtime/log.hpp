// Diagnostics go to stderr so that stdout stays machine-readable (--json, --folded).
#pragma once

#include <fmt/core.h>

#include <cstdio>

namespace memscope::log {

inline int& verbosity() {
  static int level = 0;
  return level;
}

template <typename... Args>
void verbose(fmt::format_string<Args...> format, Args&&... args) {
  // One write per line: threads (the stack service, start-up helpers) log too.
  if (verbosity() > 0) fmt::print(stderr, "memscope: {}\n", fmt::format(format, std::forward<Args>(args)...));
}

template <typename... Args>
void warning(fmt::format_string<Args...> format, Args&&... args) {
  fmt::print(stderr, "memscope: warning: {}\n", fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace memscope::log
