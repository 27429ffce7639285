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
target_link_libraries(testprog_unwind_dlopen_churn PRIVATE ${CMAKE_DL_LIBS})

# Libraries the unwind programs dlopen(), built the same way. (.cc so that the test program glob
# does not build them as executables.)
function(memscope_unwind_library target output source)
  add_library(${target} SHARED ${source})
  set_target_properties(${target} PROPERTIES
    OUTPUT_NAME ${output}
    LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/testprogs)
  target_compile_options(${target} PRIVATE -O2 -g -fomit-frame-pointer)
endfunction()

# libunwind_plugin.so: loaded by unwind_dlopen after the tracer attached.
memscope_unwind_library(testprog_unwind_plugin unwind_plugin ${CMAKE_CURRENT_LIST_DIR}/unwind_plugin.cc)
memscope_unwind_library(testprog_unwind_plugin_second unwind_plugin_second ${CMAKE_CURRENT_LIST_DIR}/unwind_plugin.cc)
target_compile_definitions(testprog_unwind_plugin_second PRIVATE UNWIND_PLUGIN_SECOND)
# libunwind_churn.so: what unwind_dlopen_churn's children load; the test copies it to many files.
memscope_unwind_library(testprog_unwind_churn unwind_churn ${CMAKE_CURRENT_LIST_DIR}/unwind_churn_library.cc)
list(APPEND unwind_programs testprog_unwind_plugin testprog_unwind_plugin_second testprog_unwind_churn)

add_dependencies(integration_tests ${unwind_programs})
if(COMMAND memscope_vm_add_programs)
  memscope_vm_add_programs(${unwind_programs})
endif()
