// scan_bench: how fast the leak proof scans, and how long it pauses the target, per GiB of heap.
//
//   scan_bench [MiB ...]        (default: 64 256 1024)
//
// For each size, a child process fills a heap of about that many MiB with blocks of 32 B to 4 KiB
// (mean ~1.1 KiB) linked into a graph: a pointer array (the root, from a global) refers to 90% of
// them, every block holds pointers into a few random referenced blocks, 10% are unreferenced. It
// sends the block list through a pipe and waits; this process scans it with scan_process() and
// prints the pause (wall), the CPU time it spent, the bytes scanned and the rates, and checks that
// exactly the unreferenced 10% came out Leaked. Run as root (or ptrace_scope 0): it traces its child.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "tools/memleak/heap_scanner.hpp"

using memscope::memleak::BlockVerdict;
using memscope::memleak::TrackedBlock;

void** volatile bench_root;  // the pointer array: a global, so data/bss reaches it

namespace {

// In the child: builds a heap of about `bytes`, sends the block list through `pipe_out` and keeps
// only the graph itself (the list is freed, so no untracked copy of every address stays behind).
[[noreturn]] void build_heap_and_wait(uint64_t bytes, int pipe_out) {
  std::mt19937_64 random(42);
  std::uniform_int_distribution<uint64_t> block_size(32, 2048);
  auto* blocks = new std::vector<TrackedBlock>();
  uint64_t heap_bytes = 0;
  while (heap_bytes < bytes) {
    uint64_t size = block_size(random);
    if (random() % 8 == 0) size *= 2;
    size &= ~uint64_t{7};
    void* block = std::malloc(size);
    blocks->push_back({reinterpret_cast<uint64_t>(block), size});
    heap_bytes += size;
  }
  // Every block refers into up to four random referenced blocks (interior pointers included); its
  // other words are small integers, like real data.
  for (const TrackedBlock& block : *blocks) {
    auto* words = reinterpret_cast<uint64_t*>(block.address);
    size_t count = block.size / 8;
    for (size_t i = 0; i < count; ++i) words[i] = random() % 100000;
    for (int link = 0; link < 4 && link < static_cast<int>(count); ++link) {
      size_t target = random() % blocks->size();
      if (target % 10 == 0) target = (target + 1) % blocks->size();  // never into an unreferenced one
      const TrackedBlock& other = (*blocks)[target];
      words[random() % count] = other.address + (random() % other.size & ~uint64_t{7});
    }
  }
  // The root: a pointer array referenced from a global, holding 9 blocks in 10.
  bench_root = static_cast<void**>(std::malloc(blocks->size() * sizeof(void*)));
  for (size_t i = 0; i < blocks->size(); ++i)
    bench_root[i] = i % 10 != 0 ? reinterpret_cast<void*>((*blocks)[i].address) : nullptr;
  blocks->push_back({reinterpret_cast<uint64_t>(bench_root), (blocks->size()) * sizeof(void*)});
  uint64_t count = blocks->size();
  bool sent = write(pipe_out, &count, sizeof count) == sizeof count;
  const char* data = reinterpret_cast<const char*>(blocks->data());
  for (size_t left = count * sizeof(TrackedBlock); sent && left > 0;) {
    ssize_t written = write(pipe_out, data, left);
    sent = written > 0;
    data += written;
    left -= static_cast<size_t>(written);
  }
  close(pipe_out);
  delete blocks;  // large: glibc munmaps it
  for (;;) pause();
}

double thread_cpu_ms() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) * 1e3 + static_cast<double>(now.tv_nsec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<uint64_t> sizes_mib;
  for (int i = 1; i < argc; ++i) sizes_mib.push_back(std::strtoull(argv[i], nullptr, 10));
  if (sizes_mib.empty()) sizes_mib = {64, 256, 1024};

  std::printf("%9s %9s %9s %10s %10s %11s %8s %11s %11s\n", "HEAP_MiB", "BLOCKS", "LEAKED", "PAUSE_ms",
              "CPU_ms", "SCANNED_MiB", "MB/s", "ms/GiB", "CPUms/GiB");
  for (uint64_t mib : sizes_mib) {
    int channel[2];
    if (pipe(channel) != 0) return 1;
    pid_t child = fork();
    if (child == 0) {
      close(channel[0]);
      build_heap_and_wait(mib << 20, channel[1]);
    }
    close(channel[1]);
    uint64_t count = 0;
    std::vector<TrackedBlock> blocks;
    bool received = read(channel[0], &count, sizeof count) == sizeof count;
    blocks.resize(count);
    char* data = reinterpret_cast<char*>(blocks.data());
    for (size_t left = count * sizeof(TrackedBlock); received && left > 0;) {
      ssize_t got = read(channel[0], data, left);
      received = got > 0;
      data += got;
      left -= static_cast<size_t>(got);
    }
    close(channel[0]);
    if (!received) {
      std::fprintf(stderr, "scan_bench: the child did not send its blocks\n");
      kill(child, SIGKILL);
      waitpid(child, nullptr, 0);
      return 1;
    }
    usleep(200000);  // let it free its list and pause()

    double cpu_before = thread_cpu_ms();
    auto report = memscope::memleak::scan_process(child, blocks);
    double cpu_ms = thread_cpu_ms() - cpu_before;
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    if (!report) {
      std::fprintf(stderr, "scan_bench: %s\n", report.error().message.c_str());
      return 1;
    }
    uint64_t leaked = 0, unreferenced = (count - 1 + 9) / 10;
    for (BlockVerdict verdict : report->verdicts) leaked += verdict == BlockVerdict::Leaked;
    double scanned_mib = static_cast<double>(report->bytes_scanned) / (1 << 20);
    double rate = static_cast<double>(report->bytes_scanned) / 1e6 / (report->pause_ms / 1e3);
    std::printf(
        "%9llu %9zu %9llu %10.1f %10.1f %11.1f %8.0f %11.1f %11.1f\n", static_cast<unsigned long long>(mib),
        blocks.size(), static_cast<unsigned long long>(leaked), report->pause_ms, cpu_ms, scanned_mib, rate,
        report->pause_ms * 1024.0 / static_cast<double>(mib), cpu_ms * 1024.0 / static_cast<double>(mib));
    if (leaked != unreferenced)
      std::fprintf(stderr, "scan_bench: %llu leaked, %llu unreferenced\n",
                   static_cast<unsigned long long>(leaked), static_cast<unsigned long long>(unreferenced));
  }
  return 0;
}
