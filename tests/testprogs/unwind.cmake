# The unwind tests' programs (tests/testprogs/unwind_*): built the way Debian builds code, -O2 -g
# with frame pointers omitted, unlike the other test programs. A frame-pointer walk loses their
# callers; only an unwinder reading the DWARF call frame information gets the whole stack, which
# is what tests/integration/unwind_test.cpp and tests/vm/unwind.sh assert. Include from
# tests/CMakeLists.txt after integration_tests is defined (the generic test-program rule skips
# unwind_* sources).
file(GLOB unwind_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/unwind_*.c ${CMAKE_CURRENT_LIST_DIR}/unwind_*.cpp)
set(unwind_programs "")
foreach(source ${unwind_sources})
  get_filename_component(name ${source} NAME_WE)
  add_executable(testprog_${name} ${source})
  set_target_properties(testprog_${name} PROPERTIES OUTPUT_NAME ${name} RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/testprogs)
  target_compile_options(testprog_${name} PRIVATE -O2 -g -fomit-frame-pointer)
  list(APPEND unwind_programs testprog_${name})
endforeach()
target_link_libraries(testprog_unwind_dlopen PRIVATE ${CMAKE_DL_LIBS})

# libunwind_plugin.so: loaded by unwind_dlopen after the tracer attached. (.cc so that the glob of
# test programs does not build it as an executable.)
add_library(testprog_unwind_plugin SHARED ${CMAKE_CURRENT_LIST_DIR}/unwind_plugin.cc)
set_target_properties(testprog_unwind_plugin PROPERTIES
  OUTPUT_NAME unwind_plugin
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/testprogs)
target_compile_options(testprog_unwind_plugin PRIVATE -O2 -g -fomit-frame-pointer)
list(APPEND unwind_programs testprog_unwind_plugin)
add_library(testprog_unwind_plugin_second SHARED ${CMAKE_CURRENT_LIST_DIR}/unwind_plugin.cc)
set_target_properties(testprog_unwind_plugin_second PROPERTIES
  OUTPUT_NAME unwind_plugin_second
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/testprogs)
target_compile_definitions(testprog_unwind_plugin_second PRIVATE UNWIND_PLUGIN_SECOND)
target_compile_options(testprog_unwind_plugin_second PRIVATE -O2 -g -fomit-frame-pointer)
list(APPEND unwind_programs testprog_unwind_plugin_second)

add_dependencies(integration_tests ${unwind_programs})
if(COMMAND memscope_vm_add_programs)
  memscope_vm_add_programs(${unwind_programs})
endif()
