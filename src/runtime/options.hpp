// Options every tool shares (filters, interval/count/duration, output format), with the letters
// BCC users know. A tool that needs one of those letters for itself (memleak's -t, -T, -c) gives
// the common option up to its long form.
#pragma once

#include <cstdint>
#include <set>
#include <string>

namespace CLI {
class App;
}

namespace memscope {

struct CommonOptions {
  int pid = 0;
  int tid = 0;
  std::string comm;
  std::string cgroup;
  int64_t uid = -1;
  double interval = 0;  // seconds; 0 = report only at exit
  int count = 0;        // number of intervals; 0 = unlimited
  double duration = 0;  // seconds; 0 = until Ctrl-C / target exit
  bool timestamps = false;
  bool json = false;
  bool folded = false;
  std::string pprof_path;  // --pprof FILE: stack reports also as a pprof profile
  int verbose = 0;
  std::string probe_mode;
};

// Which common options a tool takes.
struct CommonOptionSet {
  bool pid = true;
  bool tid = true;
  bool comm = true;
  bool cgroup = true;
  bool uid = true;
  bool interval = false;  // positional [interval [count]] as in BCC
  bool duration = true;
  bool timestamps = true;
  bool folded = false;  // stack-aggregating tools
  double default_interval = 0;
  std::set<char> reserved_letters;  // letters the tool uses for its own options
};

void add_common_options(CLI::App& app, CommonOptions& options, const CommonOptionSet& set);

// One clear line for the bad inputs every tool shares: nonexistent PID, unreadable cgroup, …
// Throws FatalError.
void validate_common_options(const CommonOptions& options);

}  // namespace memscope
