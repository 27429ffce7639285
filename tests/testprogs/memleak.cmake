# memleak's test programs that the one-source-one-executable rule of tests/CMakeLists.txt cannot
# build. Include it from tests/CMakeLists.txt after integration_tests is defined:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/testprogs/memleak.cmake)

# liballoc_new.so: C++ functions that leak through operator new/new[] inside a shared library;
# leak_cxx dlopen()s it. (.cc so that the testprogs glob does not build it as an executable.)
add_library(testprog_liballoc_new SHARED ${CMAKE_CURRENT_LIST_DIR}/liballoc_new.cc)
set_target_properties(testprog_liballoc_new PROPERTIES
  OUTPUT_NAME alloc_new
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/testprogs)
target_compile_options(testprog_liballoc_new PRIVATE -O0 -g -fno-omit-frame-pointer)

# liballoc_reuse.so: an allocator whose realloc lets another thread take the old address before it
# returns; leak_realloc_reuse dlopen()s it.
add_library(testprog_liballoc_reuse SHARED ${CMAKE_CURRENT_LIST_DIR}/liballoc_reuse.cc)
set_target_properties(testprog_liballoc_reuse PROPERTIES
  OUTPUT_NAME alloc_reuse
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/testprogs)
target_compile_options(testprog_liballoc_reuse PRIVATE -O1 -g -fno-omit-frame-pointer)
target_link_libraries(testprog_leak_realloc_reuse PRIVATE ${CMAKE_DL_LIBS})
add_dependencies(integration_tests testprog_liballoc_reuse)

# leak_funcs_static: the allocator-function leaks in a static executable, where malloc and mmap
# are the executable's own functions.
add_executable(testprog_leak_funcs_static ${CMAKE_CURRENT_LIST_DIR}/leak_funcs.c)
set_target_properties(testprog_leak_funcs_static PROPERTIES
  OUTPUT_NAME leak_funcs_static
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/testprogs)
target_compile_options(testprog_leak_funcs_static PRIVATE -O0 -g -fno-omit-frame-pointer)
target_link_options(testprog_leak_funcs_static PRIVATE -static -pthread)

add_dependencies(integration_tests testprog_liballoc_new testprog_leak_funcs_static)

# memleak -p --sample-bytes: sampled_attach dlopen()s libsampled_plugin.so by bare name through
# its RUNPATH ($ORIGIN), and heap_hold_static is a running static process (a refusal case).
add_library(testprog_sampled_plugin SHARED ${CMAKE_CURRENT_LIST_DIR}/sampled_plugin.cc)
set_target_properties(testprog_sampled_plugin PROPERTIES
  OUTPUT_NAME sampled_plugin
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/testprogs)
target_compile_options(testprog_sampled_plugin PRIVATE -O0 -g -fno-omit-frame-pointer)
set_target_properties(testprog_sampled_attach PROPERTIES BUILD_RPATH "\$ORIGIN")
target_link_options(testprog_sampled_attach PRIVATE -Wl,--enable-new-dtags)
add_executable(testprog_heap_hold_static ${CMAKE_CURRENT_LIST_DIR}/heap_hold.c)
set_target_properties(testprog_heap_hold_static PROPERTIES
  OUTPUT_NAME heap_hold_static
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/testprogs)
target_link_options(testprog_heap_hold_static PRIVATE -static)
add_dependencies(integration_tests testprog_sampled_plugin testprog_heap_hold_static)
