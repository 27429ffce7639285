// The unwind-table compiler against an independent oracle: binutils' readelf interprets the same CFI
// (--debug-dump=frames-interp) and prints the CFA, rbp and return-address rule of every row.
#include "symbols/cfi_table.hpp"

#include <fcntl.h>
#include <gelf.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>

#include <fmt/format.h>

#include "symbols/elf_object.hpp"

namespace memscope::symbols {
namespace {

const std::string kLibc = "/lib/x86_64-linux-gnu/libc.so.6";
const std::string kLibstdcxx = "/lib/x86_64-linux-gnu/libstdc++.so.6";
const std::string kLoader = "/lib64/ld-linux-x86-64.so.2";

// ---- The oracle ----

struct OracleRow {
  uint64_t pc = 0;
  std::string cfa;  // "rsp+16", "rbp+16", "exp", "r10+0"
  std::string rbp;  // "" when readelf shows no rbp column, "u", "c-16", ...
  std::string return_address;
};

struct OracleFde {
  uint64_t start = 0;
  uint64_t end = 0;
  bool signal_frame = false;  // its CIE's augmentation has 'S'
  std::vector<OracleRow> rows;
};

std::string command_output(const std::string& command) {
  std::unique_ptr<FILE, decltype(&pclose)> pipe(popen(command.c_str(), "r"), &pclose);
  if (!pipe) return {};
  std::string output;
  char buffer[65536];
  size_t count = 0;
  while ((count = fread(buffer, 1, sizeof(buffer), pipe.get())) > 0) output.append(buffer, count);
  return output;
}

// The whitespace-separated cells of a readelf table line; "r9 (r9)", a register saved in another
// register, is one cell.
std::vector<std::string> cells(const std::string& line) {
  std::istringstream stream(line);
  std::vector<std::string> result;
  for (std::string word; stream >> word;) {
    if (word.front() == '(' && !result.empty()) {
      result.back() += " " + word;
    } else {
      result.push_back(word);
    }
  }
  return result;
}

std::vector<OracleFde> readelf_frames(const std::string& path) {
  struct Cie {
    bool signal_frame = false;
    std::vector<std::string> columns;
    std::vector<std::string> last_row;
  };
  static const std::regex kCieLine(R"(^([0-9a-f]{8}) [0-9a-f]+ [0-9a-f]+ CIE "([^"]*)\")");
  static const std::regex kFdeLine(R"(^[0-9a-f]{8} [0-9a-f]+ [0-9a-f]+ FDE cie=([0-9a-f]+) pc=([0-9a-f]+)\.\.([0-9a-f]+))");
  static const std::regex kRowLine(R"(^[0-9a-f]{16} )");

  std::map<std::pair<int, std::string>, Cie> cies;  // by (section, offset)
  std::vector<OracleFde> fdes;
  int section = 0;
  Cie* cie = nullptr;
  OracleFde* fde = nullptr;
  Cie* fde_cie = nullptr;
  std::vector<std::string> columns;
  auto finish_fde = [&] {
    // An FDE without instructions of its own runs under its CIE's initial rules.
    if (fde && fde->rows.empty() && fde_cie && !fde_cie->last_row.empty()) {
      std::vector<std::string> row = fde_cie->last_row;
      row[0] = fmt::format("{:016x}", fde->start);
      columns = fde_cie->columns;
      OracleRow oracle_row{fde->start, row[1], "", ""};
      for (size_t i = 2; i < columns.size() && i < row.size(); ++i) {
        if (columns[i] == "rbp") oracle_row.rbp = row[i];
        if (columns[i] == "ra") oracle_row.return_address = row[i];
      }
      fde->rows.push_back(oracle_row);
    }
    fde = nullptr;
  };
  std::istringstream output(command_output("readelf --debug-dump=frames-interp '" + path + "' 2>/dev/null"));
  for (std::string line; std::getline(output, line);) {
    std::smatch match;
    if (line.rfind("Contents of the", 0) == 0) {
      finish_fde();
      cie = nullptr;
      ++section;
    } else if (std::regex_search(line, match, kCieLine)) {
      finish_fde();
      cie = &cies[{section, match[1].str()}];
      cie->signal_frame = match[2].str().find('S') != std::string::npos;
    } else if (std::regex_search(line, match, kFdeLine)) {
      finish_fde();
      cie = nullptr;
      auto found = cies.find({section, match[1].str()});
      fde_cie = found == cies.end() ? nullptr : &found->second;
      fdes.push_back({std::stoull(match[2].str(), nullptr, 16), std::stoull(match[3].str(), nullptr, 16),
                      fde_cie && fde_cie->signal_frame, {}});
      fde = &fdes.back();
    } else if (line.find("LOC") != std::string::npos && line.find("CFA") != std::string::npos) {
      columns = cells(line);
      if (cie) cie->columns = columns;
    } else if (std::regex_search(line, kRowLine)) {
      auto row = cells(line);
      if (cie) cie->last_row = row;
      if (!fde) continue;
      if (row.size() != columns.size()) {
        ADD_FAILURE() << "unparsed readelf row: " << line;
        continue;
      }
      OracleRow oracle_row{std::stoull(row[0], nullptr, 16), row[1], "", ""};
      for (size_t i = 2; i < columns.size(); ++i) {
        if (columns[i] == "rbp") oracle_row.rbp = row[i];
        if (columns[i] == "ra") oracle_row.return_address = row[i];
      }
      fde->rows.push_back(oracle_row);
    }
  }
  finish_fde();
  return fdes;
}

// FDEs that overlap another are left out: which of them libdw answers with is its choice.
std::vector<OracleFde> without_overlaps(std::vector<OracleFde> fdes) {
  std::erase_if(fdes, [](const OracleFde& fde) { return fde.start >= fde.end; });
  std::sort(fdes.begin(), fdes.end(), [](const OracleFde& a, const OracleFde& b) { return a.start < b.start; });
  std::vector<bool> overlapping(fdes.size(), false);
  uint64_t reach = 0;
  size_t reach_owner = 0;
  for (size_t i = 0; i < fdes.size(); ++i) {
    if (i > 0 && fdes[i].start < reach) overlapping[i] = overlapping[reach_owner] = true;
    if (fdes[i].end > reach) reach = fdes[i].end, reach_owner = i;
  }
  std::vector<OracleFde> kept;
  for (size_t i = 0; i < fdes.size(); ++i) {
    if (!overlapping[i]) kept.push_back(std::move(fdes[i]));
  }
  return kept;
}

std::optional<int64_t> offset_after(const std::string& text, const std::string& prefix) {
  if (text.rfind(prefix, 0) != 0) return std::nullopt;
  return std::stoll(text.substr(prefix.size()));
}

bool fits(int64_t value, int bits) {
  return value >= -(int64_t{1} << (bits - 1)) && value < (int64_t{1} << (bits - 1));
}

// What the compiled row must say where readelf shows `oracle`; an empty string when it does.
std::string mismatch(const OracleRow& oracle, const memscope_unwind_row& row) {
  const std::string seen = fmt::format("kind {} cfa {} rbp kind {} rbp {}", row.cfa_kind, row.cfa_offset, row.rbp_kind,
                                       row.rbp_offset);
  auto expect = [&](bool condition, std::string_view what) {
    return condition ? std::string{} : fmt::format("{}: readelf cfa {} rbp '{}' ra {}; compiled {}", what, oracle.cfa,
                                                   oracle.rbp, oracle.return_address, seen);
  };
  if (oracle.return_address == "u") return expect(row.cfa_kind == MEMSCOPE_CFA_END, "outermost frame");
  if (oracle.cfa == "exp") {
    // Expressions the walker runs are PLT stubs (checked on their own); the rest must be refused.
    return expect(row.cfa_kind == MEMSCOPE_CFA_PLT || row.cfa_kind == MEMSCOPE_CFA_NONE, "CFA expression");
  }
  if (oracle.return_address != "c-8") return expect(row.cfa_kind == MEMSCOPE_CFA_NONE, "return address elsewhere");
  auto rsp_offset = offset_after(oracle.cfa, "rsp+");
  auto rbp_offset = offset_after(oracle.cfa, "rbp+");
  if (!rsp_offset && !rbp_offset) return expect(row.cfa_kind == MEMSCOPE_CFA_NONE, "CFA on another register");
  const int64_t cfa_offset = rsp_offset ? *rsp_offset : *rbp_offset;
  auto rbp_slot = offset_after(oracle.rbp, "c");
  if (!fits(cfa_offset, 32) || (rbp_slot && !fits(*rbp_slot, 16))) {
    return expect(row.cfa_kind == MEMSCOPE_CFA_NONE, "offset too large");
  }
  if (auto problem = expect(row.cfa_kind == (rsp_offset ? MEMSCOPE_CFA_RSP : MEMSCOPE_CFA_RBP) &&
                                row.cfa_offset == cfa_offset,
                            "CFA");
      !problem.empty()) {
    return problem;
  }
  if (oracle.rbp.empty()) return expect(row.rbp_kind == MEMSCOPE_RBP_SAME, "rbp untouched");
  // readelf shows "u" both for DW_CFA_undefined and for a register not saved yet (same value).
  if (oracle.rbp == "u") {
    return expect(row.rbp_kind == MEMSCOPE_RBP_SAME || row.rbp_kind == MEMSCOPE_RBP_UNDEFINED, "rbp u");
  }
  if (rbp_slot) return expect(row.rbp_kind == MEMSCOPE_RBP_AT_CFA && row.rbp_offset == *rbp_slot, "rbp saved");
  return expect(row.rbp_kind == MEMSCOPE_RBP_UNDEFINED, "rbp elsewhere");
}

// Whether the rule readelf shows is one the walker cannot run, so that the compiler must have
// counted it. Which CFA expressions the walker runs is checked on its own; here the compiled row says.
bool walker_cannot_run(const OracleRow& oracle, const memscope_unwind_row& row) {
  if (oracle.return_address == "u") return false;
  if (oracle.cfa == "exp") return row.cfa_kind == MEMSCOPE_CFA_NONE;
  if (oracle.return_address != "c-8") return true;
  auto cfa_offset = offset_after(oracle.cfa, "rsp+");
  if (!cfa_offset) cfa_offset = offset_after(oracle.cfa, "rbp+");
  if (!cfa_offset || !fits(*cfa_offset, 32)) return true;
  if (oracle.rbp.empty() || oracle.rbp == "u") return false;
  auto rbp_slot = offset_after(oracle.rbp, "c");
  return !rbp_slot || !fits(*rbp_slot, 16);
}

struct Comparison {
  size_t unsupported_rows = 0;
  size_t rows_checked = 0;
  size_t gaps_checked = 0;
  std::vector<std::string> failures;
};

// Every readelf row against the compiled row covering its pc, and every end of CFI coverage
// against a NONE row.
Comparison compare_with_readelf(const CfiTable& table, const std::vector<OracleFde>& fdes) {
  Comparison comparison;
  auto fail = [&](uint64_t pc, const std::string& what) {
    comparison.failures.push_back(fmt::format("{:#x}: {}", pc, what));
  };
  for (const OracleFde& fde : fdes) {
    for (const OracleRow& oracle : fde.rows) {
      if (oracle.pc < fde.start || oracle.pc >= fde.end) continue;
      ++comparison.rows_checked;
      const memscope_unwind_row* row = find_unwind_row(table, oracle.pc);
      if (row == nullptr) {
        fail(oracle.pc, "no row");
      } else if (fde.signal_frame) {
        if (row->cfa_kind != MEMSCOPE_CFA_SIGNAL) fail(oracle.pc, "signal frame not SIGNAL");
      } else if (auto problem = mismatch(oracle, *row); !problem.empty()) {
        fail(oracle.pc, problem);
      } else if (walker_cannot_run(oracle, *row)) {
        ++comparison.unsupported_rows;
      }
    }
  }
  for (size_t i = 0; i < fdes.size(); ++i) {
    const bool next_is_adjacent = i + 1 < fdes.size() && fdes[i + 1].start <= fdes[i].end;
    if (next_is_adjacent) continue;
    ++comparison.gaps_checked;
    const memscope_unwind_row* row = find_unwind_row(table, fdes[i].end);
    if (row == nullptr || row->cfa_kind != MEMSCOPE_CFA_NONE) fail(fdes[i].end, "coverage does not stop");
  }
  return comparison;
}

// ---- Helpers ----

struct FileDescriptor {
  int fd = -1;
  explicit FileDescriptor(const std::string& path) : fd(open(path.c_str(), O_RDONLY | O_CLOEXEC)) {}
  ~FileDescriptor() {
    if (fd >= 0) close(fd);
  }
};

struct Compiled {
  Result<CfiTable> table;
  double milliseconds = 0;
};

Compiled compile_path(const std::string& path, const std::string& debug_path = {}, const CfiTableLimits& limits = {}) {
  FileDescriptor object(path);
  std::optional<FileDescriptor> debug;
  if (!debug_path.empty()) debug.emplace(debug_path);
  const auto start = std::chrono::steady_clock::now();
  Result<CfiTable> table = compile_cfi_table(object.fd, debug ? debug->fd : -1, limits);
  const std::chrono::duration<double, std::milli> elapsed = std::chrono::steady_clock::now() - start;
  return {std::move(table), elapsed.count()};
}

std::string read_file(const std::string& path) {
  std::ifstream stream(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(stream), std::istreambuf_iterator<char>()};
}

std::string write_temporary(const std::string& name, const std::string& contents) {
  const std::string path = testing::TempDir() + "cfi_table_test_" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
  return path;
}

// The file offset and size of a section, read with libelf.
std::pair<uint64_t, uint64_t> section_extent(const std::string& path, const std::string& wanted) {
  elf_version(EV_CURRENT);
  FileDescriptor file(path);
  Elf* elf = elf_begin(file.fd, ELF_C_READ, nullptr);
  std::pair<uint64_t, uint64_t> extent{0, 0};
  size_t names = 0;
  if (elf && elf_getshdrstrndx(elf, &names) == 0) {
    for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn; scn = elf_nextscn(elf, scn)) {
      GElf_Shdr header;
      const char* name = gelf_getshdr(scn, &header) ? elf_strptr(elf, names, header.sh_name) : nullptr;
      if (name && wanted == name) extent = {header.sh_offset, header.sh_size};
    }
  }
  elf_end(elf);
  return extent;
}

std::vector<OracleFde> signal_frames(const std::vector<OracleFde>& fdes) {
  std::vector<OracleFde> result;
  std::copy_if(fdes.begin(), fdes.end(), std::back_inserter(result), [](const OracleFde& fde) { return fde.signal_frame; });
  return result;
}

void report_size(const std::string& name, const CfiTable& table, double milliseconds) {
  const std::string line = fmt::format("{}: {} rows, {} bytes, {:.1f} ms ({} CFI ranges, {} unsupported, from {})", name,
                                       table.rows.size(), table.bytes(), milliseconds, table.fde_ranges,
                                       table.unsupported_rows, table.source);
  std::cout << "[ cfi size ] " << line << "\n";
  testing::Test::RecordProperty(name, line);
}

void expect_agrees_with_readelf(const std::string& path, const CfiTable& table, size_t minimum_rows) {
  const auto comparison = compare_with_readelf(table, without_overlaps(readelf_frames(path)));
  EXPECT_GE(comparison.rows_checked, minimum_rows) << path;
  EXPECT_GT(comparison.gaps_checked, 0u) << path;
  EXPECT_EQ(table.unsupported_rows, comparison.unsupported_rows) << path;
  EXPECT_TRUE(comparison.failures.empty())
      << path << ": " << comparison.failures.size() << " of " << comparison.rows_checked << " rows disagree, first: "
      << fmt::format("{}", fmt::join(comparison.failures.begin(),
                                     comparison.failures.begin() + std::min<size_t>(10, comparison.failures.size()),
                                     "\n  "));
}

// ---- Tests ----

TEST(CfiTable, LibcAgreesWithReadelf) {
  auto compiled = compile_path(kLibc);
  ASSERT_TRUE(compiled.table.ok()) << compiled.table.error().message;
  const CfiTable& table = *compiled.table;
  EXPECT_EQ(table.source, ".eh_frame");
  EXPECT_TRUE(std::is_sorted(table.rows.begin(), table.rows.end(),
                             [](const auto& a, const auto& b) { return a.pc <= b.pc; }));
  expect_agrees_with_readelf(kLibc, table, 2000);
}

TEST(CfiTable, LibstdcxxAgreesWithReadelf) {
  auto compiled = compile_path(kLibstdcxx);
  ASSERT_TRUE(compiled.table.ok()) << compiled.table.error().message;
  expect_agrees_with_readelf(kLibstdcxx, *compiled.table, 2000);
}

// The dynamic loader: hand-written entry points (outermost frames) and rules on other registers.
TEST(CfiTable, LoaderAgreesWithReadelf) {
  auto compiled = compile_path(kLoader);
  ASSERT_TRUE(compiled.table.ok()) << compiled.table.error().message;
  expect_agrees_with_readelf(kLoader, *compiled.table, 1000);
  EXPECT_GT(compiled.table->unsupported_rows, 0u);
}

// The budget the BPF maps and the tracer's start-up can afford: all tables of a typical C++ process
// in a few MB, each compiled in far less than a second.
TEST(CfiTable, SizeAndTimeWithinBudget) {
  size_t total_bytes = 0;
  for (const auto& [name, path] : {std::pair{"libc.so.6", kLibc}, std::pair{"libstdc++.so.6", kLibstdcxx},
                                   std::pair{"cfi_target", std::string(CFI_TARGET)}}) {
    auto compiled = compile_path(path);
    ASSERT_TRUE(compiled.table.ok()) << compiled.table.error().message;
    report_size(name, *compiled.table, compiled.milliseconds);
    total_bytes += compiled.table->bytes();
    EXPECT_LT(compiled.milliseconds, 1000) << name;
  }
  EXPECT_LE(total_bytes, 8u << 20);
}

TEST(CfiTable, LibcPltStubsUseThePltRule) {
  auto compiled = compile_path(kLibc);
  ASSERT_TRUE(compiled.table.ok()) << compiled.table.error().message;
  size_t plt_rows = 0;
  for (const OracleFde& fde : without_overlaps(readelf_frames(kLibc))) {
    for (const OracleRow& oracle : fde.rows) {
      if (fde.signal_frame || oracle.cfa != "exp") continue;
      const memscope_unwind_row* row = find_unwind_row(*compiled.table, oracle.pc);
      ASSERT_NE(row, nullptr);
      EXPECT_EQ(row->cfa_kind, MEMSCOPE_CFA_PLT) << std::hex << oracle.pc;
      EXPECT_EQ(row->cfa_offset, 8);
      EXPECT_TRUE(row->plt_threshold == 10 || row->plt_threshold == 11) << int{row->plt_threshold};
      ++plt_rows;
    }
  }
  EXPECT_GE(plt_rows, 1u);
}

TEST(CfiTable, LibcSignalTrampolineReadsTheUcontext) {
  auto compiled = compile_path(kLibc);
  ASSERT_TRUE(compiled.table.ok()) << compiled.table.error().message;
  const auto trampolines = signal_frames(readelf_frames(kLibc));
  ASSERT_EQ(trampolines.size(), 1u);  // __restore_rt, its FDE starting one byte early
  for (uint64_t pc = trampolines[0].start; pc < trampolines[0].end; ++pc) {
    const memscope_unwind_row* row = find_unwind_row(*compiled.table, pc);
    ASSERT_NE(row, nullptr);
    EXPECT_EQ(row->cfa_kind, MEMSCOPE_CFA_SIGNAL) << std::hex << pc;
    // struct ucontext_t at rsp: uc_mcontext.gregs[] starts at 40; REG_RBP, REG_RSP, REG_RIP are 10, 15, 16.
    EXPECT_EQ(row->cfa_offset, 160);
    EXPECT_EQ(row->rbp_kind, MEMSCOPE_RBP_AT_CFA);
    EXPECT_EQ(row->rbp_offset, 120);
    EXPECT_EQ(row->rip_offset, 168);
  }
}

TEST(CfiTable, TestProgramAgreesWithReadelf) {
  auto compiled = compile_path(CFI_TARGET);
  ASSERT_TRUE(compiled.table.ok()) << compiled.table.error().message;
  const CfiTable& table = *compiled.table;
  expect_agrees_with_readelf(CFI_TARGET, table, 10);

  auto object = ElfObject::open_path(CFI_TARGET, {});
  ASSERT_TRUE(object);
  auto big_frame = object->symbol_address("big_frame");
  auto rbp_frame = object->symbol_address("rbp_frame");
  ASSERT_TRUE(big_frame && rbp_frame);
  auto rows_of = [&](uint64_t start) {
    std::vector<memscope_unwind_row> rows;
    for (const auto* row = find_unwind_row(table, start); row != table.rows.data() + table.rows.size() &&
                                                          row->cfa_kind != MEMSCOPE_CFA_NONE;
         ++row) {
      rows.push_back(*row);
    }
    return rows;
  };
  auto big_rows = rows_of(*big_frame);
  EXPECT_TRUE(std::any_of(big_rows.begin(), big_rows.end(), [](const auto& row) {
    return row.cfa_kind == MEMSCOPE_CFA_RSP && row.cfa_offset > 40000;
  })) << "the 40000-byte frame";
  auto rbp_rows = rows_of(*rbp_frame);
  EXPECT_TRUE(std::any_of(rbp_rows.begin(), rbp_rows.end(), [](const auto& row) {
    return row.cfa_kind == MEMSCOPE_CFA_RBP && row.cfa_offset == 16 && row.rbp_kind == MEMSCOPE_RBP_AT_CFA &&
           row.rbp_offset == -16;
  })) << "the frame addressed through rbp";
}

TEST(CfiTable, SeparateDebugFrameFillsWhatEhFrameLeavesOut) {
  auto debug_object = ElfObject::open_path(CFI_TARGET_STRIPPED_DEBUG, {});
  ASSERT_TRUE(debug_object);
  auto big_frame = debug_object->symbol_address("big_frame");
  ASSERT_TRUE(big_frame);

  auto without_debug = compile_path(CFI_TARGET_STRIPPED);
  ASSERT_TRUE(without_debug.table.ok()) << without_debug.table.error().message;
  EXPECT_EQ(without_debug.table->source, ".eh_frame");
  const auto* uncovered = find_unwind_row(*without_debug.table, *big_frame);
  ASSERT_NE(uncovered, nullptr);
  EXPECT_EQ(uncovered->cfa_kind, MEMSCOPE_CFA_NONE);

  auto with_debug = compile_path(CFI_TARGET_STRIPPED, CFI_TARGET_STRIPPED_DEBUG);
  ASSERT_TRUE(with_debug.table.ok()) << with_debug.table.error().message;
  EXPECT_EQ(with_debug.table->source, ".eh_frame + separate .debug_frame");
  auto fdes = readelf_frames(CFI_TARGET_STRIPPED);
  auto debug_fdes = readelf_frames(CFI_TARGET_STRIPPED_DEBUG);
  ASSERT_FALSE(debug_fdes.empty());
  fdes.insert(fdes.end(), debug_fdes.begin(), debug_fdes.end());
  const auto comparison = compare_with_readelf(*with_debug.table, without_overlaps(fdes));
  EXPECT_GE(comparison.rows_checked, 10u);
  EXPECT_TRUE(comparison.failures.empty()) << comparison.failures.size() << " disagree, first " << comparison.failures[0];
  const auto* covered = find_unwind_row(*with_debug.table, *big_frame);
  ASSERT_NE(covered, nullptr);
  EXPECT_EQ(covered->cfa_kind, MEMSCOPE_CFA_RSP);
}

TEST(CfiTable, CompressedDebugFrameGivesTheSameRows) {
  auto plain = compile_path(CFI_TARGET_STRIPPED, CFI_TARGET_STRIPPED_DEBUG);
  auto compressed = compile_path(CFI_TARGET_STRIPPED, CFI_TARGET_STRIPPED_COMPRESSED_DEBUG);
  ASSERT_TRUE(plain.table.ok() && compressed.table.ok());
  EXPECT_EQ(compressed.table->source, plain.table->source);
  ASSERT_EQ(plain.table->rows.size(), compressed.table->rows.size());
  EXPECT_EQ(0, std::memcmp(plain.table->rows.data(), compressed.table->rows.data(), plain.table->bytes()));
}

TEST(CfiTable, ImageInMemoryGivesTheSameRowsAsTheFile) {
  auto from_file = compile_path(kLibc);
  auto from_image = compile_cfi_table_from_image(read_file(kLibc));
  ASSERT_TRUE(from_file.table.ok() && from_image.ok());
  ASSERT_EQ(from_file.table->rows.size(), from_image->rows.size());
  EXPECT_EQ(0, std::memcmp(from_file.table->rows.data(), from_image->rows.data(), from_image->bytes()));
}

TEST(CfiTable, VdsoImage) {
  const auto* vdso = reinterpret_cast<const char*>(getauxval(AT_SYSINFO_EHDR));
  if (vdso == nullptr) GTEST_SKIP() << "no vDSO";
  // The vDSO's file image is its ELF headers' extent: section headers come last.
  const auto* header = reinterpret_cast<const Elf64_Ehdr*>(vdso);
  const size_t size = header->e_shoff + size_t{header->e_shnum} * header->e_shentsize;
  const auto start = std::chrono::steady_clock::now();
  auto table = compile_cfi_table_from_image(std::string_view(vdso, size));
  const std::chrono::duration<double, std::milli> elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(table.ok()) << table.error().message;
  EXPECT_EQ(table->source, ".eh_frame");
  EXPECT_GT(table->rows.size(), 2u);
  EXPECT_EQ(table->unsupported_rows, 0u);
  report_size("vdso", *table, elapsed.count());
}

TEST(CfiTable, ObjectsLinkedAbove4GiBAreRefused) {
  auto compiled = compile_path(CFI_TARGET_HIGH);
  ASSERT_FALSE(compiled.table.ok());
  EXPECT_NE(compiled.table.error().message.find("4 GiB"), std::string::npos) << compiled.table.error().message;
}

TEST(CfiTable, LimitsRefuseTheObject) {
  CfiTableLimits few_rows;
  few_rows.max_rows = 100;
  auto compiled = compile_path(kLibc, {}, few_rows);
  ASSERT_FALSE(compiled.table.ok());
  EXPECT_NE(compiled.table.error().message.find("rows"), std::string::npos) << compiled.table.error().message;

  CfiTableLimits small_sections;
  small_sections.max_section_bytes = 4096;
  compiled = compile_path(kLibc, {}, small_sections);
  ASSERT_FALSE(compiled.table.ok());
  EXPECT_NE(compiled.table.error().message.find(".eh_frame"), std::string::npos) << compiled.table.error().message;
}

TEST(CfiTable, EmptyAndNonElfFilesAreErrors) {
  EXPECT_FALSE(compile_path(write_temporary("empty", "")).table.ok());
  EXPECT_FALSE(compile_path(write_temporary("text", "#!/bin/sh\necho this is not an ELF object\n")).table.ok());
  EXPECT_FALSE(compile_path(write_temporary("short_elf", "\x7f" "ELF\x02\x01\x01")).table.ok());
  EXPECT_FALSE(compile_cfi_table_from_image("").ok());
}

// Damaged objects end in an error or a partial table, promptly.
TEST(CfiTable, DamagedObjectsDoNotCrash) {
  const std::string libc = read_file(kLibc);
  const auto [eh_frame_offset, eh_frame_size] = section_extent(kLibc, ".eh_frame");
  const auto [hdr_offset, hdr_size] = section_extent(kLibc, ".eh_frame_hdr");
  ASSERT_GT(eh_frame_size, 0u);
  ASSERT_GT(hdr_size, 0u);

  std::vector<std::pair<std::string, std::string>> damaged;
  damaged.emplace_back("truncated_half", libc.substr(0, libc.size() / 2));
  damaged.emplace_back("truncated_in_eh_frame", libc.substr(0, eh_frame_offset + eh_frame_size / 2));
  damaged.emplace_back("truncated_headers", libc.substr(0, 100));
  uint64_t state = 0x9e3779b97f4a7c15;  // a fixed seed: the same garbage every run
  auto garbage = [&state](std::string& bytes, uint64_t offset, uint64_t size) {
    for (uint64_t i = 0; i < size; ++i) {
      state ^= state << 13, state ^= state >> 7, state ^= state << 17;
      bytes[offset + i] = static_cast<char>(state);
    }
  };
  std::string eh_frame_garbage = libc;
  garbage(eh_frame_garbage, eh_frame_offset, eh_frame_size);
  damaged.emplace_back("eh_frame_garbage", eh_frame_garbage);
  std::string hdr_garbage = libc;
  garbage(hdr_garbage, hdr_offset, hdr_size);
  damaged.emplace_back("eh_frame_hdr_garbage", hdr_garbage);
  std::string both_garbage = eh_frame_garbage;
  garbage(both_garbage, hdr_offset, hdr_size);
  damaged.emplace_back("both_garbage", both_garbage);
  // Every fourth FDE-sized stretch damaged: most FDEs survive, their neighbours do not.
  std::string sparse_garbage = libc;
  for (uint64_t offset = 0; offset + 16 < eh_frame_size; offset += 256) garbage(sparse_garbage, eh_frame_offset + offset, 16);
  damaged.emplace_back("eh_frame_sparse_garbage", sparse_garbage);

  for (const auto& [name, contents] : damaged) {
    const std::string path = write_temporary(name, contents);
    auto compiled = compile_path(path);
    EXPECT_LT(compiled.milliseconds, 10'000) << name;
    if (compiled.table.ok()) {
      const auto& rows = compiled.table->rows;
      EXPECT_TRUE(std::is_sorted(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.pc <= b.pc; }))
          << name;
      std::cout << "[ damaged  ] " << name << ": " << rows.size() << " rows\n";
    } else {
      std::cout << "[ damaged  ] " << name << ": " << compiled.table.error().message << "\n";
    }
    auto from_image = compile_cfi_table_from_image(contents);
    EXPECT_EQ(from_image.ok(), compiled.table.ok()) << name;
    unlink(path.c_str());
  }
}

}  // namespace
}  // namespace memscope::symbols
