#include "runtime/tracefs.hpp"

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/log.hpp"

namespace memscope::tracefs {
namespace {

bool has_events(const std::string& dir) { return access((dir + "/events").c_str(), F_OK) == 0; }

struct State {
  bool resolved = false;
  bool mounted_by_us = false;
  std::optional<std::string> root;
  std::string why;
};

State& state() {
  static State s;
  return s;
}

}  // namespace

std::optional<std::string> root(std::string* why) {
  State& s = state();
  if (!s.resolved) {
    s.resolved = true;
    for (const char* candidate : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
      if (has_events(candidate)) {
        s.root = candidate;
        break;
      }
    }
    if (!s.root) {
      const char* target = "/sys/kernel/tracing";
      if (mount("tracefs", target, "tracefs", 0, nullptr) == 0 && has_events(target)) {
        s.root = target;
        s.mounted_by_us = true;
        log::verbose("tracefs was not mounted; mounted it at {}", target);
      } else {
        s.why = fmt::format("tracefs is not mounted and mounting it at {} failed: {}", target,
                            std::strerror(errno));
      }
    }
  }
  if (!s.root && why) *why = s.why;
  return s.root;
}

bool mounted_by_us() { return state().mounted_by_us; }

bool event_exists(const std::string& category_and_name) {
  auto base = root();
  if (!base) return false;
  auto colon = category_and_name.find(':');
  if (colon == std::string::npos) return false;
  std::string path = *base + "/events/" + category_and_name.substr(0, colon) + "/" +
                     category_and_name.substr(colon + 1) + "/id";
  return access(path.c_str(), R_OK) == 0;
}

}  // namespace memscope::tracefs
