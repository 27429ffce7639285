# The unwind-table compiler's test programs. Included from tests/CMakeLists.txt after unit_tests.
# Both are optimised without frame pointers, the code the DWARF-CFI unwinder exists for.
set(CFI_TARGET_SOURCE ${MEMSCOPE_SOURCE_DIR}/tests/testprogs/cfi_target.c)
set(CFI_TARGET_OPTIONS -O2 -g -fomit-frame-pointer)

add_executable(cfi_target ${CFI_TARGET_SOURCE})
target_compile_options(cfi_target PRIVATE ${CFI_TARGET_OPTIONS})

# Linked above 4 GiB, beyond what the rows' 32-bit pcs address: refused.
add_executable(cfi_target_high ${CFI_TARGET_SOURCE})
target_compile_options(cfi_target_high PRIVATE ${CFI_TARGET_OPTIONS} -fPIE)
target_link_options(cfi_target_high PRIVATE -pie -Wl,-Ttext-segment=0x200000000)

# Its functions described only by .debug_frame, which lives in a separate debug file: the object
# keeps the start files' and the linker's .eh_frame and nothing else.
add_executable(cfi_target_debug_frame ${CFI_TARGET_SOURCE})
target_compile_options(cfi_target_debug_frame PRIVATE ${CFI_TARGET_OPTIONS} -fno-asynchronous-unwind-tables -fno-unwind-tables)
set(CFI_SPLIT_DIR ${CMAKE_CURRENT_BINARY_DIR}/cfi_split)
set(CFI_SPLIT_OBJECT ${CFI_SPLIT_DIR}/cfi_target_stripped)
set(CFI_SPLIT_DEBUG_FILE ${CFI_SPLIT_DIR}/cfi_target_stripped.debug)
# The same debug file with compressed sections, as distributions ship them.
set(CFI_SPLIT_COMPRESSED_DEBUG_FILE ${CFI_SPLIT_DIR}/cfi_target_stripped.zdebug)
add_custom_command(
  OUTPUT ${CFI_SPLIT_OBJECT} ${CFI_SPLIT_DEBUG_FILE} ${CFI_SPLIT_COMPRESSED_DEBUG_FILE}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CFI_SPLIT_DIR}
  COMMAND ${CMAKE_OBJCOPY} --only-keep-debug $<TARGET_FILE:cfi_target_debug_frame> ${CFI_SPLIT_DEBUG_FILE}
  COMMAND ${CMAKE_OBJCOPY} --compress-debug-sections=zlib ${CFI_SPLIT_DEBUG_FILE} ${CFI_SPLIT_COMPRESSED_DEBUG_FILE}
  COMMAND ${CMAKE_OBJCOPY} --strip-all $<TARGET_FILE:cfi_target_debug_frame> ${CFI_SPLIT_OBJECT}
  DEPENDS cfi_target_debug_frame
  VERBATIM)
add_custom_target(cfi_target_split_files DEPENDS ${CFI_SPLIT_OBJECT} ${CFI_SPLIT_DEBUG_FILE} ${CFI_SPLIT_COMPRESSED_DEBUG_FILE})

target_compile_definitions(unit_tests PRIVATE
  CFI_TARGET="$<TARGET_FILE:cfi_target>"
  CFI_TARGET_HIGH="$<TARGET_FILE:cfi_target_high>"
  CFI_TARGET_STRIPPED="${CFI_SPLIT_OBJECT}"
  CFI_TARGET_STRIPPED_DEBUG="${CFI_SPLIT_DEBUG_FILE}"
  CFI_TARGET_STRIPPED_COMPRESSED_DEBUG="${CFI_SPLIT_COMPRESSED_DEBUG_FILE}")
add_dependencies(unit_tests cfi_target cfi_target_high cfi_target_split_files)
