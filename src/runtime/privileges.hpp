#pragma once

#include <string>

namespace memscope {

// Empty when the process may load and attach BPF tracing programs; otherwise what it lacks.
std::string missing_bpf_privileges();

}  // namespace memscope
