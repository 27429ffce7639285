// Classic tracepoints need tracefs. Fresh machines and containers often have it unmounted; we
// mount it (and say so) rather than fail, and report precisely when that is impossible.
#pragma once

#include <optional>
#include <string>

namespace memscope::tracefs {

// The tracefs root, mounting it at /sys/kernel/tracing if nothing is mounted yet.
// Returns nullopt (with `why` filled) when tracefs can't be had.
std::optional<std::string> root(std::string* why = nullptr);

// True when memscope mounted tracefs itself during this run.
bool mounted_by_us();

bool event_exists(const std::string& category_and_name);

}  // namespace memscope::tracefs
