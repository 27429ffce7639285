// Options every tool shares (filters, interval/count/duration, output format), with the letters
// BCC users know. A tool that needs one of those letters for itself (memleak's -t, -T, -c) gives
// the common option up to its long form.
#pragma once

#include <cstdint>
#include <set>
#include <string>

namespace CLI {
class App;
class Validator;
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
  // --stack-mode: how user stacks are walked. "dwarf": with the objects' call-frame information
  // (through code without frame pointers), falling back to the frame pointer where an object has
  // none; "fp": frame pointers only (bpf_get_stackid), as BCC does.
  std::string stack_mode = "dwarf";
  int stack_depth = 127;  // --stack-depth: frames a DWARF walk goes through before it marks the stack truncated
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
  bool user_stacks = false;  // the tool captures user stacks: --stack-mode
  // Kernel threads take part in what the tool traces (reclaim, compaction, migration); otherwise
  // -p/-t of a kernel thread is refused, for it has no user memory.
  bool kernel_threads = false;
  double default_interval = 0;
  std::set<char> reserved_letters;  // letters the tool uses for its own options
};

// Range checks for numeric options whose message says the accepted range in words ("interval: must
// be a number greater than 0, not -1"); CLI11's own spell out the largest double, 309 digits.
CLI::Validator positive_number();
CLI::Validator non_negative_number();

void add_common_options(CLI::App& app, CommonOptions& options, const CommonOptionSet& set);

// One clear line for the bad inputs every tool shares: nonexistent PID, a thread's TID given as -p,
// a kernel thread where only user memory is traced, unreadable cgroup, … Throws FatalError.
void validate_common_options(const CommonOptions& options, const CommonOptionSet& set);

}  // namespace memscope
