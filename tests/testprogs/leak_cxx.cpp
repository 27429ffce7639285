// Loads liballoc_new.so (path in argv[1]) with dlopen and calls leak_widgets(argv[2]): 4008-byte
// widgets and one 50021-byte buffer leak through operator new/new[] inside the library. A new[] /
// delete[] pair in main must not be outstanding. Prints only errors (to stderr).
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: leak_cxx LIBALLOC_NEW.SO COUNT\n");
    return 2;
  }
  int* scratch = new int[5003];  // 20012 bytes, freed
  scratch[0] = 1;
  delete[] scratch;
  void* library = dlopen(argv[1], RTLD_NOW);
  if (!library) {
    std::fprintf(stderr, "dlopen: %s\n", dlerror());
    return 1;
  }
  auto leak_widgets = reinterpret_cast<void (*)(int)>(dlsym(library, "leak_widgets"));
  if (!leak_widgets) {
    std::fprintf(stderr, "dlsym: %s\n", dlerror());
    return 1;
  }
  leak_widgets(std::atoi(argv[2]));
  return 0;
}
