// libsampled_plugin.so: dlopened by sampled_attach while the sampler is injected, so that the
// redirection of objects loaded later is checked. (.cc so that the testprogs glob does not build
// it as an executable; the code is C.)
#include <cstdlib>
#include <cstring>

static void* volatile last;

extern "C" __attribute__((noinline)) void plugin_leak(int count) {
  for (int i = 0; i < count; i++) {
    void* block = malloc(5003);
    memset(block, 0x33, 5003);
    last = block;
  }
  last = nullptr;
}
