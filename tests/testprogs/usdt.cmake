# Targets of the usdt and mallocsnoop tests that the generic test-program rules can't build.
# Include at the end of tests/CMakeLists.txt (after unit_tests and integration_tests exist).
# - libusdt_fake_libc.so: fires glibc's memory_* probes (provider "libc", glibc's argument
#   layouts), one of them behind a semaphore; its sources end in .cc so that the *.c/*.cpp glob
#   of test programs leaves them alone. usdt_fake_libc_user (a normal test program) loads it.
add_library(usdt_fake_libc SHARED
  ${CMAKE_CURRENT_LIST_DIR}/usdt_fake_libc.cc
  ${CMAKE_CURRENT_LIST_DIR}/usdt_fake_libc_semaphore.cc)
set_target_properties(usdt_fake_libc PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/testprogs)
target_compile_options(usdt_fake_libc PRIVATE -O0 -g -fno-omit-frame-pointer)

# usdt_fake_libc_builtin: the same probes linked into the executable, as in a static build of a
# probe-enabled glibc (run it with "-"); exported so that dlsym(NULL) finds them.
add_executable(usdt_fake_libc_builtin
  ${CMAKE_CURRENT_LIST_DIR}/usdt_fake_libc_user.c
  ${CMAKE_CURRENT_LIST_DIR}/usdt_fake_libc.cc
  ${CMAKE_CURRENT_LIST_DIR}/usdt_fake_libc_semaphore.cc)
set_target_properties(usdt_fake_libc_builtin PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/testprogs
  ENABLE_EXPORTS ON)
target_compile_options(usdt_fake_libc_builtin PRIVATE -O0 -g -fno-omit-frame-pointer)
target_link_libraries(usdt_fake_libc_builtin PRIVATE ${CMAKE_DL_LIBS})

if(TARGET integration_tests)
  add_dependencies(integration_tests usdt_fake_libc usdt_fake_libc_builtin)
endif()

# The VM tier dlopen()s it by path (/memscope/libusdt_fake_libc.so) in tests/vm/events.sh.
if(COMMAND memscope_vm_add_programs)
  memscope_vm_add_programs(usdt_fake_libc)
endif()
