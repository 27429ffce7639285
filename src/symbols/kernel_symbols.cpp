#include "symbols/kernel_symbols.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <unordered_map>

namespace memscope::symbols {
namespace {

bool is_blank(char c) { return c == ' ' || c == '\t'; }

// A hand-written scan: string_view::find_first_of calls memchr per character, which made parsing the
// few hundred thousand kallsyms lines several times slower.
std::string_view next_field(std::string_view& rest) {
  size_t start = 0;
  while (start < rest.size() && is_blank(rest[start])) start++;
  size_t end = start;
  while (end < rest.size() && !is_blank(rest[end])) end++;
  std::string_view field = rest.substr(start, end - start);
  rest.remove_prefix(end);
  return field;
}

// Only code can appear on a stack: t/T are text, w/W weak text. Data, absolute and BSS symbols would
// otherwise claim the addresses between functions.
bool is_code_symbol(char type) { return type == 't' || type == 'T' || type == 'w' || type == 'W'; }

}  // namespace

KernelSymbolTable KernelSymbolTable::parse(std::istream& kallsyms) {
  KernelSymbolTable table;
  std::unordered_map<std::string, uint32_t> module_indices;
  bool any_nonzero = false;
  std::string line;
  while (std::getline(kallsyms, line)) {
    std::string_view rest(line);
    std::string_view address_text = next_field(rest);
    std::string_view type = next_field(rest);
    std::string_view name = next_field(rest);
    std::string_view module = next_field(rest);
    if (address_text.empty() || type.size() != 1 || name.empty() || !is_code_symbol(type[0])) continue;
    uint64_t address = 0;
    auto [end, error] =
        std::from_chars(address_text.data(), address_text.data() + address_text.size(), address, 16);
    if (error != std::errc() || end != address_text.data() + address_text.size()) continue;
    any_nonzero = any_nonzero || address != 0;

    uint32_t module_index = 0;
    if (module.size() > 2 && module.front() == '[' && module.back() == ']') {
      std::string module_name(module.substr(1, module.size() - 2));
      auto [position, inserted] =
          module_indices.try_emplace(module_name, static_cast<uint32_t>(table.modules_.size()));
      if (inserted) table.modules_.push_back(module_name);
      module_index = position->second;
    }
    table.entries_.push_back({address, static_cast<uint32_t>(table.names_.size()),
                              static_cast<uint32_t>(name.size()), module_index});
    table.names_.append(name);
  }
  table.addresses_hidden_ = !table.entries_.empty() && !any_nonzero;
  // Module symbols follow the core image in kallsyms but are not sorted among themselves. Among aliases
  // at one address the least decorated name is the one people know (schedule, not __schedule_alias).
  auto underscores = [&table](const Entry& entry) {
    std::string_view name = std::string_view(table.names_).substr(entry.name_offset, entry.name_length);
    return name.find_first_not_of('_');
  };
  std::stable_sort(table.entries_.begin(), table.entries_.end(), [&](const Entry& a, const Entry& b) {
    return a.address != b.address ? a.address < b.address : underscores(a) < underscores(b);
  });
  table.entries_.erase(std::unique(table.entries_.begin(), table.entries_.end(),
                                   [](const Entry& a, const Entry& b) { return a.address == b.address; }),
                       table.entries_.end());
  return table;
}

KernelSymbolTable KernelSymbolTable::load() {
  std::ifstream kallsyms("/proc/kallsyms");
  if (!kallsyms) return {};
  return parse(kallsyms);
}

std::optional<KernelSymbol> KernelSymbolTable::find(uint64_t address) const {
  if (addresses_hidden_) return std::nullopt;
  auto after = std::upper_bound(entries_.begin(), entries_.end(), address,
                                [](uint64_t value, const Entry& entry) { return value < entry.address; });
  if (after == entries_.begin()) return std::nullopt;
  const Entry& entry = *(after - 1);
  return KernelSymbol{entry.address, std::string_view(names_).substr(entry.name_offset, entry.name_length),
                      modules_[entry.module_index]};
}

}  // namespace memscope::symbols
