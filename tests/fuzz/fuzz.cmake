# libFuzzer targets (clang, -DMEMSCOPE_FUZZ=ON; scripts/test.sh builds them in build-asan with
# ASan+UBSan). Per target, two CTest tests labelled fuzz:
#   fuzz_<name>_corpus  replays the checked-in corpus tests/fuzz/corpus/<name> once;
#   fuzz_<name>         fuzzes for MEMSCOPE_FUZZ_SECONDS (default 25) from that corpus; what it finds
#                       goes to the build tree's fuzz/<name>, never into the source tree.
# scripts/fuzz.sh runs the targets for longer by hand (docs/hardening.md).
set(MEMSCOPE_FUZZ_SECONDS 25 CACHE STRING "Length of each bounded fuzz run in CTest")
set(MEMSCOPE_FUZZ_TARGETS elf_object usdt_notes cfi_table process_maps)
foreach(name ${MEMSCOPE_FUZZ_TARGETS})
  add_executable(fuzz_${name} ${CMAKE_CURRENT_LIST_DIR}/${name}_fuzz.cpp)
  target_compile_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
  target_link_libraries(fuzz_${name} PRIVATE memscope_runtime)
  set_target_properties(fuzz_${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
  set(corpus ${CMAKE_CURRENT_LIST_DIR}/corpus/${name})
  set(found ${CMAKE_BINARY_DIR}/fuzz/${name})
  file(MAKE_DIRECTORY ${found})
  # -timeout: one input may take this long (libdw on crafted DWARF); -rss_limit_mb: memory per run.
  set(limits -timeout=10 -rss_limit_mb=2048 -artifact_prefix=${CMAKE_BINARY_DIR}/fuzz/${name}-)
  add_test(NAME fuzz_${name}_corpus COMMAND fuzz_${name} ${limits} -runs=0 ${corpus})
  add_test(NAME fuzz_${name} COMMAND fuzz_${name} ${limits} -max_total_time=${MEMSCOPE_FUZZ_SECONDS}
    -print_final_stats=1 ${found} ${corpus})
  set_tests_properties(fuzz_${name}_corpus fuzz_${name} PROPERTIES LABELS fuzz TIMEOUT 300)
endforeach()
