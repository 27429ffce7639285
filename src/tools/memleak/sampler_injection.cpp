#include "sampler_injection.hpp"

#include <elf.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "allocator_libraries.hpp"
#include "process_stopper.hpp"
#include "sampled_mode.hpp"
#include "runtime/log.hpp"
#include "runtime/result.hpp"
#include "symbols/elf_object.hpp"
#include "symbols/process_maps.hpp"
#include "symbols/target_files.hpp"

namespace memscope::memleak {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kFullFidelity = "full-fidelity memleak -p (without --sample-bytes) still works";
// How long a thread may keep being caught inside the allocator or the loader before injection is
// given up, and how long one call may take (dlopen of a small library takes milliseconds).
constexpr auto kSafePointPatience = std::chrono::seconds(3);
constexpr auto kCallPatience = std::chrono::seconds(10);
// Frames unwound when looking for the allocator's or the loader's.
constexpr int kMaxFrames = 256;
constexpr int kRtldNow = 2;  // RTLD_NOW, and RTLD_LOCAL (0): the library does not join the global scope

[[noreturn]] void refuse(pid_t pid, const std::string& why) {
  throw FatalError(fmt::format("--sample-bytes -p: PID {} {}; {}", pid, why, kFullFidelity));
}

std::optional<std::string> status_field(pid_t pid, const std::string& name) {
  std::ifstream status(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(status, line))
    if (line.starts_with(name + ":")) {
      size_t start = line.find_first_not_of(" \t", name.size() + 1);
      return start == std::string::npos ? std::string() : line.substr(start);
    }
  return std::nullopt;
}

bool same_file(const std::string& first, const std::string& second) {
  struct stat a {}, b {};
  return stat(first.c_str(), &a) == 0 && stat(second.c_str(), &b) == 0 && a.st_dev == b.st_dev &&
         a.st_ino == b.st_ino;
}

struct AddressRange {
  uint64_t start = 0, end = 0;
  bool contains(uint64_t address) const { return address >= start && address < end; }
};

// An object the process maps, opened through /proc/PID/map_files, with its load bias.
struct MappedObject {
  std::shared_ptr<const symbols::ElfObject> elf;
  uint64_t bias = 0;
  std::string path;

  std::optional<uint64_t> address_of(std::string_view symbol) const {
    auto vaddr = elf->symbol_address(symbol);
    if (!vaddr) return std::nullopt;
    return bias + *vaddr;
  }
  // Where the function `symbol` lies in the process.
  std::optional<AddressRange> function_range(std::string_view symbol) const {
    auto vaddr = elf->symbol_address(symbol);
    if (!vaddr) return std::nullopt;
    const symbols::ElfSymbol* found = elf->symbol_at(*vaddr);
    uint64_t size = found && found->size ? found->size : 1;
    return AddressRange{bias + *vaddr, bias + *vaddr + size};
  }
};

std::optional<MappedObject> open_mapped_object(pid_t pid, const std::vector<symbols::MapsEntry>& maps,
                                               const std::string& path) {
  for (const auto& entry : maps) {
    if (entry.path != path || entry.file_offset != 0) continue;
    auto file = symbols::open_mapped_file(pid, entry.start, entry.end);
    if (!file) return std::nullopt;
    auto elf = symbols::ElfObject::open_file(*file, symbols::DebugFileSearch{symbols::FileRoot::host(), path, {}});
    if (!elf) return std::nullopt;
    auto vaddr = elf->vaddr_of_file_offset(0, entry.executable);
    if (!vaddr) return std::nullopt;
    return MappedObject{elf, entry.start - *vaddr, path};
  }
  return std::nullopt;
}

// What the checks before injection find out about the process.
struct ProcessPlan {
  MappedObject libc;
  // In a container the sampler library's path may not exist: the library is handed over as a memory
  // file instead (see copy_into_memory_file).
  bool foreign_mount_namespace = false;
  std::vector<AddressRange> unsafe;  // code a thread must not be in (nor return to) when seized
};

ProcessPlan plan_injection(pid_t pid, const std::string& library) {
  Result<pid_t> tracer = tracer_of(pid);
  if (!tracer) throw FatalError(fmt::format("--sample-bytes -p: {}", tracer.error().message));
  if (*tracer > 0) refuse(pid, fmt::format("is traced by PID {} (a debugger?), so it cannot be stopped to load the sampler", *tracer));
  if (auto seccomp = status_field(pid, "Seccomp"); seccomp && *seccomp != "0")
    refuse(pid, "runs under a seccomp filter, which could kill it for a system call the sampler's loading makes");
  bool foreign_mount_namespace = !same_file(fmt::format("/proc/{}/ns/mnt", pid), "/proc/self/ns/mnt");

  auto maps = symbols::read_proc_maps(pid);
  if (!maps) throw FatalError(fmt::format("--sample-bytes -p: PID {} has no memory map (it exited, or is a zombie)", pid));
  std::string executable;
  std::error_code error;
  executable = std::filesystem::read_symlink(fmt::format("/proc/{}/exe", pid), error).string();
  std::optional<std::string> libc_path, loader_path;
  for (const auto& entry : *maps) {
    if (!entry.file_backed()) continue;
    std::string name = std::filesystem::path(entry.path).filename().string();
    if (!libc_path && object_role(entry.path) == ObjectRole::Libc) libc_path = entry.path;
    if (!loader_path && name.starts_with("ld-linux")) loader_path = entry.path;
  }
  if (!libc_path || !loader_path)
    refuse(pid, "is not a dynamically linked glibc program (a static executable?), so it cannot load a library");

  // An allocator defined in the executable is called directly, not through a GOT entry.
  for (const auto& entry : *maps)
    if (entry.file_backed() && entry.path == executable && entry.file_offset == 0) {
      auto object = open_mapped_object(pid, *maps, executable);
      if (object && object->elf->symbol_address("malloc"))
        refuse(pid, fmt::format("has its own malloc in its executable ({}), called directly rather than through "
                                "entries the sampler can redirect",
                                executable));
      break;
    }

  ProcessPlan plan;
  auto libc = open_mapped_object(pid, *maps, *libc_path);
  if (!libc) throw FatalError(fmt::format("--sample-bytes -p: cannot read {} of PID {}", *libc_path, pid));
  for (const char* function : {"dlopen", "dlsym", "dlerror"})
    if (!libc->address_of(function))
      refuse(pid, fmt::format("has a libc without {} ({})", function, *libc_path));
  plan.foreign_mount_namespace = foreign_mount_namespace;
  if (foreign_mount_namespace)
    for (const char* function : {"memfd_create", "close"})
      if (!libc->address_of(function))
        refuse(pid, fmt::format("is in another mount namespace (a container) and has a libc without {} ({}), "
                                "needed to hand it the sampler library",
                                function, *libc_path));
  plan.libc = *libc;
  // A thread inside the loader holds its lock, and one inside malloc an arena's: dlopen would wait
  // for itself. So would a thread inside the sampler's GOT redirection (its own lock).
  for (const auto& entry : *maps)
    if (entry.executable && (entry.path == *loader_path || same_file(entry.path, library)))
      plan.unsafe.push_back({entry.start, entry.end});
  for (const char* function : {"malloc", "free", "calloc", "realloc", "reallocarray", "posix_memalign",
                               "aligned_alloc", "memalign", "valloc", "pvalloc", "malloc_trim", "mallinfo2",
                               "malloc_info", "dlopen", "dlclose", "dlsym", "fork", "_Fork"})
    if (auto range = libc->function_range(function)) plan.unsafe.push_back(*range);
  return plan;
}

// The objects of the process being unwound, for libdwfl's find_elf callback (which has no
// argument of its own): opened through /proc/PID/map_files with target_files' checks, never by
// the path the process names (a symlink, FIFO or device planted there must not be opened).
struct UnwoundProcess {
  pid_t pid = 0;
  std::vector<symbols::MapsEntry> maps;
};
thread_local const UnwoundProcess* unwound_process = nullptr;

int find_elf_through_map_files(Dwfl_Module* module, void**, const char*, Dwarf_Addr, char** file_name, Elf**) {
  Dwarf_Addr low = 0;
  dwfl_module_info(module, nullptr, &low, nullptr, nullptr, nullptr, nullptr, nullptr);
  if (!unwound_process) return -1;
  for (const auto& entry : unwound_process->maps)
    if (entry.start == low && entry.file_backed()) {
      auto file = symbols::open_mapped_file(unwound_process->pid, entry.start, entry.end);
      if (!file) return -1;
      *file_name = strdup(entry.path.c_str());
      return file->fd.release();
    }
  return -1;
}

int no_debug_files(Dwfl_Module*, void**, const char*, Dwarf_Addr, const char*, const char*, GElf_Word, char**) {
  return -1;  // .eh_frame is enough to unwind; debug files are not looked for
}

// The return addresses of thread `tid`, which this process holds in ptrace-stop, innermost first
// (the instruction pointer excluded), unwound by libdwfl from the objects' call-frame information.
// Fewer when unwinding stops early.
std::vector<uint64_t> thread_frames(pid_t pid, pid_t tid) {
  static const Dwfl_Callbacks callbacks = {
      .find_elf = find_elf_through_map_files, .find_debuginfo = no_debug_files, .section_address = nullptr,
      .debuginfo_path = nullptr};
  std::vector<uint64_t> frames;
  auto maps = symbols::read_proc_maps(pid);
  if (!maps) return frames;
  UnwoundProcess process{pid, std::move(*maps)};
  unwound_process = &process;
  Dwfl* dwfl = dwfl_begin(&callbacks);
  if (dwfl && dwfl_linux_proc_report(dwfl, pid) == 0 && dwfl_report_end(dwfl, nullptr, nullptr) == 0 &&
      dwfl_linux_proc_attach(dwfl, pid, true) == 0) {
    dwfl_getthread_frames(
        dwfl, tid,
        [](Dwfl_Frame* frame, void* argument) -> int {
          auto* found = static_cast<std::vector<uint64_t>*>(argument);
          Dwarf_Addr pc = 0;
          bool activation = false;
          if (!dwfl_frame_pc(frame, &pc, &activation)) return DWARF_CB_ABORT;
          found->push_back(pc);
          return found->size() >= kMaxFrames ? DWARF_CB_ABORT : DWARF_CB_OK;
        },
        &frames);
  }
  if (dwfl) dwfl_end(dwfl);
  unwound_process = nullptr;
  if (!frames.empty()) frames.erase(frames.begin());  // the instruction pointer, checked apart
  return frames;
}

// One thread of the process, seized with ptrace for the duration of the calls made in it. Its
// registers (general and extended state) are put back before it is let go, on every path.
class SeizedThread {
 public:
  SeizedThread(pid_t pid, pid_t tid) : pid_(pid), tid_(tid) {}
  SeizedThread(const SeizedThread&) = delete;
  SeizedThread& operator=(const SeizedThread&) = delete;
  ~SeizedThread() { release(); }

  // Seizes and stops the thread; an error when it is gone or cannot be traced.
  Result<bool> seize() {
    if (ptrace(PTRACE_SEIZE, tid_, nullptr, nullptr) != 0)
      return Error{fmt::format("ptrace(PTRACE_SEIZE) of thread {}: {}", tid_, std::strerror(errno))};
    seized_ = true;
    return stop();
  }

  // True when no frame of the thread (its instruction pointer and every return address, unwound
  // with the call-frame information of its objects) lies in `unsafe` code.
  bool at_safe_point(const std::vector<AddressRange>& unsafe) {
    auto inside = [&](uint64_t address) {
      for (const auto& range : unsafe)
        if (range.contains(address)) return true;
      return false;
    };
    if (inside(saved_.rip)) return false;
    for (uint64_t pc : thread_frames(pid_, tid_))
      if (inside(pc)) return false;
    return true;
  }

  // Lets the thread run for a moment and stops it again.
  Result<bool> run_briefly() {
    restore_registers();
    if (ptrace(PTRACE_CONT, tid_, nullptr, nullptr) != 0)
      return Error{fmt::format("ptrace(PTRACE_CONT) of thread {}: {}", tid_, std::strerror(errno))};
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    return stop();
  }

  // Copies `bytes` below the red zone of the thread's stack for the next call; returns their address.
  uint64_t push_bytes(const std::string& bytes) {
    scratch_ = (scratch_ - bytes.size() - 1) & ~uint64_t{15};
    std::string terminated = bytes + '\0';
    if (pwrite(memory(), terminated.data(), terminated.size(), static_cast<off_t>(scratch_)) !=
        static_cast<ssize_t>(terminated.size()))
      throw FatalError(fmt::format("--sample-bytes -p: cannot write into the stack of thread {}: {}", tid_,
                                   std::strerror(errno)));
    return scratch_;
  }

  std::string read_string(uint64_t address, size_t max_bytes = 512) {
    std::string text(max_bytes, '\0');
    ssize_t got = pread(memory(), text.data(), max_bytes, static_cast<off_t>(address));
    text.resize(got > 0 ? static_cast<size_t>(got) : 0);
    if (auto end = text.find('\0'); end != std::string::npos) text.resize(end);
    return text;
  }

  uint64_t read_word(uint64_t address) {
    uint64_t value = 0;
    if (pread(memory(), &value, sizeof value, static_cast<off_t>(address)) != sizeof value) return 0;
    return value;
  }

  // Calls function(arguments…) in the thread and returns what it returned (rax). It returns to
  // address 0: the fault there, seen by memscope as the tracer, ends the call.
  uint64_t call(uint64_t function, std::initializer_list<uint64_t> arguments, const char* what) {
    user_regs_struct regs = saved_;
    uint64_t stack = (scratch_ - 64) & ~uint64_t{15};
    stack -= 8;  // the return address: at a function's entry rsp is 8 off a 16-byte boundary
    uint64_t zero = 0;
    if (pwrite(memory(), &zero, sizeof zero, static_cast<off_t>(stack)) != sizeof zero)
      throw FatalError(fmt::format("--sample-bytes -p: cannot write into the stack of thread {}", tid_));
    regs.rsp = stack;
    regs.rip = function;
    regs.rax = 0;
    regs.orig_rax = static_cast<uint64_t>(-1);  // no system call restart on the way out of the stop
    unsigned long long* registers[] = {&regs.rdi, &regs.rsi, &regs.rdx, &regs.rcx, &regs.r8, &regs.r9};
    size_t index = 0;
    for (uint64_t argument : arguments) *registers[index++] = argument;
    if (ptrace(PTRACE_SETREGS, tid_, nullptr, &regs) != 0 || ptrace(PTRACE_CONT, tid_, nullptr, nullptr) != 0)
      throw FatalError(fmt::format("--sample-bytes -p: cannot start {} in thread {}: {}", what, tid_,
                                   std::strerror(errno)));
    running_call_ = true;
    auto deadline = Clock::now() + kCallPatience;
    for (;;) {
      int status = 0;
      pid_t waited = waitpid(tid_, &status, __WALL | WNOHANG);
      if (waited < 0) {
        running_call_ = false;
        throw FatalError(fmt::format("--sample-bytes -p: PID {} went away during {}", pid_, what));
      }
      if (waited == 0) {
        if (Clock::now() > deadline) {
          (void)ptrace(PTRACE_INTERRUPT, tid_, nullptr, nullptr);
          (void)waitpid(tid_, &status, __WALL);
          running_call_ = false;
          throw FatalError(fmt::format("--sample-bytes -p: {} in PID {} did not return within {} s; the thread "
                                       "was put back where it was",
                                       what, pid_, kCallPatience.count()));
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        continue;
      }
      if (WIFEXITED(status) || WIFSIGNALED(status)) {
        seized_ = running_call_ = false;
        throw FatalError(fmt::format("--sample-bytes -p: PID {} ended during {}", pid_, what));
      }
      int signal = WSTOPSIG(status);
      if (status >> 16 != 0) {  // an event stop (group stop): go on with the call
        (void)ptrace(PTRACE_CONT, tid_, nullptr, nullptr);
        continue;
      }
      user_regs_struct now{};
      (void)ptrace(PTRACE_GETREGS, tid_, nullptr, &now);
      if (signal == SIGSEGV && now.rip == 0) {
        running_call_ = false;
        return now.rax;
      }
      if (signal == SIGSEGV || signal == SIGBUS || signal == SIGILL || signal == SIGFPE) {
        running_call_ = false;
        throw FatalError(fmt::format("--sample-bytes -p: {} in PID {} faulted (signal {} at {:#x}); the thread "
                                     "was put back where it was",
                                     what, pid_, signal, now.rip));
      }
      // A signal for the process: held back, sent again once the thread runs its own code.
      pending_signals_.push_back(signal);
      (void)ptrace(PTRACE_CONT, tid_, nullptr, nullptr);
    }
  }

  // Registers back, ptrace off, held-back signals sent again. Idempotent.
  void release() {
    if (!seized_) return;
    restore_registers();
    (void)ptrace(PTRACE_DETACH, tid_, nullptr, nullptr);
    seized_ = false;
    for (int signal : pending_signals_) (void)syscall(SYS_tgkill, pid_, tid_, signal);
    pending_signals_.clear();
    if (memory_fd_ >= 0) close(memory_fd_);
    memory_fd_ = -1;
  }

 private:
  // Waits for the thread's ptrace stop after PTRACE_INTERRUPT and saves its registers.
  Result<bool> stop() {
    if (ptrace(PTRACE_INTERRUPT, tid_, nullptr, nullptr) != 0)
      return Error{fmt::format("ptrace(PTRACE_INTERRUPT) of thread {}: {}", tid_, std::strerror(errno))};
    for (;;) {
      int status = 0;
      if (waitpid(tid_, &status, __WALL) < 0 || WIFEXITED(status) || WIFSIGNALED(status)) {
        seized_ = false;
        return Error{fmt::format("thread {} went away", tid_)};
      }
      if (status >> 16 == PTRACE_EVENT_STOP) break;
      // A signal arrived first: held back, sent again at release.
      pending_signals_.push_back(WSTOPSIG(status));
      (void)ptrace(PTRACE_CONT, tid_, nullptr, nullptr);
    }
    if (ptrace(PTRACE_GETREGS, tid_, nullptr, &saved_) != 0)
      return Error{fmt::format("cannot read the registers of thread {}: {}", tid_, std::strerror(errno))};
    extended_.assign(64 * 1024, 0);
    iovec vector{extended_.data(), extended_.size()};
    if (ptrace(PTRACE_GETREGSET, tid_, reinterpret_cast<void*>(NT_X86_XSTATE), &vector) == 0) {
      extended_.resize(vector.iov_len);
      extended_kind_ = NT_X86_XSTATE;
    } else {
      vector = {extended_.data(), sizeof(user_fpregs_struct)};
      if (ptrace(PTRACE_GETREGSET, tid_, reinterpret_cast<void*>(NT_PRFPREG), &vector) != 0)
        return Error{fmt::format("cannot read the floating point registers of thread {}", tid_)};
      extended_.resize(vector.iov_len);
      extended_kind_ = NT_PRFPREG;
    }
    // Below the red zone (128 bytes) of the interrupted code, with room to spare.
    scratch_ = (saved_.rsp - 1024) & ~uint64_t{15};
    return true;
  }

  void restore_registers() {
    (void)ptrace(PTRACE_SETREGS, tid_, nullptr, &saved_);
    if (!extended_.empty()) {
      iovec vector{extended_.data(), extended_.size()};
      (void)ptrace(PTRACE_SETREGSET, tid_, reinterpret_cast<void*>(extended_kind_), &vector);
    }
  }

  int memory() {
    if (memory_fd_ < 0) memory_fd_ = open(fmt::format("/proc/{}/mem", pid_).c_str(), O_RDWR | O_CLOEXEC);
    return memory_fd_;
  }

  pid_t pid_, tid_;
  bool seized_ = false;
  bool running_call_ = false;
  user_regs_struct saved_{};
  std::vector<unsigned char> extended_;
  long extended_kind_ = NT_PRFPREG;
  uint64_t scratch_ = 0;
  int memory_fd_ = -1;
  std::vector<int> pending_signals_;
};

std::vector<pid_t> threads_of(pid_t pid) {
  std::vector<pid_t> threads{pid};
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(fmt::format("/proc/{}/task", pid), error)) {
    pid_t tid = static_cast<pid_t>(std::strtol(entry.path().filename().c_str(), nullptr, 10));
    if (tid > 0 && tid != pid) threads.push_back(tid);
  }
  return threads;
}

// Seizes a thread of the process at a safe point: each thread in turn, each let run a moment and
// looked at again, until one is outside the unsafe code or patience runs out.
std::unique_ptr<SeizedThread> seize_at_safe_point(pid_t pid, const std::vector<AddressRange>& unsafe) {
  auto deadline = Clock::now() + kSafePointPatience;
  std::string last_error;
  while (Clock::now() < deadline) {
    for (pid_t tid : threads_of(pid)) {
      auto thread = std::make_unique<SeizedThread>(pid, tid);
      if (auto seized = thread->seize(); !seized) {
        last_error = seized.error().message;
        continue;
      }
      for (int attempt = 0; attempt < 5; attempt++) {
        if (thread->at_safe_point(unsafe)) return thread;
        if (auto again = thread->run_briefly(); !again) break;
      }
    }
    if (kill(pid, 0) != 0) throw FatalError(fmt::format("--sample-bytes -p: PID {} went away", pid));
  }
  if (!last_error.empty()) throw FatalError(fmt::format("--sample-bytes -p: cannot stop PID {}: {}", pid, last_error));
  refuse(pid, fmt::format("kept every thread inside the allocator or the dynamic loader for {} s",
                          kSafePointPatience.count()));
}

// Fills the memory file `target_fd` of PID `pid` with the sampler library and seals it, so that
// neither the process nor anyone else can change the code and the USDT notes memscope reads from it.
// Returns memscope's own descriptor of the file (the path the probes attach to).
symbols::FileDescriptor copy_into_memory_file(pid_t pid, int target_fd, const std::string& library) {
  constexpr size_t kMaxLibraryBytes = 64 << 20;
  symbols::FileDescriptor source(open(library.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  struct stat status {};
  if (!source || fstat(source.get(), &status) != 0 || !S_ISREG(status.st_mode) ||
      static_cast<uint64_t>(status.st_size) > kMaxLibraryBytes)
    throw FatalError(fmt::format("--sample-bytes -p: cannot read the sampler library {}", library));
  // The process's descriptor, reopened through /proc: only a process that may be ptraced allows it.
  symbols::FileDescriptor memory(
      open(fmt::format("/proc/{}/fd/{}", pid, target_fd).c_str(), O_RDWR | O_CLOEXEC));
  struct stat memory_status {};
  if (!memory || fstat(memory.get(), &memory_status) != 0 || !S_ISREG(memory_status.st_mode) ||
      memory_status.st_size != 0)
    throw FatalError(fmt::format("--sample-bytes -p: cannot open the memory file PID {} created", pid));
  std::vector<char> buffer(1 << 16);
  for (off_t done = 0; done < status.st_size;) {
    ssize_t got = pread(source.get(), buffer.data(), buffer.size(), done);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) throw FatalError(fmt::format("--sample-bytes -p: the sampler library {} shrank while read", library));
    for (ssize_t written = 0; written < got;) {
      ssize_t put = pwrite(memory.get(), buffer.data() + written, static_cast<size_t>(got - written), done + written);
      if (put < 0 && errno == EINTR) continue;
      if (put <= 0) throw FatalError(fmt::format("--sample-bytes -p: cannot write the memory file of PID {}: {}", pid, strerror(errno)));
      written += put;
    }
    done += got;
  }
  if (fcntl(memory.get(), F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0)
    throw FatalError(fmt::format("--sample-bytes -p: cannot seal the memory file of PID {}: {}", pid, strerror(errno)));
  return memory;
}

}  // namespace

SamplerInjection SamplerInjection::inject(pid_t pid, const std::string& library, uint64_t sample_bytes,
                                          uint64_t set_slots) {
  ProcessPlan plan = plan_injection(pid, library);
  SamplerInjection injection(pid, library);
  auto thread = seize_at_safe_point(pid, plan.unsafe);
  uint64_t dlopen_address = *plan.libc.address_of("dlopen");
  uint64_t dlsym_address = *plan.libc.address_of("dlsym");
  // The path the process opens: the library itself, or in a container a memory file the process
  // creates, memscope fills, and the process opens through its own /proc/self/fd.
  std::string opened_path = library;
  int memory_fd = -1;
  if (plan.foreign_mount_namespace) {
    // Named like the library, so that its mapping ("/memfd:libmemscope-sampler.so (deleted)") is
    // recognised as the sampler's when its frames are dropped from stacks.
    constexpr uint64_t kMemfdFlags = 0x0001 | 0x0002;  // MFD_CLOEXEC | MFD_ALLOW_SEALING
    memory_fd = static_cast<int>(thread->call(*plan.libc.address_of("memfd_create"),
                                              {thread->push_bytes(kSamplerLibraryName), kMemfdFlags},
                                              "memfd_create"));
    if (memory_fd < 0) {
      thread->release();
      refuse(pid, "is in another mount namespace (a container) and could not create a memory file for the sampler library");
    }
    try {
      injection.memory_file_ = copy_into_memory_file(pid, memory_fd, library);
    } catch (const FatalError&) {
      thread->call(*plan.libc.address_of("close"), {static_cast<uint64_t>(memory_fd)}, "close");
      thread->release();
      throw;
    }
    opened_path = fmt::format("/proc/self/fd/{}", memory_fd);
  }
  uint64_t handle = thread->call(dlopen_address, {thread->push_bytes(opened_path), kRtldNow}, "dlopen of the sampler");
  std::string why_not_loaded;
  if (!handle) {
    uint64_t message = thread->call(*plan.libc.address_of("dlerror"), {}, "dlerror");
    why_not_loaded = message ? thread->read_string(message) : "no reason given";
  }
  // The mapping keeps the memory file alive; the process keeps no descriptor of it.
  if (memory_fd >= 0) thread->call(*plan.libc.address_of("close"), {static_cast<uint64_t>(memory_fd)}, "close");
  if (!handle) {
    thread->release();
    refuse(pid, fmt::format("could not load {}: {}{}", library, why_not_loaded,
                            memory_fd >= 0 ? " (is /proc mounted in its container?)" : ""));
  }
  auto lookup = [&](const char* symbol) {
    uint64_t address = thread->call(dlsym_address, {handle, thread->push_bytes(symbol)}, "dlsym");
    if (!address) {
      thread->release();
      throw FatalError(fmt::format("--sample-bytes -p: {} in PID {} has no {}", library, pid, symbol));
    }
    return address;
  };
  uint64_t inject_function = lookup("memscope_sampler_inject");
  uint64_t eject_function = lookup("memscope_sampler_eject");
  auto redirected = static_cast<long>(thread->call(inject_function, {sample_bytes, set_slots}, "the sampler's injection"));
  thread->release();
  if (redirected == -EBUSY)
    refuse(pid, "is sampled by another tracer already (another memscope --sample-bytes)");
  if (redirected <= 0)
    refuse(pid, "calls malloc through no GOT entry the sampler can redirect (a foreign allocator?)");
  injection.redirected_ = redirected;
  injection.eject_function_ = eject_function;  // from here on, the destructor puts the entries back
  log::verbose("sampler {} loaded into PID {}{}: {} GOT entries redirected", library, pid,
               memory_fd >= 0 ? " as a sealed memory file (the process is in another mount namespace)" : "",
               redirected);
  return injection;
}

std::string SamplerInjection::probe_path() const {
  return memory_file_ ? fmt::format("/proc/self/fd/{}", memory_file_.get()) : library_;
}

SamplerInjection::SamplerInjection(SamplerInjection&& other) noexcept
    : pid_(other.pid_),
      library_(std::move(other.library_)),
      memory_file_(std::move(other.memory_file_)),
      eject_function_(other.eject_function_),
      redirected_(other.redirected_) {
  other.eject_function_ = 0;
}

SamplerInjection::~SamplerInjection() { eject(); }

void SamplerInjection::eject() {
  if (!eject_function_) return;
  uint64_t function = eject_function_;
  eject_function_ = 0;
  if (kill(pid_, 0) != 0) return;  // gone: nothing to put back
  try {
    auto maps = symbols::read_proc_maps(pid_);
    if (!maps || maps->empty()) return;  // gone, or a zombie
    ProcessPlan plan = plan_injection(pid_, library_);
    auto thread = seize_at_safe_point(pid_, plan.unsafe);
    auto restored = static_cast<long>(thread->call(function, {}, "the sampler's removal"));
    thread->release();
    log::verbose("sampler in PID {}: {} GOT entries put back", pid_, restored);
  } catch (const FatalError& failure) {
    log::warning("the sampler's GOT entries in PID {} were not put back ({}); it goes on sampling nothing, "
                 "through the sampler's functions",
                 pid_, failure.what());
  }
}

}  // namespace memscope::memleak
