/* Shared library built without -g and stripped to .dynsym for the symbolizer tests: names must come
   from the dynamic symbol table alone, and no source lines may be invented. */
typedef void (*symbols_target_record)(const char* label, void* entry, int line);

__attribute__((noinline)) int nodebug_function(int value, symbols_target_record record) {
  record("nodebug_function", (void*)&nodebug_function, __LINE__);
  return value + 7;
}
