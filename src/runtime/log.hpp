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
  if (verbosity() > 0) {
    fmt::print(stderr, "memscope: ");
    fmt::print(stderr, format, std::forward<Args>(args)...);
    fmt::print(stderr, "\n");
  }
}

template <typename... Args>
void warning(fmt::format_string<Args...> format, Args&&... args) {
  fmt::print(stderr, "memscope: warning: ");
  fmt::print(stderr, format, std::forward<Args>(args)...);
  fmt::print(stderr, "\n");
}

}  // namespace memscope::log
