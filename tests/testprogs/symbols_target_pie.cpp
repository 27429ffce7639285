// PIE executable built with -g for the symbolizer tests. Reports, on stdout:
//   record <label> <entry address> <return address inside the function> <line>
//   vdso <address of __vdso_clock_gettime>
//   ready
// and then serves commands from stdin, one per line, until EOF:
//   dlopen <path>   loads a library built from symbols_target_split.c and reports its functions
// Each function's signature and its record() call share one line, so both the entry and the call site
// map to that line.
// A function's signature and its record() call must stay on one line:
// clang-format off
#include <dlfcn.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <set>
#include <string>

extern "C" typedef void (*symbols_target_record)(const char* label, void* entry, int line);
extern "C" int symbols_lib_entry(int value, symbols_target_record record);
extern "C" int nodebug_function(int value, symbols_target_record record);

namespace {
std::set<std::string> recorded;

// In the Itanium C++ ABI a pointer to a non-virtual member function starts with the function's address.
template <typename Method>
void* method_address(Method method) {
  void* address = nullptr;
  std::memcpy(&address, &method, sizeof address);
  return address;
}
}  // namespace

extern "C" __attribute__((noinline)) void record(const char* label, void* entry, int line) {
  if (!recorded.insert(label).second) return;
  std::printf("record %s %p %p %d\n", label, entry, __builtin_return_address(0), line);
}

extern "C" __attribute__((noinline)) int fibonacci(int n) { record("fibonacci", reinterpret_cast<void*>(&fibonacci), __LINE__);
  return n < 2 ? n : fibonacci(n - 1) + fibonacci(n - 2);
}

__attribute__((noinline)) static int local_helper(int value) { record("local_helper", reinterpret_cast<void*>(&local_helper), __LINE__);
  return value + 2;
}

namespace memscope_test {
namespace inner {

__attribute__((noinline)) long namespaced_function(long value) { record("namespaced_function", reinterpret_cast<void*>(&namespaced_function), __LINE__);
  return value * 3;
}

}  // namespace inner

template <typename T>
__attribute__((noinline)) T twice(T value) { record("twice", reinterpret_cast<void*>(&twice<T>), __LINE__);
  return value + value;
}

class Widget {
 public:
  __attribute__((noinline)) int compute(int value) const;
};

__attribute__((noinline)) int Widget::compute(int value) const { record("widget_compute", method_address(&Widget::compute), __LINE__);
  return value * 11;
}

}  // namespace memscope_test

int main() {
  memscope_test::Widget widget;
  long sum = fibonacci(6) + local_helper(1) + memscope_test::inner::namespaced_function(2) +
             memscope_test::twice(3) + widget.compute(4) + symbols_lib_entry(5, record) + nodebug_function(6, record);
  std::printf("sum %ld\n", sum);

  // glibc registers the vdso as a loaded object under its soname.
  if (void* vdso = dlopen("linux-vdso.so.1", RTLD_LAZY | RTLD_NOLOAD)) {
    if (void* clock_gettime_address = dlsym(vdso, "__vdso_clock_gettime"))
      std::printf("vdso %p\n", clock_gettime_address);
  }
  std::printf("ready\n");
  std::fflush(stdout);

  std::string command;
  while (std::getline(std::cin, command)) {
    if (command.rfind("dlopen ", 0) == 0) {
      std::string path = command.substr(7);
      void* library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      auto split_function = library ? reinterpret_cast<int (*)(int, symbols_target_record)>(dlsym(library, "split_function")) : nullptr;
      if (split_function == nullptr) {
        std::printf("error %s\n", dlerror());
      } else {
        recorded.clear();
        split_function(3, record);
      }
    }
    std::printf("ready\n");
    std::fflush(stdout);
  }
  return 0;
}
