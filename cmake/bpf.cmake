# Compiles a tool's BPF program with clang against the checked-in vmlinux.h (CO-RE) and turns it
# into a bpftool skeleton header <name>.skel.h in ${CMAKE_BINARY_DIR}/skeletons.
# The skeleton embeds the object without its DWARF (llvm-strip -g; .BTF and .BTF.ext, which libbpf
# and the verifier's line info use, stay): DWARF made each embedded object 0.7-1.2 MB instead of
# 30-200 kB, and libbpf's reading of the object faulted most of that into memory at start-up.
# <name>.bpf.o keeps the DWARF for llvm-objdump -S.
find_program(BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)
find_program(BPF_STRIP NAMES llvm-strip llvm-strip-14 llvm-strip-15 llvm-strip-16 REQUIRED)

set(MEMSCOPE_SKELETON_DIR ${CMAKE_BINARY_DIR}/skeletons)

# `-target bpf` drops the host's multiarch include directory, where <asm/errno.h> and the other
# <asm/...> headers of Debian's linux-libc-dev live; libbpf's <bpf/usdt.bpf.h> needs them (through
# <linux/errno.h>). -idirafter puts it after everything else, so vmlinux.h and libbpf still win.
set(MEMSCOPE_BPF_MULTIARCH_INCLUDE "")
foreach(candidate /usr/include/${CMAKE_LIBRARY_ARCHITECTURE} /usr/include/${CMAKE_SYSTEM_PROCESSOR}-linux-gnu)
  if(EXISTS ${candidate}/asm/errno.h)
    set(MEMSCOPE_BPF_MULTIARCH_INCLUDE -idirafter ${candidate})
    break()
  endif()
endforeach()
if(NOT MEMSCOPE_BPF_MULTIARCH_INCLUDE AND NOT EXISTS /usr/include/asm/errno.h)
  message(FATAL_ERROR "bpf.cmake: no <asm/errno.h> for the BPF programs (install linux-libc-dev)")
endif()
file(MAKE_DIRECTORY ${MEMSCOPE_SKELETON_DIR})

function(memscope_bpf_skeleton name source)
  set(obj ${MEMSCOPE_SKELETON_DIR}/${name}.bpf.o)
  set(skel ${MEMSCOPE_SKELETON_DIR}/${name}.skel.h)
  set(stripped ${MEMSCOPE_SKELETON_DIR}/${name}.stripped.bpf.o)
  get_filename_component(src_dir ${source} DIRECTORY)
  file(GLOB bpf_headers ${CMAKE_SOURCE_DIR}/bpf/*.h ${src_dir}/*.h)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Wno-unused-function
            -I${CMAKE_SOURCE_DIR}/bpf -I${src_dir} ${MEMSCOPE_BPF_MULTIARCH_INCLUDE}
            -c ${source} -o ${obj}
    COMMAND ${BPF_STRIP} -g ${obj} -o ${stripped}
    COMMAND ${BPFTOOL} gen skeleton ${stripped} name ${name} > ${skel}
    DEPENDS ${source} ${bpf_headers}
    COMMENT "BPF ${name}"
    VERBATIM)
  set_property(GLOBAL APPEND PROPERTY MEMSCOPE_SKELETONS ${skel})
endfunction()
