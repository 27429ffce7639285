/* Shared library whose debug information is split into a separate file (.gnu_debuglink or build-id
   lookup); the stripped copy keeps only .dynsym, so split_local and the source lines can only come from
   the debug file. */
/* A function's signature and its record() call must stay on one line: */
/* clang-format off */
typedef void (*symbols_target_record)(const char* label, void* entry, int line);

__attribute__((noinline)) static int split_local(int value, symbols_target_record record) { record("split_local", (void*)&split_local, __LINE__);
  return value - 1;
}

__attribute__((noinline)) int split_function(int value, symbols_target_record record) { record("split_function", (void*)&split_function, __LINE__);
  return split_local(value, record) * 2;
}
