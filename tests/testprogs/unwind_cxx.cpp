// unwind_cxx: C++ allocations through libstdc++ (built without frame pointers) from named functions
// of a program built -O2 -g without frame pointers, each called once from main:
//   make_name()         a std::string appended to 100 characters at a time up to 3000: grown by
//                       libstdc++'s own (explicitly instantiated) std::string code
//   grow_vector()       3000 push_backs into a std::vector<int>  its last buffer, 4096 ints
//   make_shared_here()  std::make_shared of a 6000-byte array    control block and array together
// The objects are reachable to the end and never destroyed, so memleak's report at exit and
// valgrind's list them. Prints "ready" on stderr and waits for a line on stdin (go_signal.h),
// allocates, prints "allocated", waits again.
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "go_signal.h"

// Never destroyed: the blocks are outstanding when memleak reports at exit.
static auto& kept_name = *new std::string;
static auto& kept_numbers = *new std::vector<int>;
static auto& kept_shared = *new std::shared_ptr<std::array<char, 6000>>;

// noclone: the stacks must name these functions, not clones.
__attribute__((noinline, noclone)) void make_name() {
  for (int i = 0; i < 30; i++) kept_name.append(100, 'n');
}

__attribute__((noinline, noclone)) void grow_vector(int count) {
  for (int i = 0; i < count; i++) kept_numbers.push_back(i);
}

__attribute__((noinline, noclone)) void make_shared_here() {
  kept_shared = std::make_shared<std::array<char, 6000>>();
}

int main() {
  wait_for_go("ready");
  make_name();
  grow_vector(3000);
  make_shared_here();
  wait_for_go("allocated");
  return 0;
}
