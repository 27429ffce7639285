// The kernel's symbol table from /proc/kallsyms: text symbols sorted by address, each with the module
// it belongs to. Parsing takes a stream so that it can be tested on fixtures.
#pragma once

#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace memscope::symbols {

struct KernelSymbol {
  uint64_t address = 0;
  std::string_view name;
  std::string_view module;  // empty for the core kernel image, else e.g. "ext4" or "bpf"
};

class KernelSymbolTable {
 public:
  static KernelSymbolTable parse(std::istream& kallsyms);
  // An empty table when /proc/kallsyms cannot be read.
  static KernelSymbolTable load();

  // The symbol an address belongs to: the nearest one at or below it (kallsyms has no sizes).
  std::optional<KernelSymbol> find(uint64_t address) const;
  // kallsyms lists every address as 0 to readers that kernel.kptr_restrict (or a missing CAP_SYSLOG)
  // does not trust; the names are then useless for symbolization.
  bool addresses_hidden() const { return addresses_hidden_; }
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    uint64_t address;
    uint32_t name_offset;
    uint32_t name_length;
    uint32_t module_index;  // into modules_; 0 is the core kernel
  };

  // All names in one buffer: kallsyms has a few hundred thousand entries.
  std::string names_;
  std::vector<std::string> modules_{""};
  std::vector<Entry> entries_;
  bool addresses_hidden_ = false;
};

}  // namespace memscope::symbols
