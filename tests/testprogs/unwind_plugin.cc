// libunwind_plugin.so: what unwind_dlopen loads with dlopen(), built -O2 -g without frame
// pointers. plugin_leak() leaks one 8001-byte strdup() through plugin_make_record(). (.cc so that
// the test program glob does not build it as an executable; extern "C" keeps the names plain.)
#include <cstring>

static char record[8001];
static void* volatile kept;

extern "C" {

__attribute__((noinline, noclone)) void plugin_make_record() {
  std::memset(record, 'r', sizeof(record) - 1);
  kept = strdup(record);
}

__attribute__((visibility("default"))) void plugin_leak() {
  plugin_make_record();
  kept = kept;  // after the call: not a tail call
}
}
