// Turns captured stack addresses into function, module and source location, for user space (through
// the process's mappings and ELF/DWARF) and for the kernel (through /proc/kallsyms). One instance is
// shared by all sinks; it is safe to call from several threads.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace memscope::symbols {

// Frame::function of kernel frames when kallsyms hides addresses (kernel.kptr_restrict): the frame is
// unknown for a reason no symbolizer can fix, which an empty name would not tell.
inline constexpr std::string_view kHiddenKernelFunction = "[unknown]";
// Frame::function of the one frame shown for a stack that could not be captured (output::Stack::lost).
inline constexpr std::string_view kLostStackFunction = "[stack lost]";

struct Frame {
  uint64_t address = 0;
  std::string function;  // demangled; empty when unknown
  // address - symbol start. When the function is unknown but the module is, the address relative to
  // the module's link-time layout instead, which is what addr2line/gdb take.
  uint64_t offset = 0;
  std::string
      module;  // basename of the object ("leak", "libc.so.6", "[vdso]", "kernel" or the kernel module name)
  std::string file;  // source file from DWARF, empty when no debug info
  int line = 0;
  bool kernel = false;
  // This function was inlined into the next frame, which has the same address; `function` and
  // `file`:`line` are the inlined function's own, `offset` is that of the next frame. Only user
  // frames from DWARF are ever inlined.
  bool inlined = false;
  // Set by output::frames_of() from output::Stack::user_frame_pointer_frames: the unwinder found this
  // frame's address by the frame pointer because its caller's object had no CFI there, which may be
  // wrong if that code does not keep frame pointers.
  bool unwound_by_frame_pointer = false;

  // BCC style: "fibonacci+0x23 [leak]", "[unknown] 0x7f12..." (with " [module]" when the module is
  // known), and " (leak.c:12)" appended when the source line is known. An inlined function has no
  // offset of its own: "leaf (inlined) [leak] (leak.c:7)".
  std::string display() const;
  // "fibonacci" or "[unknown]"; used for folded stacks.
  std::string short_name() const;
};

// Kernel functions that run a tracing BPF program (the program, tp_btf/raw_tp trampolines, tracepoint
// iterators, perf glue): kernel_frames() drops them from the top of a stack.
bool is_tracing_machinery(std::string_view function);

struct SymbolizerOptions {
  // Roots of separate debug files, searched in the build-id layout (.build-id/ab/cdef….debug) and the
  // .gnu_debuglink layout (<dir>/<object dir>/<link>).
  std::vector<std::string> debug_directories{"/usr/lib/debug"};
};

class StackSymbolizer {
 public:
  StackSymbolizer();
  explicit StackSymbolizer(SymbolizerOptions options);
  ~StackSymbolizer();
  StackSymbolizer(const StackSymbolizer&) = delete;
  StackSymbolizer& operator=(const StackSymbolizer&) = delete;

  // Snapshots /proc/PID/maps and opens the mapped ELF objects now (through /proc/PID/root so that
  // processes in other mount namespaces work, /proc/PID/map_files for deleted or replaced files), so
  // that frames resolve after the process exits. Cheap to call repeatedly: the snapshot is cached per
  // pid and only re-read when an address falls outside every known mapping. Call forget() when the
  // pid exec()s or is reused.
  void prepare(pid_t pid);
  // The function the symbol table names at `address`, taken as an exact instruction address, with
  // its own line there: where code inlined into it runs, the line that calls the inlined function.
  Frame user_frame(pid_t pid, uint64_t address);
  // A captured stack, innermost first. Every frame after the first is a return address, so its
  // function and line are those of address - 1, the call instruction: a call at the very end of a
  // function (to a noreturn callee) would otherwise be attributed to the next function, and the line
  // would be the one after the call.
  // Each address yields its inline chain: the inlined functions (Frame::inlined, innermost first),
  // then the function they were inlined into, all with that address. So the frames of one address
  // end at the first frame that is not inlined, and there are at least as many frames as addresses.
  std::vector<Frame> user_frames(pid_t pid, const std::vector<uint64_t>& addresses);
  // From /proc/kallsyms (loaded once, sorted); module symbols carry the module name in Frame::module.
  Frame kernel_frame(uint64_t address);
  // Innermost first; return addresses are treated as in user_frames().
  std::vector<Frame> kernel_frames(const std::vector<uint64_t>& addresses);
  void forget(pid_t pid);

  // The offset of `symbol` (raw, i.e. mangled, name; "name@VERSION" entries match "name") in the ELF
  // file: what the kernel's uprobe interface and libbpf's bpf_program__attach_uprobe_opts(func_offset)
  // expect. Symbols may also come from the object's separate debug file. `elf_path` is a host path or
  // /proc/PID/root/… (resolved in that root; see symbols/target_files.hpp).
  static std::optional<uint64_t> symbol_file_offset(const std::string& elf_path, const std::string& symbol);

  // Uses this table instead of /proc/kallsyms (tests, replaying a capture from another machine).
  void load_kernel_symbols(std::istream& kallsyms);
  // True when kallsyms hides the addresses from us.
  bool kernel_symbols_hidden();
  // Distinct ELF objects parsed so far; an object mapped by several processes counts once.
  size_t cached_object_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace memscope::symbols
