// What an oomkill record means, for the oomkill tool and `memscope serve`: the victim's and the
// trigger's commands, and the memory cgroup when the OOM was a cgroup's.
#pragma once

#include <string>

#include "oomkill.h"

struct oomkill;
namespace memscope::symbols {
class StackSymbolizer;
}

namespace memscope::oomkill_decoding {

struct OomKill {
  std::string triggered_comm;
  std::string victim_comm;  // "?" when unknown
  bool memcg_oom = false;
  std::string memcg;  // the cgroup path (or "cgroup id N" when it is gone); empty for a system OOM
};

OomKill decode(const oomkill_event& event, symbols::StackSymbolizer& symbolizer);

// Before load: the argument layout of mark_victim on this kernel.
void configure(::oomkill& skeleton);

}  // namespace memscope::oomkill_decoding
