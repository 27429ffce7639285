// memleak: outstanding (not yet freed) allocations by stack, BCC's memleak with its options and
// text layout. User mode (-p PID, or -c COMMAND traced from its first instruction) probes the
// allocator functions with uprobes and can prove leaks with a conservative heap scan
// (heap_scanner.hpp); kernel mode (neither) traces the kmem and percpu tracepoints.
#include "memleak.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unordered_set>

#include "allocator_libraries.hpp"
#include "allocator_probes.hpp"
#include "command_words.hpp"
#include "heap_scanner.hpp"
#include "memleak_kernel.skel.h"
#include "kernel_allocations.hpp"
#include "memleak_sampled.skel.h"
#include "memleak_user.skel.h"
#include "outstanding_report.hpp"
#include "process_stopper.hpp"
#include "sampled_mode.hpp"
#include "sampler_injection.hpp"
#include "runtime/bpf_skeleton.hpp"
#include "runtime/event_loop.hpp"
#include "runtime/kernel_introspection.hpp"
#include "runtime/log.hpp"
#include "runtime/map_precreation.hpp"
#include "runtime/map_reading.hpp"
#include "runtime/ring_buffer_reader.hpp"
#include "runtime/stack_map.hpp"
#include "runtime/tool.hpp"
#include "runtime/user_stacks.hpp"
#include "runtime/tracing_session.hpp"
#include "symbols/symbolizer.hpp"
#include "traced_command.hpp"

namespace memscope {
namespace {

using memleak::OutstandingAllocation;
using memleak::StackSummary;

const output::Schema kAllocCallSchema = {
    "alloc",
    {
        {"pid", "PID", output::FieldType::UInt},
        {"tid", "TID", output::FieldType::UInt},
        {"address", "ADDRESS", output::FieldType::Hex},
        {"size", "SIZE", output::FieldType::UInt},
    },
    "alloc exited, pid = {0}, tid = {1}, size = {3}, result = {2}",
};

const output::Schema kFreeCallSchema = {
    "free",
    {
        {"pid", "PID", output::FieldType::UInt},
        {"tid", "TID", output::FieldType::UInt},
        {"address", "ADDRESS", output::FieldType::Hex},
        {"size", "SIZE", output::FieldType::UInt},
    },
    "free entered, pid = {0}, tid = {1}, address = {2}, size = {3}",
};

// -a: one line per outstanding allocation of the reported stacks, as BCC prints them.
const output::Schema kAllocationSchema = {
    "allocation",
    {
        {"address", "ADDRESS", output::FieldType::Hex},
        {"size", "SIZE", output::FieldType::UInt},
        {"age_ms", "AGE", output::FieldType::UInt},
        {"stack_id", "STACK", output::FieldType::Int},
    },
    "\taddr = {0} size = {1} age = {2} ms",
};

const output::Schema kLeakScanSchema = {
    "leak_scan",
    {
        {"pid", "PID", output::FieldType::UInt},
        {"pause_ms", "PAUSE", output::FieldType::Float, 0, false, 2},
        {"bytes_scanned", "SCANNED", output::FieldType::UInt},
        {"threads", "THREADS", output::FieldType::UInt},
        {"leaked_bytes", "LEAKED", output::FieldType::UInt},
        {"leaked_count", "LEAKEDN", output::FieldType::UInt},
        {"reachable_bytes", "REACHABLE", output::FieldType::UInt},
        {"reachable_count", "REACHABLEN", output::FieldType::UInt},
    },
    "Leak scan of PID {0}: paused it {1} ms, scanned {2} bytes and {3} threads; {4} bytes in {5} allocations "
    "leaked, {6} bytes in {7} allocations reachable",
};

uint64_t monotonic_ns() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1000000000ULL + static_cast<uint64_t>(now.tv_nsec);
}

// Every entry of the `allocs` map, in batches where the kernel supports it (5.6+).
std::vector<OutstandingAllocation> read_allocations(int allocs_fd) {
  std::vector<OutstandingAllocation> result;
  uint32_t batch_size = 4096;
  std::vector<uint64_t> keys;
  std::vector<memleak_allocation> values;
  uint64_t in_batch = 0, out_batch = 0;
  bool first = true, batches_work = true;
  for (;;) {
    keys.resize(batch_size);
    values.resize(batch_size);
    uint32_t count = batch_size;
    LIBBPF_OPTS(bpf_map_batch_opts, options);
    int err = bpf_map_lookup_batch(allocs_fd, first ? nullptr : &in_batch, &out_batch, keys.data(),
                                   values.data(), &count, &options);
    int error = err ? errno : 0;
    if (err && error == ENOSPC && count == 0) {  // one bucket holds more than a batch
      batch_size *= 2;
      continue;
    }
    if (err && error != ENOENT) {
      batches_work = false;
      break;
    }
    for (uint32_t i = 0; i < count; i++)
      result.push_back({keys[i], values[i].size, values[i].timestamp_ns, values[i].stack_id});
    if (err) break;  // ENOENT: that was the last batch
    in_batch = out_batch;
    first = false;
  }
  if (batches_work) return result;
  result.clear();
  uint64_t key = 0, next = 0;
  const void* previous = nullptr;
  while (bpf_map_get_next_key(allocs_fd, previous, &next) == 0) {
    memleak_allocation value;
    if (bpf_map_lookup_elem(allocs_fd, &next, &value) == 0)
      result.push_back({next, value.size, value.timestamp_ns, value.stack_id});
    key = next;
    previous = &key;
  }
  return result;
}

void clear_map(int fd, size_t key_size) {
  std::vector<unsigned char> key(key_size);
  while (bpf_map_get_next_key(fd, nullptr, key.data()) == 0)
    if (bpf_map_delete_elem(fd, key.data()) != 0) break;
}

struct MemleakOptions {
  bool trace = false;
  bool show_allocations = false;
  double older_ms = 500;
  std::string command;
  bool combined_only = false;
  bool workaround_missing_free = false;
  uint64_t sample_rate = 1;
  size_t top = 10;
  uint64_t min_size = 0;
  uint64_t max_size = std::numeric_limits<uint64_t>::max();
  std::string object;
  bool percpu = false;
  std::string symbols_prefix;
  std::string sort = "size";
  bool scan = false;
  bool no_scan = false;
  int growing_intervals = 3;
  uint32_t max_allocations = 0;  // 0: the mode's default
  std::optional<uint64_t> sample_bytes;  // --sample-bytes: sampled in the process (sampled_mode.hpp)
  uint64_t scan_max_pause_ms = 10000;
  uint64_t scan_max_bytes = 16ULL << 30;
};

const auto kUserSkeleton = MEMSCOPE_SKELETON_OPS(memleak_user);
const auto kKernelSkeleton = MEMSCOPE_SKELETON_OPS(memleak_kernel);
const auto kSampledSkeleton = MEMSCOPE_SKELETON_OPS(memleak_sampled);

class MemleakTool : public Tool {
 public:
  CommonOptionSet common_options() const override {
    CommonOptionSet set;
    set.interval = true;
    set.default_interval = 5;
    set.folded = true;
    set.user_stacks = true;
    // BCC's letters: -t trace, -T top, -a, -o, -c, -s, -z, -Z, -O.
    set.reserved_letters = {'t', 'T', 'a', 'o', 'c', 's', 'z', 'Z', 'O'};
    return set;
  }

  void add_options(CLI::App& app) override {
    app.add_flag("-t,--trace", opts_.trace, "Print every allocation and free as it happens");
    app.add_flag("-a,--show-allocs", opts_.show_allocations,
                 "List the outstanding allocations (address, size, age) of the reported stacks");
    app.add_option("-o,--older", opts_.older_ms,
                   "Report only allocations at least this old, in ms (default 500; the report at the traced "
                   "process's exit counts all)")
        ->check(non_negative_number());
    app.add_option("-c,--command", opts_.command,
                   "Run this command (split like a shell does, without one) and trace it from its first "
                   "instruction to its exit");
    app.add_flag("--combined-only", opts_.combined_only,
                 "Keep per-stack totals in the kernel and report only those (cheaper; -o does not apply)");
    app.add_flag(
        "--wa-missing-free", opts_.workaround_missing_free,
        "Accepted for BCC compatibility: an allocation at an address still recorded always replaces it");
    app.add_option("-s,--sample-rate", opts_.sample_rate, "Track every Nth allocation only (in the kernel)")
        ->check(positive_number());
    app.add_option("-T,--top", opts_.top, "Show this many stacks (default 10)")->check(positive_number());
    app.add_option("-z,--min-size", opts_.min_size, "Track only allocations of at least this many bytes");
    app.add_option("-Z,--max-size", opts_.max_size, "Track only allocations of at most this many bytes");
    app.add_option("-O,--obj", opts_.object,
                   "Allocator object to probe: a path or a library name (c, jemalloc, tcmalloc, mimalloc); "
                   "default: what the process maps");
    app.add_flag("--percpu", opts_.percpu, "Kernel mode: trace percpu allocations instead of kmalloc/pages");
    app.add_option("--symbols-prefix", opts_.symbols_prefix,
                   "Prefix of the allocator's function names, e.g. je_ for a jemalloc built with one");
    app.add_option("--sort", opts_.sort, "Order stacks by outstanding bytes (size) or allocations (count)")
        ->check(CLI::IsMember({"size", "count"}));
    app.add_flag("--scan", opts_.scan,
                 "Prove leaks at every report: scan the process for references (pauses it)");
    app.add_flag("--no-scan", opts_.no_scan, "Do not scan the process at the final report");
    app.add_option("--growing-intervals", opts_.growing_intervals,
                   "GROWING: outstanding bytes rose in each of the last N reports (default 3)")
        ->check(positive_number());
    app.add_option("--max-allocations", opts_.max_allocations,
                   "Capacity of the outstanding-allocation map (default 262144; preallocated in kernel mode)")
        ->check(positive_number());
    app.add_option_function<std::string>(
           "--sample-bytes",
           [this](const std::string& text) {
             uint64_t bytes = memleak::kDefaultSampleBytes;
             if (!text.empty()) {
               char* end = nullptr;
               errno = 0;
               unsigned long long value = strtoull(text.c_str(), &end, 10);
               if (errno || *end || value == 0 || text[0] == '-')
                 throw CLI::ValidationError("--sample-bytes", "expects a number of bytes of at least 1, got " + text);
               bytes = value;
             }
             opts_.sample_bytes = bytes;
           },
           "Sample in the process: one allocation per N allocated bytes on average (default 524288), "
           "estimates per stack; needs -c")
        ->expected(0, 1);
    app.add_option("--scan-max-pause", opts_.scan_max_pause_ms,
                   "A leak scan that keeps the process stopped longer than this many ms is abandoned and the "
                   "process resumed (default 10000)")
        ->check(positive_number());
    app.add_option("--scan-max-bytes", opts_.scan_max_bytes,
                   "A leak scan that reads more than this many bytes of the process is abandoned and the "
                   "process resumed (default 16 GiB)")
        ->check(positive_number());
  }

  void validate(const CommonOptions& options) override {
    user_mode_ = options.pid > 0 || !opts_.command.empty();
    if (options.pid > 0 && !opts_.command.empty()) throw FatalError("-p and -c exclude each other");
    if (opts_.min_size > opts_.max_size)
      throw FatalError(fmt::format("-z {} is larger than -Z {}", opts_.min_size, opts_.max_size));
    if (opts_.scan && opts_.no_scan) throw FatalError("--scan and --no-scan exclude each other");
    growth_ = memleak::GrowthTracker(opts_.growing_intervals);
    if (user_mode_ && opts_.percpu)
      throw FatalError("--percpu traces the kernel's percpu allocator: not with -p/-c");
    if (!user_mode_) {
      if (!opts_.object.empty() || !opts_.symbols_prefix.empty())
        throw FatalError("-O and --symbols-prefix choose a user-space allocator: they need -p or -c");
      if (opts_.scan) throw FatalError("--scan proves leaks in a user process: it needs -p or -c");
    }
    if (opts_.sample_bytes) validate_sampled();
    if (!user_mode_) precreate_kernel_maps();
    if (!opts_.command.empty()) {
      auto words = memleak::split_command_words(opts_.command);
      if (!words) throw FatalError("-c: " + words.error().message);
      if (words->empty()) throw FatalError("-c: empty command");
      command_words_ = *words;
    }
  }

  std::vector<ProbeSpec> probes(const KernelFeatures&) const override {
    if (user_mode_ && opts_.sample_bytes)
      return {{"sampler probes",
               {{HookKind::Uprobe, {{"memleak_sampled_alloc", {}}, {"memleak_sampled_free", {}}}}}}};
    if (user_mode_) return {{"allocator calls", {{HookKind::Uprobe, memleak::allocator_programs()}}}};
    // One alternative attaches an event's allocation and free programs together (page keys differ
    // between tp_btf/raw_tp and the classic tracepoint). Program names: memleak_<name>_btf,
    // _raw_tp, _tp.
    struct Hook {
      const char* name;        // program name stem
      const char* tracepoint;  // BTF tracepoint name; the classic one is kmem:<name> or percpu:<name>
      const char* category;
      bool optional;
    };
    auto spec = [](const char* event, std::vector<Hook> hooks, bool optional) {
      std::vector<HookProgram> btf, raw, classic;
      for (const auto& hook : hooks) {
        std::string stem = std::string("memleak_") + hook.name;
        btf.push_back({stem + "_btf", {hook.tracepoint}, hook.optional});
        raw.push_back({stem + "_raw_tp", {hook.tracepoint}, hook.optional});
        classic.push_back(
            {stem + "_tp", {std::string(hook.category) + ":" + hook.tracepoint}, hook.optional});
      }
      // raw_tp before tp_btf: the bodies are the same, and a tp_btf program makes libbpf parse
      // the whole kernel BTF to find its target (~10 ms of start-up; raw_tp needs no BTF).
      ProbeSpec result{event,
                       {{HookKind::RawTp, raw}, {HookKind::TpBtf, btf}, {HookKind::Tracepoint, classic}}};
      result.optional = optional;
      return result;
    };
    if (opts_.percpu)
      return {spec("percpu allocations",
                   {{"percpu_alloc", "percpu_alloc_percpu", "percpu", false},
                    {"percpu_free", "percpu_free_percpu", "percpu", false}},
                   false)};
    // kmalloc_node and kmem_cache_alloc_node exist up to 6.0 (merged into kmalloc and
    // kmem_cache_alloc in 6.1): optional.
    return {
        spec("kmalloc",
             {{"kmalloc", "kmalloc", "kmem", false},
              {"kmalloc_node", "kmalloc_node", "kmem", true},
              {"kfree", "kfree", "kmem", false}},
             false),
        spec("kmem_cache_alloc",
             {{"kmem_cache_alloc", "kmem_cache_alloc", "kmem", false},
              {"kmem_cache_alloc_node", "kmem_cache_alloc_node", "kmem", true},
              {"kmem_cache_free", "kmem_cache_free", "kmem", false}},
             true),
        spec("page allocations",
             {{"page_alloc", "mm_page_alloc", "kmem", false}, {"page_free", "mm_page_free", "kmem", false}},
             true),
    };
  }

  std::shared_ptr<bpf_object> open_bpf_object() const override {
    if (user_mode_ && opts_.sample_bytes) return open_unloaded<memleak_sampled>(kSampledSkeleton);
    return user_mode_ ? open_unloaded<memleak_user>(kUserSkeleton)
                      : open_unloaded<memleak_kernel>(kKernelSkeleton);
  }

  int run(ToolContext& context) override {
    if (user_mode_ && opts_.sample_bytes) return run_sampled(context);
    return user_mode_ ? run_user(context) : run_kernel(context);
  }

 private:
  // The maps a report reads, from whichever skeleton is loaded.
  struct Maps {
    int allocs = -1;
    int stack_totals = -1;
    int stacks = -1;
    int overflow_stacks = -1;
    bpf_object* object = nullptr;
    int sample_weights = -1;  // --sample-bytes
    int alloc_totals = -1;
  };

  template <typename Rodata>
  void configure_common_rodata(Rodata* rodata) {
    rodata->combined_only = opts_.combined_only;
    rodata->trace_calls = opts_.trace;
    rodata->sample_every = opts_.sample_rate;
    rodata->min_size = opts_.min_size;
    rodata->max_size = opts_.max_size;
    rodata->hash_with_bpf_loop = kernel_has_bpf_helper("BPF_FUNC_loop");
  }

  int run_user(ToolContext& context) {
    memleak::AllocatorRequest request{opts_.object, opts_.symbols_prefix};
    std::unique_ptr<memleak::TracedCommand> command;
    memleak::AllocatorPlan plan;
    if (!command_words_.empty()) {
      std::string executable = memleak::find_executable(command_words_.front());
      plan = memleak::plan_allocator_for_command(executable, request);
      command = std::make_unique<memleak::TracedCommand>(executable, command_words_);
      pid_ = command->pid();
    } else {
      pid_ = context.options.pid;
      refuse_scan_of_traced_process();
      plan = memleak::plan_allocator_for_process(pid_, request);
    }
    comm_ = process_comm(pid_);
    context.symbolizer.prepare(pid_);

    std::string allocator = plan.malloc_object.substr(plan.malloc_object.rfind('/') + 1);
    bool uprobe_multi = false;
    run_tracing_step<memleak_user>(
        context, kUserSkeleton,
        {.what = fmt::format("outstanding allocations of PID {} ({}{})", pid_,
                             plan.static_executable ? "static executable " : "", allocator),
         .configure =
             [&](memleak_user& skel) {
               skel.rodata->filter_tgid = static_cast<unsigned>(pid_);
               configure_common_rodata(skel.rodata);
               bpf_map__set_max_entries(skel.maps.allocs, allocation_capacity());
               uprobe_multi = memleak::prepare_uprobe_multi(skel.obj);
               prepare_user_stacks(context, command.get());
               context.user_stacks->fit_user_only_stack_map(skel.maps.stacks);
             },
         .attached =
             [&](Skeleton<memleak_user>& skel, EventLoop& loop) {
               auto attached =
                   memleak::attach_allocator_probes(skel.object(), skel.links(), plan, pid_, uprobe_multi);
               log::verbose("{} uprobe links ({})", skel.links().size(),
                            uprobe_multi ? "uprobe_multi" : "perf events");
               for (const auto& function : attached)
                 log::verbose("probing {} in {}", function.symbol, function.object);
               maps_ = {bpf_map__fd(skel->maps.allocs), bpf_map__fd(skel->maps.stack_totals),
                        bpf_map__fd(skel->maps.stacks), bpf_map__fd(skel->maps.overflow_stacks),
                        skel.object()};
               follow_target(context, loop, command.get());
             },
         .on_record = call_printer(context),
         .on_interval = interval_reports(context, command.get()),
         .stopped = [&](StopReason reason) { final_report(context, reason, command.get()); },
         .finish = [&](const TracingOutcome&) { print_drops(context, true); }});
    return 0;
  }

  // --sample-bytes: what the sampled mode cannot do, refused before anything starts.
  uint32_t kernel_allocation_capacity() const { return opts_.max_allocations ? opts_.max_allocations : 262144; }

  // Kernel mode's two large preallocated maps (the allocation table and the stack map, ~10 ms of
  // map creation) are built while memscope resolves probes and opens the object
  // (runtime/map_precreation.hpp); configure hands them to libbpf if their definitions still match.
  void precreate_kernel_maps() {
    precreated_maps_ = std::make_unique<PrecreatedMaps>(std::vector<PrecreatedMaps::Definition>{
        {BPF_MAP_TYPE_HASH, "allocs", sizeof(uint64_t), sizeof(memleak_allocation), kernel_allocation_capacity(), 0},
        {BPF_MAP_TYPE_STACK_TRACE, "stacks", sizeof(uint32_t), MEMSCOPE_MAX_STACK_DEPTH * sizeof(uint64_t),
         MEMLEAK_STACK_MAP_ENTRIES, 0}});
  }

  void validate_sampled() {
    if (!user_mode_) throw FatalError("--sample-bytes samples a user process's heap: it needs -c or -p");
    if (opts_.combined_only) throw FatalError("--sample-bytes and --combined-only exclude each other");
    if (opts_.sample_rate != 1)
      throw FatalError("--sample-bytes and -s exclude each other (sampling by bytes replaces sampling by calls)");
    if (opts_.min_size != 0 || opts_.max_size != std::numeric_limits<uint64_t>::max())
      throw FatalError("--sample-bytes and -z/-Z exclude each other (size filters would bias the estimates)");
    if (!opts_.object.empty() || !opts_.symbols_prefix.empty())
      throw FatalError(
          "--sample-bytes: -O and --symbols-prefix choose functions to probe; the sampler library wraps "
          "whatever allocator the process uses");
  }

  // -c: the command starts with the library preloaded. -p: the library is loaded into the process
  // and its allocator calls redirected (sampler_injection.hpp), before any BPF program loads, and
  // put back at the end, after the probes are detached (sampling has stopped by then).
  int run_sampled(ToolContext& context) {
    sampler_library_ = memleak::find_sampler_library();
    uint64_t set_slots = 2ULL * allocation_capacity();
    std::unique_ptr<memleak::TracedCommand> command;
    std::optional<memleak::SamplerInjection> injection;
    if (!command_words_.empty()) {
      std::string executable = memleak::find_executable(command_words_.front());
      if (memleak::plan_allocator_for_command(executable, {}).static_executable)
        throw FatalError(fmt::format("--sample-bytes: {} is a static executable and cannot load the sampler "
                                     "library; full-fidelity memleak (without --sample-bytes) still works",
                                     executable));
      command = std::make_unique<memleak::TracedCommand>(
          executable, command_words_, memleak::sampler_environment(sampler_library_, *opts_.sample_bytes, set_slots));
      pid_ = command->pid();
    } else {
      pid_ = context.options.pid;
      refuse_scan_of_traced_process();
      injection.emplace(memleak::SamplerInjection::inject(pid_, sampler_library_, *opts_.sample_bytes, set_slots));
      sampler_library_ = injection->probe_path();
    }
    comm_ = process_comm(pid_);
    context.symbolizer.prepare(pid_);
    run_tracing_step<memleak_sampled>(
        context, kSampledSkeleton,
        {.what = fmt::format("sampled allocations of PID {} (one per {} bytes on average)", pid_,
                             *opts_.sample_bytes),
         .configure =
             [&](memleak_sampled& skel) {
               skel.rodata->filter_tgid = static_cast<unsigned>(pid_);
               configure_common_rodata(skel.rodata);
               bpf_map__set_max_entries(skel.maps.allocs, allocation_capacity());
               bpf_map__set_max_entries(skel.maps.sample_weights, allocation_capacity());
               prepare_user_stacks(context, command.get());
               context.user_stacks->fit_user_only_stack_map(skel.maps.stacks);
             },
         .attached =
             [&](Skeleton<memleak_sampled>& skel, EventLoop& loop) {
               memleak::attach_sampler_probes(skel->progs.memleak_sampled_alloc, skel->progs.memleak_sampled_free,
                                              skel.links(), pid_, sampler_library_);
               log::verbose("sampler {} {}, probes ddheap:alloc and ddheap:free attached", sampler_library_,
                            command ? "preloaded" : "loaded");
               maps_ = {bpf_map__fd(skel->maps.allocs),        bpf_map__fd(skel->maps.stack_totals),
                        bpf_map__fd(skel->maps.stacks),        bpf_map__fd(skel->maps.overflow_stacks),
                        skel.object(),                         bpf_map__fd(skel->maps.sample_weights),
                        bpf_map__fd(skel->maps.alloc_totals)};
               follow_target(context, loop, command.get());
             },
         .on_record = call_printer(context),
         .on_interval = interval_reports(context, command.get()),
         .stopped = [&](StopReason reason) { final_report(context, reason, command.get()); },
         .finish = [&](const TracingOutcome&) { print_drops(context, true); }});
    return 0;
  }

  uint32_t allocation_capacity() const { return opts_.max_allocations ? opts_.max_allocations : 262144; }

  // --scan stops the process at every report: a process a debugger holds cannot be stopped by a
  // second tracer, so refuse now rather than trace it without the verdicts asked for. (The default
  // final scan just warns when it cannot run.)
  void refuse_scan_of_traced_process() {
    if (!opts_.scan) return;
    Result<pid_t> tracer = memleak::tracer_of(pid_);
    if (tracer && *tracer > 0)
      throw FatalError(fmt::format("--scan: PID {} is already traced by PID {} (a debugger?); it cannot "
                                   "be stopped for a leak scan (use --no-scan)",
                                   pid_, *tracer));
  }

  void prepare_user_stacks(ToolContext& context, memleak::TracedCommand* command) {
    user_stacks_ = context.user_stacks;
    user_stacks_->preload(pid_);
    if (command) user_stacks_->stop_while_loading(pid_);
  }

  // Once the probes are attached. -p: remembers the image the process runs (an exec voids its
  // allocations). -c: follows the command's execs and the unwinder's stops, then starts it.
  void follow_target(ToolContext& context, EventLoop& loop, memleak::TracedCommand* command) {
    if (!command) {
      image_ = process_image(pid_);
      return;
    }
    command->on_exec = [this, &context] {
      // The command replaced itself with another program: its allocations are void.
      forget_allocations();
      context.symbolizer.forget(pid_);
      comm_ = process_comm(pid_);
      if (context.user_stacks) context.user_stacks->load_process(pid_);
    };
    command->on_unwinder_stop = [&context](pid_t tid) {
      return context.user_stacks && context.user_stacks->take_stop(tid);
    };
    loop.watch_fd(command->notification_fd(), [command] { return command->handle_events(); });
    command->start();
  }

  // A report every interval; the last of COUNT reports is the final one: it gets the leak scan
  // unless --no-scan.
  std::function<void()> interval_reports(ToolContext& context, memleak::TracedCommand* command) {
    return [this, &context, command, reports = 0]() mutable {
      bool last = context.options.count > 0 && ++reports >= context.options.count;
      report(context, false, opts_.scan || (last && !opts_.no_scan), command);
    };
  }

  // The final report reads the traced process's memory: before its allocator calls are let go.
  void final_report(ToolContext& context, StopReason reason, memleak::TracedCommand* command) {
    bool exited = reason == StopReason::ProcessExited;
    bool memory_intact = command ? command->at_exit_stop() || !command->gone() : !exited;
    if (reason != StopReason::Count) report(context, exited, !opts_.no_scan && memory_intact, command);
    if (command) {
      command->finish();
      log::verbose("command exited with wait status {:#x}", command->wait_status());
    }
  }

  // The blocks recorded so far belong to an address space that is gone (exec).
  void forget_allocations() {
    clear_map(maps_.allocs, sizeof(uint64_t));
    clear_map(maps_.stack_totals, sizeof(uint32_t));
    if (maps_.sample_weights >= 0) clear_map(maps_.sample_weights, sizeof(uint64_t));
    if (maps_.alloc_totals >= 0) clear_map(maps_.alloc_totals, sizeof(uint32_t));
  }

  int run_kernel(ToolContext& context) {
    pid_ = 0;
    comm_ = "kernel";
    run_tracing_step<memleak_kernel>(
        context, kKernelSkeleton,
        {.what = opts_.percpu ? "outstanding kernel percpu allocations"
                              : "outstanding kernel allocations (kmalloc, kmem_cache, pages)",
         .configure =
             [&](memleak_kernel& skel) {
               configure_common_rodata(skel.rodata);
               memleak::configure_kernel_skeleton(skel, kernel_allocation_capacity());
               if (precreated_maps_) {
                 precreated_maps_->hand_to(skel.maps.allocs);
                 precreated_maps_->hand_to(skel.maps.stacks);
               }
             },
         .attached =
             [&](Skeleton<memleak_kernel>& skel, EventLoop&) {
               maps_ = {bpf_map__fd(skel->maps.allocs), bpf_map__fd(skel->maps.stack_totals),
                        bpf_map__fd(skel->maps.stacks), bpf_map__fd(skel->maps.overflow_stacks),
                        skel.object()};
               std::vector<std::string> hooks;
               for (const auto& probe : context.resolved)
                 if (probe.available)
                   hooks.push_back(probe.describe());
                 else
                   log::warning("{}: not traced ({})", probe.event, probe.why_unavailable);
               log::verbose("hooks: {}", fmt::join(hooks, "; "));
             },
         .on_record = call_printer(context),
         .on_interval = [&] { report(context, false, false, nullptr); },
         .stopped =
             [&](StopReason reason) {
               if (reason != StopReason::Count) report(context, false, false, nullptr);
             },
         .finish = [&](const TracingOutcome&) { print_drops(context, true); }});
    return 0;
  }

  // -t: every allocation and free as the ring buffer brings it; without -t the buffer is not read.
  RingBufferReader::Handler call_printer(ToolContext& context) {
    if (!opts_.trace) return nullptr;
    return [this, &context](const void* data, size_t size) {
      if (size >= sizeof(memleak_call_event))
        print_call(context, *static_cast<const memleak_call_event*>(data));
    };
  }

  void print_call(ToolContext& context, const memleak_call_event& event) {
    const auto& schema = event.kind == MEMLEAK_CALL_ALLOC ? kAllocCallSchema : kFreeCallSchema;
    context.sink.record(
        schema, {uint64_t{event.pid}, uint64_t{event.tid}, uint64_t{event.address}, uint64_t{event.size}});
  }

  // Scans the traced process for references to the outstanding blocks; nullopt when it could not.
  // The outstanding blocks are read into `allocations` only once every thread is stopped: a block
  // freed between reading the map and stopping would otherwise be called leaked (and, its address
  // reused, cut a live block out of the roots).
  std::optional<std::vector<memleak::BlockVerdict>> scan(ToolContext& context,
                                                         std::vector<OutstandingAllocation>& allocations,
                                                         memleak::TracedCommand* command) {
    auto read_blocks = [&] {
      allocations = read_allocations(maps_.allocs);
      std::vector<memleak::TrackedBlock> blocks;
      blocks.reserve(allocations.size());
      for (const auto& allocation : allocations) blocks.push_back({allocation.address, allocation.size});
      return blocks;
    };
    memleak::ScanOptions options;
    // Sampled: the blocks not sampled may hold the only references, as for -p.
    options.roots_include_untracked_heap = opts_.sample_bytes.has_value();
    options.max_bytes = opts_.scan_max_bytes;
    options.max_pause = std::chrono::milliseconds(opts_.scan_max_pause_ms);
    Result<memleak::ScanReport> result = Error{"not scanned"};
    if (command) {
      // Traced since exec: every allocation is a tracked block.
      std::vector<pid_t> tids = command->hold();
      if (tids.empty()) return std::nullopt;
      // At the exit stop the exiting thread may not be the leader, which may be gone already: any
      // live thread's /proc entry names the process's memory.
      pid_t memory_owner = command->at_exit_stop() ? tids.front() : pid_;
      result = memleak::scan_stopped_process(memory_owner, tids, read_blocks(), options);
      if (!command->at_exit_stop()) command->release();
    } else {
      // Attached to a running process: blocks allocated before may hold the only references.
      options.roots_include_untracked_heap = true;
      result = memleak::scan_process_reading_blocks(pid_, read_blocks, options);
    }
    if (!result) {
      log::warning("leak scan of PID {} failed: {}", pid_, result.error().message);
      return std::nullopt;
    }
    const memleak::ScanReport& scanned = *result;
    if (scanned.verdicts.size() != allocations.size()) {
      log::warning("leak scan of PID {} returned {} verdicts for {} blocks", pid_, scanned.verdicts.size(),
                   allocations.size());
      return std::nullopt;
    }
    uint64_t leaked_bytes = 0, leaked_count = 0, reachable_bytes = 0, reachable_count = 0;
    for (size_t i = 0; i < allocations.size(); i++) {
      if (scanned.verdicts[i] == memleak::BlockVerdict::Leaked) {
        leaked_bytes += allocations[i].size;
        leaked_count++;
      } else {
        reachable_bytes += allocations[i].size;
        reachable_count++;
      }
    }
    if (opts_.sample_bytes) {  // the samples' estimates, as in the report
      leaked_bytes = leaked_count = reachable_bytes = reachable_count = 0;
      for (const auto& summary : memleak::summarize_samples(
               allocations, memleak::read_sample_weights(maps_.sample_weights), 0, 0, &scanned.verdicts)) {
        leaked_bytes += summary.leaked_bytes;
        leaked_count += summary.leaked_count;
        reachable_bytes += summary.reachable_bytes;
        reachable_count += summary.reachable_count;
      }
    }
    context.sink.record(kLeakScanSchema,
                        {uint64_t(pid_), scanned.pause_ms, scanned.bytes_scanned, uint64_t(scanned.threads),
                         leaked_bytes, leaked_count, reachable_bytes, reachable_count});
    return scanned.verdicts;
  }

  // One report: every interval, and at the end. at_target_exit: the traced process is exiting or
  // gone, so no allocation can be freed any more and -o no longer applies.
  // The image a -p target runs: /proc/PID/auxv names its entry point, program headers and the
  // random bytes on its new stack, all different after an exec (with ASLR, even of the same program).
  static std::string process_image(pid_t pid) {
    std::ifstream auxv(fmt::format("/proc/{}/auxv", pid), std::ios::binary);
    std::string image((std::istreambuf_iterator<char>(auxv)), std::istreambuf_iterator<char>());
    return image.empty() ? image : image + '\0' + process_comm(pid);
  }

  // A -p target that exec()ed: every block recorded before belongs to an address space that is gone
  // (a scan would call them all leaked), and the symbols of the old image are wrong for the new one.
  // (-c sees the exec itself, through ptrace.) Allocations of the new image made before this check
  // are dropped as well: the safe direction.
  void forget_old_image_after_exec(ToolContext& context) {
    std::string image = process_image(pid_);
    if (image.empty() || image == image_) return;
    bool first = image_.empty();
    image_ = image;
    if (first) return;
    log::warning("PID {} exec()ed a new program: its outstanding allocations are forgotten", pid_);
    forget_allocations();
    context.symbolizer.forget(pid_);
    context.symbolizer.prepare(pid_);
    comm_ = process_comm(pid_);
    if (user_stacks_) user_stacks_->load_process(pid_);
    growth_ = memleak::GrowthTracker{opts_.growing_intervals};
  }

  void report(ToolContext& context, bool at_target_exit, bool scan_now, memleak::TracedCommand* command) {
    if (opts_.sample_bytes && pid_ > 0)
      if (auto dropped = memleak::read_sampler_drops(pid_, sampler_library_)) sampler_drops_ = *dropped;
    if (pid_ > 0 && !command && !at_target_exit) forget_old_image_after_exec(context);
    if (pid_ > 0 && !(command && command->gone())) context.symbolizer.prepare(pid_);
    uint64_t now = monotonic_ns();
    std::vector<OutstandingAllocation> allocations;
    std::optional<std::vector<memleak::BlockVerdict>> verdicts;
    memleak::detach_lingering_threads();
    if (scan_now && pid_ > 0) verdicts = scan(context, allocations, command);
    if (!verdicts && (!opts_.combined_only || scan_now || opts_.show_allocations))
      allocations = read_allocations(maps_.allocs);

    uint64_t min_age_ns = at_target_exit ? 0 : static_cast<uint64_t>(opts_.older_ms * 1e6);
    std::vector<StackSummary> summaries;
    if (opts_.combined_only) {
      summaries = memleak::read_stack_totals(maps_.stack_totals);
      if (verdicts || opts_.show_allocations) {
        // Labels and -a lists from the per-allocation map; the totals stay the kernel's.
        auto detailed = memleak::summarize_by_stack(allocations, now, 0, verdicts ? &*verdicts : nullptr);
        std::map<int32_t, StackSummary*> by_id;
        for (auto& detail : detailed) by_id[detail.stack_id] = &detail;
        for (auto& summary : summaries) {
          auto it = by_id.find(summary.stack_id);
          if (it == by_id.end()) continue;
          StackSummary& detail = *it->second;
          summary.allocations = detail.allocations;
          summary.scanned = detail.scanned;
          summary.leaked_bytes = detail.leaked_bytes;
          summary.leaked_count = detail.leaked_count;
          summary.reachable_bytes = detail.reachable_bytes;
          summary.reachable_count = detail.reachable_count;
        }
      }
    } else if (opts_.sample_bytes) {
      summaries = memleak::summarize_samples(allocations, memleak::read_sample_weights(maps_.sample_weights), now,
                                             min_age_ns, verdicts ? &*verdicts : nullptr);
      alloc_totals_ = memleak::read_alloc_totals(maps_.alloc_totals);
      memleak::add_allocating_stacks(summaries, alloc_totals_);
      sampler_frames_.load(pid_);
    } else {
      summaries = memleak::summarize_by_stack(allocations, now, min_age_ns, verdicts ? &*verdicts : nullptr);
    }

    std::map<int32_t, uint64_t> bytes_by_stack;
    for (const auto& summary : summaries) bytes_by_stack[summary.stack_id] = summary.bytes;
    growth_.record(bytes_by_stack);
    for (auto& summary : summaries) summary.growing = growth_.growing(summary.stack_id);
    memleak::order_and_truncate(
        summaries, opts_.sort == "count" ? memleak::StackOrder::Count : memleak::StackOrder::Bytes,
        opts_.top);

    output::StackReport stack_report;
    stack_report.name = "outstanding_allocations";
    stack_report.title =
        fmt::format("[{}] Top {} stacks with outstanding allocations{}:", output::wall_clock_hms(), opts_.top,
                    opts_.sample_bytes ? fmt::format(" (estimated: sampled every {} bytes)", *opts_.sample_bytes)
                                       : std::string());
    for (const auto& summary : summaries) {
      output::StackEntry entry = stack_entry(summary);
      drop_operator_new_frames(context, entry.stack);
      stack_report.entries.push_back(std::move(entry));
    }

    if (opts_.show_allocations && !context.options.json && !stack_report.entries.empty()) {
      // BCC's order: the title, the allocations, then the stacks.
      context.sink.message(stack_report.title);
      stack_report.title.clear();
      print_allocations(context, summaries, allocations, now);
      context.sink.stacks(stack_report);
    } else {
      context.sink.stacks(stack_report);
      if (opts_.show_allocations) print_allocations(context, summaries, allocations, now);
    }
    print_drops(context, false);
    prune_stacks();
  }

  output::StackEntry stack_entry(const StackSummary& summary) {
    output::StackEntry entry;
    entry.stack.pid = pid_;
    if (summary.stack_id >= 0 && (summary.stack_id & MEMLEAK_OVERFLOW_STACK))
      (pid_ > 0 ? entry.stack.user : entry.stack.kernel) = read_overflow_stack(summary.stack_id);
    else if (pid_ > 0)
      user_stacks_->read_into(entry.stack, maps_.stacks, summary.stack_id);
    else
      entry.stack.kernel = read_stack(maps_.stacks, summary.stack_id);
    if (opts_.sample_bytes) sampler_frames_.strip(entry.stack);
    // Not captured (counted as a drop), or an id whose stack is gone: shown as "[stack lost]".
    entry.stack.lost = entry.stack.user.empty() && entry.stack.kernel.empty();
    entry.comm = comm_;
    entry.weight = summary.bytes;
    entry.values = {{"bytes", summary.bytes}, {"allocations", summary.count}};
    entry.heading = fmt::format("{} bytes in {} allocations from stack", summary.bytes, summary.count);

    std::vector<std::string> labels;
    if (summary.scanned) {
      entry.values.push_back({"leaked_bytes", summary.leaked_bytes});
      entry.values.push_back({"leaked_count", summary.leaked_count});
      entry.values.push_back({"reachable_bytes", summary.reachable_bytes});
      entry.values.push_back({"reachable_count", summary.reachable_count});
      labels.push_back(fmt::format("LEAKED {} B/{}", summary.leaked_bytes, summary.leaked_count));
      labels.push_back(fmt::format("REACHABLE {} B/{}", summary.reachable_bytes, summary.reachable_count));
    }
    if (summary.growing) labels.push_back("GROWING");
    if (!labels.empty()) entry.heading += fmt::format(" [{}]", fmt::join(labels, ", "));
    entry.values.push_back({"stack_id", static_cast<uint64_t>(static_cast<uint32_t>(summary.stack_id))});
    entry.flags = {{"growing", summary.growing}, {"stack_lost", entry.stack.lost}};
    if (opts_.sample_bytes) {
      // Go's heap profile: inuse (outstanding) and alloc (ever allocated) per stack.
      auto total = alloc_totals_.find(summary.stack_id);
      memleak::SampledAllocTotal allocated = total != alloc_totals_.end() ? total->second : memleak::SampledAllocTotal{};
      entry.values.push_back({"alloc_bytes", allocated.bytes});
      entry.values.push_back({"alloc_count", allocated.count});
      entry.heading += fmt::format(" (estimated; {} bytes in {} allocations allocated in all)", allocated.bytes,
                                   allocated.count);
      entry.flags.push_back({"estimated", true});
    }
    return entry;
  }

  // The throwing operator new has no return probe (allocator_probes.cpp): its block is recorded when
  // the malloc inside it returns, so the stack starts in operator new. The caller is what matters.
  void drop_operator_new_frames(ToolContext& context, output::Stack& stack) {
    if (pid_ <= 0) return;
    size_t dropped = 0;
    while (dropped + 1 < stack.user.size()) {
      symbols::Frame frame = context.symbolizer.user_frame(pid_, stack.user[dropped]);
      if (!frame.function.starts_with("operator new")) break;
      dropped++;
    }
    if (dropped == 0) return;
    stack.user.erase(stack.user.begin(), stack.user.begin() + static_cast<std::ptrdiff_t>(dropped));
    stack.user_frame_pointer_frames >>= dropped;
  }

  std::vector<uint64_t> read_overflow_stack(int32_t stack_id) const {
    uint32_t key = static_cast<uint32_t>(stack_id) & MEMLEAK_OVERFLOW_ID_MASK;
    memleak_overflow_stack stored{};
    if (bpf_map_lookup_elem(maps_.overflow_stacks, &key, &stored) != 0) return {};
    uint64_t frames = std::min<uint64_t>(stored.frames, MEMSCOPE_MAX_STACK_DEPTH);
    return {stored.addresses, stored.addresses + frames};
  }

  // Stacks are stored once and the kernel never frees them: after enough distinct short-lived
  // call paths every map is full and a leak that starts later has no stack. After each report,
  // forget every stored stack no outstanding allocation uses (--combined-only: and its zero
  // totals).
  void prune_stacks() {
    std::vector<StoredStackMap> maps =
        user_stacks_ ? user_stacks_->stored_stack_maps(maps_.stacks) : std::vector<StoredStackMap>{{maps_.stacks, 0}};
    maps.push_back({maps_.overflow_stacks, MEMLEAK_OVERFLOW_STACK});
    auto ids_in_use = [&] {
      std::unordered_set<int32_t> ids;
      for (const auto& allocation : read_allocations(maps_.allocs))
        if (allocation.stack_id >= 0) ids.insert(allocation.stack_id);
      if (opts_.sample_bytes)  // --sample-bytes: stacks that only allocated keep their alloc totals
        for (const auto& [stack_id, total] : memleak::read_alloc_totals(maps_.alloc_totals))
          if (stack_id >= 0) ids.insert(stack_id);
      return ids;
    };
    StackPruning pruning = prune_stack_maps(maps, ids_in_use);
    if (opts_.combined_only) {
      std::unordered_set<int32_t> in_use = ids_in_use();
      std::vector<uint32_t> unused;
      uint32_t key = 0, next = 0;
      const void* previous = nullptr;
      while (bpf_map_get_next_key(maps_.stack_totals, previous, &next) == 0) {
        memleak_stack_total total{};
        if (next != MEMLEAK_NO_STACK && bpf_map_lookup_elem(maps_.stack_totals, &next, &total) == 0 &&
            total.count == 0 && !in_use.count(static_cast<int32_t>(next)))
          unused.push_back(next);
        key = next;
        previous = &key;
      }
      for (uint32_t id : unused) bpf_map_delete_elem(maps_.stack_totals, &id);
    }
    stacks_pruned_ += pruning.deleted;
    if (pruning.deleted || pruning.restored || pruning.lost)
      log::verbose("stacks: {} no longer used forgotten, {} re-used meanwhile put back, {} re-used meanwhile lost",
                   pruning.deleted, pruning.restored, pruning.lost);
  }

  void print_allocations(ToolContext& context, const std::vector<StackSummary>& summaries,
                         const std::vector<OutstandingAllocation>& allocations, uint64_t now) {
    for (const auto& summary : summaries)
      for (size_t index : summary.allocations) {
        const auto& allocation = allocations[index];
        uint64_t age_ms = now > allocation.timestamp_ns ? (now - allocation.timestamp_ns) / 1000000 : 0;
        context.sink.record(kAllocationSchema,
                            {allocation.address, allocation.size, age_ms, int64_t{allocation.stack_id}});
      }
  }

  // Frees the probes never saw: allocations recorded over a live record, and runs of the programs
  // the kernel skipped (BPF recursion protection: a kfree in an interrupt while a memleak program
  // runs on that CPU; bpf_prog_info.recursion_misses, 5.12+).
  uint64_t missed_frees() const {
    bpf_map* map = bpf_object__find_map_by_name(maps_.object, "missed_frees");
    return map ? sum_percpu_counter(bpf_map__fd(map), 0) : 0;
  }
  uint64_t recursion_misses() const {
    uint64_t misses = 0;
    bpf_program* program = nullptr;
    bpf_object__for_each_program(program, maps_.object) {
      int fd = bpf_program__fd(program);
      if (fd < 0) continue;
      bpf_prog_info info{};
      uint32_t length = sizeof(info);
      if (bpf_obj_get_info_by_fd(fd, &info, &length) == 0) misses += info.recursion_misses;
    }
    return misses;
  }

  void print_drops(ToolContext& context, bool final_report) {
    if (!maps_.object) return;
    DropCounts drops = read_drop_counts(maps_.object);
    uint64_t missed = missed_frees(), skipped = recursion_misses();
    uint64_t total = drops.total() + missed + skipped + sampler_drops_;
    if (total == reported_drops_ && !(final_report && total)) return;
    reported_drops_ = total;
    if (!total) return;
    std::vector<std::string> parts;
    if (drops.total()) parts.push_back(drops.describe());
    if (missed) parts.push_back(fmt::format("{} frees missed (a block recorded again at a live address)", missed));
    if (skipped)
      parts.push_back(fmt::format("{} probe runs skipped by the kernel (BPF recursion protection)", skipped));
    if (sampler_drops_)
      parts.push_back(fmt::format("{} samples dropped by the sampler (its set of sampled blocks was full: raise "
                                  "--max-allocations)",
                                  sampler_drops_));
    context.sink.message(fmt::format("Lost: {}", fmt::join(parts, ", ")));
  }

  MemleakOptions opts_;
  std::map<int32_t, memleak::SampledAllocTotal> alloc_totals_;  // --sample-bytes, at the last report
  std::string sampler_library_;                                  // --sample-bytes
  uint64_t sampler_drops_ = 0;  // --sample-bytes: samples the library dropped, at the last report
  memleak::SamplerFrames sampler_frames_;
  bool user_mode_ = false;
  std::vector<std::string> command_words_;
  pid_t pid_ = 0;
  std::string comm_;
  UserStacks* user_stacks_ = nullptr;  // user mode: the runtime step's, while run_user() traces
  Maps maps_;
  memleak::GrowthTracker growth_{3};
  uint64_t reported_drops_ = 0;
  uint64_t stacks_pruned_ = 0;
  std::string image_;  // -p: process_image() of the target when last checked
  std::unique_ptr<PrecreatedMaps> precreated_maps_;  // kernel mode
};

}  // namespace
}  // namespace memscope

MEMSCOPE_TOOL(tool_memleak, "memleak",
              "Outstanding allocations by stack: user (uprobes) or kernel memory leaks", MemleakTool)
