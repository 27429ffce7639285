// Expected stacks from unwinders independent of memscope: gdb's backtrace and valgrind's
// allocation stacks, both driven by the DWARF call frame information of every module. The unwind
// tests state the frames they expect, check that the oracle shows them, and only then hold
// memscope's stack to them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace memscope::test::oracle {

// Function names, innermost first.
using Stack = std::vector<std::string>;

// One frame a test expects: any of these names (glibc reaches one function under several: strdup
// and __strdup, the gdb-only __GI___sbrk, ...). Names are compared by comparable_name().
struct ExpectedFrame {
  std::vector<std::string> names;
  std::string describe() const;  // "strdup" or "{getline|getdelim}"
};
using ExpectedStack = std::vector<ExpectedFrame>;  // innermost first
std::string describe(const ExpectedStack& expected);  // "strdup <- make_label <- main"

// The part of a function name that every unwinder spells alike: without parameter list, ABI tag
// ([abi:cxx11]), symbol version (@@GLIBC_2.34), glibc's internal __GI_ prefix, and leading
// underscores.
std::string comparable_name(const std::string& function);

// Empty when `stack` holds the expected frames in that order (other frames may come between
// them); otherwise the first expected frame that is missing.
std::string first_missing_frame(const Stack& stack, const ExpectedStack& expected);

struct Run {
  Stack stack;        // empty when the oracle failed
  std::string error;  // why, with the oracle's output
};

// argv run under `gdb -batch` with stdin at /dev/null: `commands` run after the program stopped at
// `break_at` (a catchpoint or watchpoint and a continue, say), then `bt`, whose function names
// are the stack. "<signal handler called>" stands for the kernel's signal frame.
Run gdb_backtrace(const std::vector<std::string>& argv, const std::string& break_at,
                  const std::vector<std::string>& commands = {});

struct Block {
  uint64_t bytes = 0;   // of all blocks with this stack
  uint64_t blocks = 0;
  Stack stack;          // from the allocator (malloc, operator new…) out
};
struct Blocks {
  std::vector<Block> blocks;
  std::string error;
};
// The heap blocks argv still holds at exit (reachable or not), with their allocation stacks, from
// valgrind's memcheck (--xml). stdin is /dev/null.
Blocks valgrind_blocks(const std::vector<std::string>& argv);
// The one block whose stack holds `expected`, or nullptr.
const Block* find_block(const Blocks& blocks, const ExpectedStack& expected);
std::string describe(const Blocks& blocks);

}  // namespace memscope::test::oracle
