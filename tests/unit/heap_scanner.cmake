# The leak proof (src/tools/memleak/heap_scanner.cpp + process_stopper.cpp). Those files are compiled
# into the memscope binary with the memleak tool; the tiers that call them directly compile them too.
# Include this file at the end of tests/CMakeLists.txt (after integration_tests is defined).
# - unit_tests: heap_scanner_test.cpp needs nothing more (the marking and root policy are header-only).
# - integration_tests: memleak_scan_test.cpp calls scan_process() on real processes.
# - scan_bench (bench/scan_bench.cpp): scan rate and pause per GiB of heap.
set(MEMSCOPE_HEAP_SCANNER_SOURCES
  ${CMAKE_SOURCE_DIR}/src/tools/memleak/heap_scanner.cpp
  ${CMAKE_SOURCE_DIR}/src/tools/memleak/process_stopper.cpp)

if(TARGET integration_tests)
  target_sources(integration_tests PRIVATE ${MEMSCOPE_HEAP_SCANNER_SOURCES})
  target_include_directories(integration_tests PRIVATE ${CMAKE_SOURCE_DIR}/src)
endif()

if(EXISTS ${CMAKE_SOURCE_DIR}/bench/scan_bench.cpp)
  add_executable(scan_bench ${CMAKE_SOURCE_DIR}/bench/scan_bench.cpp ${MEMSCOPE_HEAP_SCANNER_SOURCES})
  target_include_directories(scan_bench PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(scan_bench PRIVATE fmt::fmt)
  set_target_properties(scan_bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
endif()
