// Names of kernel enum values and tracepoint prototypes, read from the running kernel's BTF so that
// decoding follows the kernel (enum migrate_reason gained MR_DAMON after 6.1; mm_migrate_pages
// gained an argument), with a built-in table for kernels without BTF. Shared by migrate and compact.
#pragma once

#include <bpf/btf.h>

#include <cctype>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "runtime/kernel_btf.hpp"
#include "runtime/kernel_features.hpp"

namespace memscope::kernel_enum {

// value → enumerator name ("MR_COMPACTION") of `enum <name>` in kernel BTF; empty when absent.
inline std::map<int64_t, std::string> values_of(const std::string& enum_name) {
  std::map<int64_t, std::string> values;
  const KernelBtf* btf = system_kernel_features().kernel_btf();
  if (!btf) return values;
  int id = btf->find(enum_name, BTF_KIND_ENUM);
  if (id <= 0) return values;
  const struct btf_type* type = btf->type(id);
  const struct btf_enum* entries = btf_enum(type);
  for (int i = 0; i < btf_vlen(type); i++) values[entries[i].val] = btf->name(entries[i].name_off);
  return values;
}

// "MR_NUMA_MISPLACED" with prefix "MR_" → "numa_misplaced".
inline std::string lowercase_without_prefix(std::string_view name, std::string_view prefix) {
  if (name.substr(0, prefix.size()) == prefix) name.remove_prefix(prefix.size());
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

// Number of arguments of a BTF tracepoint (without the leading context pointer), from its
// btf_trace_<name> typedef; nullopt without BTF or tracepoint.
inline std::optional<int> tracepoint_arg_count(const std::string& tracepoint) {
  const KernelBtf* btf = system_kernel_features().kernel_btf();
  if (!btf) return std::nullopt;
  int id = btf->find("btf_trace_" + tracepoint, BTF_KIND_TYPEDEF);
  if (id <= 0) return std::nullopt;
  const struct btf_type* type = btf->type(btf->resolve(id));
  if (!type || !btf_is_ptr(type)) return std::nullopt;
  type = btf->type(type->type);
  if (!type || !btf_is_func_proto(type)) return std::nullopt;
  return btf_vlen(type) - 1;
}

}  // namespace memscope::kernel_enum
