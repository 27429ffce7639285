# The symbolizer's unit tests and the programs they symbolize. Included from tests/CMakeLists.txt.
if(NOT DEFINED MEMSCOPE_SOURCE_DIR)
  set(MEMSCOPE_SOURCE_DIR ${CMAKE_SOURCE_DIR})
endif()
include(GoogleTest)
if(NOT TARGET GTest::gtest_main)
  find_package(GTest REQUIRED)
endif()

set(SYMBOLS_TESTPROGS_DIR ${MEMSCOPE_SOURCE_DIR}/tests/testprogs)
set(SYMBOLS_SPLIT_DIR ${CMAKE_CURRENT_BINARY_DIR}/symbols_split)

# The tests assert exact function boundaries and lines, so the programs' code generation is pinned
# here instead of following the build type: no inlining, no tail calls, frame pointers.
set(SYMBOLS_TARGET_DEBUG_OPTIONS -O0 -g -fno-inline -fno-omit-frame-pointer -fno-optimize-sibling-calls)

# A shared library with DWARF and C++ names.
add_library(symbols_target_lib SHARED ${SYMBOLS_TESTPROGS_DIR}/symbols_target_lib.cpp)
target_compile_options(symbols_target_lib PRIVATE ${SYMBOLS_TARGET_DEBUG_OPTIONS})

# A shared library without debug information, stripped down to .dynsym.
add_library(symbols_target_nodebug SHARED ${SYMBOLS_TESTPROGS_DIR}/symbols_target_nodebug.c)
target_compile_options(symbols_target_nodebug PRIVATE -O0 -g0)
# Linked with lld where it is installed: lld gives the code segment a virtual address different from its
# file offset, the layout that exposes a load bias guessed from the mapping start.
find_program(SYMBOLS_LLD NAMES ld.lld)
if(SYMBOLS_LLD)
  target_link_options(symbols_target_nodebug PRIVATE -fuse-ld=lld)
endif()
add_custom_command(TARGET symbols_target_nodebug POST_BUILD
  COMMAND ${CMAKE_STRIP} --strip-all $<TARGET_FILE:symbols_target_nodebug>
  VERBATIM)

# A PIE executable with DWARF, linked against both libraries.
add_executable(symbols_target_pie ${SYMBOLS_TESTPROGS_DIR}/symbols_target_pie.cpp)
target_compile_options(symbols_target_pie PRIVATE ${SYMBOLS_TARGET_DEBUG_OPTIONS} -fPIE)
target_link_options(symbols_target_pie PRIVATE -pie)
target_link_libraries(symbols_target_pie PRIVATE symbols_target_lib symbols_target_nodebug ${CMAKE_DL_LIBS})

# A static, non-PIE executable.
add_executable(symbols_target_static ${SYMBOLS_TESTPROGS_DIR}/symbols_target_static.c)
target_compile_options(symbols_target_static PRIVATE ${SYMBOLS_TARGET_DEBUG_OPTIONS} -fno-pie)
target_link_options(symbols_target_static PRIVATE -static -no-pie)

# Optimised code whose functions are inlined into one another: the one program built the way releases
# are (-O2, inlining on) instead of with the pinned options above.
add_executable(symbols_target_inline ${SYMBOLS_TESTPROGS_DIR}/symbols_target_inline.c)
target_compile_options(symbols_target_inline PRIVATE -O2 -g)

# A library whose debug information lives in a separate file: one stripped copy finds it through
# .gnu_debuglink (the debug file sits next to it), the other only through its build-id.
add_library(symbols_target_split_full SHARED ${SYMBOLS_TESTPROGS_DIR}/symbols_target_split.c)
target_compile_options(symbols_target_split_full PRIVATE ${SYMBOLS_TARGET_DEBUG_OPTIONS})
target_link_options(symbols_target_split_full PRIVATE -Wl,--build-id)
set(SYMBOLS_SPLIT_LIBRARY ${SYMBOLS_SPLIT_DIR}/libsymbols_target_split.so)
set(SYMBOLS_SPLIT_DEBUG_FILE ${SYMBOLS_SPLIT_DIR}/libsymbols_target_split.so.debug)
set(SYMBOLS_BUILDID_LIBRARY ${SYMBOLS_SPLIT_DIR}/libsymbols_target_buildid.so)
# The debug file with its DWARF compressed (SHF_COMPRESSED, zlib), as distributions ship them.
set(SYMBOLS_SPLIT_ZLIB_DEBUG_FILE ${SYMBOLS_SPLIT_DIR}/libsymbols_target_split.so.zlib.debug)
add_custom_command(
  OUTPUT ${SYMBOLS_SPLIT_LIBRARY} ${SYMBOLS_SPLIT_DEBUG_FILE} ${SYMBOLS_BUILDID_LIBRARY} ${SYMBOLS_SPLIT_ZLIB_DEBUG_FILE}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${SYMBOLS_SPLIT_DIR}
  COMMAND ${CMAKE_OBJCOPY} --only-keep-debug $<TARGET_FILE:symbols_target_split_full> ${SYMBOLS_SPLIT_DEBUG_FILE}
  COMMAND ${CMAKE_OBJCOPY} --compress-debug-sections=zlib ${SYMBOLS_SPLIT_DEBUG_FILE} ${SYMBOLS_SPLIT_ZLIB_DEBUG_FILE}
  COMMAND ${CMAKE_OBJCOPY} --strip-all --add-gnu-debuglink=${SYMBOLS_SPLIT_DEBUG_FILE}
          $<TARGET_FILE:symbols_target_split_full> ${SYMBOLS_SPLIT_LIBRARY}
  COMMAND ${CMAKE_OBJCOPY} --strip-all $<TARGET_FILE:symbols_target_split_full> ${SYMBOLS_BUILDID_LIBRARY}
  DEPENDS symbols_target_split_full
  VERBATIM)
add_custom_target(symbols_target_split_files
  DEPENDS ${SYMBOLS_SPLIT_LIBRARY} ${SYMBOLS_SPLIT_DEBUG_FILE} ${SYMBOLS_BUILDID_LIBRARY} ${SYMBOLS_SPLIT_ZLIB_DEBUG_FILE})

add_executable(symbols_test ${CMAKE_CURRENT_LIST_DIR}/symbols_test.cpp)
target_link_libraries(symbols_test PRIVATE memscope_runtime GTest::gtest_main)
target_compile_definitions(symbols_test PRIVATE
  SYMBOLS_TARGET_PIE="$<TARGET_FILE:symbols_target_pie>"
  SYMBOLS_TARGET_STATIC="$<TARGET_FILE:symbols_target_static>"
  SYMBOLS_TARGET_INLINE="$<TARGET_FILE:symbols_target_inline>"
  SYMBOLS_TARGET_INLINE_SOURCE="${SYMBOLS_TESTPROGS_DIR}/symbols_target_inline.c"
  SYMBOLS_TARGET_LIB="$<TARGET_FILE:symbols_target_lib>"
  SYMBOLS_TARGET_NODEBUG="$<TARGET_FILE:symbols_target_nodebug>"
  SYMBOLS_TARGET_SPLIT_FULL="$<TARGET_FILE:symbols_target_split_full>"
  SYMBOLS_TARGET_SPLIT="${SYMBOLS_SPLIT_LIBRARY}"
  SYMBOLS_TARGET_SPLIT_DEBUG="${SYMBOLS_SPLIT_DEBUG_FILE}"
  SYMBOLS_TARGET_SPLIT_ZLIB_DEBUG="${SYMBOLS_SPLIT_ZLIB_DEBUG_FILE}"
  SYMBOLS_TARGET_BUILDID="${SYMBOLS_BUILDID_LIBRARY}")
add_dependencies(symbols_test symbols_target_pie symbols_target_static symbols_target_inline
  symbols_target_split_files)
gtest_discover_tests(symbols_test DISCOVERY_TIMEOUT 60 PROPERTIES LABELS unit)

# Hostile files (FIFO, device and out-of-root debug links, truncated objects): the split library above
# is copied and re-linked to hostile debug files at run time with objcopy.
add_executable(hostile_files_test ${CMAKE_CURRENT_LIST_DIR}/hostile_files_test.cpp)
target_link_libraries(hostile_files_test PRIVATE memscope_runtime GTest::gtest_main)
target_compile_definitions(hostile_files_test PRIVATE
  MEMSCOPE_OBJCOPY="${CMAKE_OBJCOPY}"
  SYMBOLS_TARGET_SPLIT_FULL="$<TARGET_FILE:symbols_target_split_full>"
  SYMBOLS_TARGET_SPLIT_DEBUG="${SYMBOLS_SPLIT_DEBUG_FILE}")
add_dependencies(hostile_files_test symbols_target_split_files)
gtest_discover_tests(hostile_files_test DISCOVERY_TIMEOUT 60 PROPERTIES LABELS unit)
