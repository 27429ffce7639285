// An owning pointer to a libbpf `struct btf`, for the tests that build BTF with libbpf's writer.
#pragma once

#include <bpf/btf.h>

#include <memory>

namespace memscope {

struct BtfDeleter {
  void operator()(struct btf* btf) const { btf__free(btf); }
};
using BtfPtr = std::unique_ptr<struct btf, BtfDeleter>;

}  // namespace memscope
