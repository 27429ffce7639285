// libunwind_plugin.so: what unwind_dlopen loads with dlopen(), built -O2 -g without frame
// pointers. plugin_leak() leaks one 8001-byte strdup() through plugin_make_record(). (.cc so that
// the test program glob does not build it as an executable; extern "C" keeps the names plain.)
#include <cstring>

static void* volatile kept;

extern "C" {

#ifndef UNWIND_PLUGIN_SECOND
static char record[8001];

__attribute__((noinline, noclone)) void plugin_make_record() {
  std::memset(record, 'r', sizeof(record) - 1);
  kept = strdup(record);
}

__attribute__((visibility("default"))) void plugin_leak() {
  plugin_make_record();
  kept = kept;  // after the call: not a tail call
}
#else
// libunwind_plugin_second.so: the same entry point with other code at the same offsets — another
// function, a bigger frame (other CFA rules) — leaking 8101 bytes through plugin_build_entry().
// unwind_dlopen swaps it in for the first plugin with dlclose()/dlopen(), which tends to map it
// where the first one was.
static char entry[8101];

__attribute__((noinline, noclone)) void plugin_build_entry(int fill) {
  volatile char scratch[256];
  for (unsigned i = 0; i < sizeof(scratch); i++) scratch[i] = static_cast<char>(fill + i);
  std::memset(entry, scratch[7], sizeof(entry) - 1);
  kept = strdup(entry);
}

__attribute__((visibility("default"))) void plugin_leak() {
  plugin_build_entry('e');
  kept = kept;  // after the call: not a tail call
}
#endif
}
