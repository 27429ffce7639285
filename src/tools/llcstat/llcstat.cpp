// llcstat: last-level-cache references, misses and hit ratio per process, from the CPU's hardware
// cache counters sampled every N events (BCC llcstat). Machines without a hardware PMU (most
// virtual machines) are refused in one line.
#include "llcstat.h"

#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>

#include "llcstat.skel.h"
#include "output/sink.hpp"
#include "runtime/bpf_skeleton.hpp"
#include "runtime/map_reading.hpp"
#include "runtime/tool.hpp"
#include "runtime/tracing_session.hpp"
#include "tools/llcstat/llc_aggregator.hpp"

namespace memscope {
namespace {

using llc::LlcAggregator;
using llc::LlcRow;
using llc::LlcSample;

const output::Schema kRowSchema = {
    "llcstat",
    {
        {"pid", "PID", output::FieldType::UInt, 7},
        {"tid", "TID", output::FieldType::UInt, 7},
        {"comm", "COMM", output::FieldType::String, 16, true},
        {"cpu", "CPU", output::FieldType::Int, 3},
        {"references", "REFERENCES", output::FieldType::UInt, 12},
        {"misses", "MISSES", output::FieldType::UInt, 12},
        {"hit_percent", "HIT%", output::FieldType::Float, 7, false, 2},
    },
};

const output::Schema kTotalSchema = {
    "llcstat_total",
    {
        {"references", "REFERENCES", output::FieldType::UInt},
        {"misses", "MISSES", output::FieldType::UInt},
        {"hit_percent", "HIT%", output::FieldType::Float, 0, false, 2},
    },
    "Total References: {0} Total Misses: {1} Hit Rate: {2}%",
};

std::string fixed_string(const char* text, size_t size) { return std::string(text, strnlen(text, size)); }

int open_cache_event(uint64_t config, int cpu, uint64_t sample_period) {
  perf_event_attr attr{};
  attr.size = sizeof(attr);
  attr.type = PERF_TYPE_HARDWARE;
  attr.config = config;
  attr.sample_period = sample_period;
  return static_cast<int>(syscall(__NR_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC));
}

// "0-3,6" → {0,1,2,3,6}
std::vector<int> online_cpus() {
  std::vector<int> cpus;
  std::ifstream online("/sys/devices/system/cpu/online");
  std::string ranges;
  std::getline(online, ranges);
  size_t position = 0;
  while (position < ranges.size()) {
    size_t comma = ranges.find(',', position);
    std::string range =
        ranges.substr(position, comma == std::string::npos ? std::string::npos : comma - position);
    size_t dash = range.find('-');
    int first = std::stoi(range.substr(0, dash));
    int last = dash == std::string::npos ? first : std::stoi(range.substr(dash + 1));
    for (int cpu = first; cpu <= last; cpu++) cpus.push_back(cpu);
    if (comma == std::string::npos) break;
    position = comma + 1;
  }
  return cpus;
}

// The BPF map as the aggregator's sample source: what each entry counted since the previous
// report (an entry is deleted only once idle, so an increment racing a report is never lost).
class BpfMapSampleSource : public llc::LlcSampleSource {
 public:
  explicit BpfMapSampleSource(int fd) : fd_(fd) {}
  std::vector<LlcSample> drain() override {
    std::vector<LlcSample> samples;
    for (const auto& [key, value] : deltas_.take(fd_))
      samples.push_back({key.cpu, key.pid, key.tid, fixed_string(key.comm, sizeof(key.comm)),
                         value.references, value.misses});
    return samples;
  }

 private:
  int fd_;
  CounterDeltas<llcstat_key, llcstat_value> deltas_{{&llcstat_value::references, &llcstat_value::misses}};
};

class LlcStatTool : public SkeletonTool<llcstat> {
 public:
  LlcStatTool() : SkeletonTool(MEMSCOPE_SKELETON_OPS(llcstat)) {}

  CommonOptionSet common_options() const override {
    CommonOptionSet set;
    set.kernel_threads = true;  // kernel threads miss the cache like any task
    set.interval = true;
    set.reserved_letters = {'t', 'c'};  // BCC llcstat: -t per thread, -c sample period
    return set;
  }

  void add_options(CLI::App& app) override {
    app.add_option("-c,--sample-period", sample_period_,
                   "Sample every N cache references/misses (default 100)")
        ->check(positive_number());
    app.add_flag("-t,--threads", per_thread_, "One row per thread instead of per process");
    app.add_flag("--per-cpu", per_cpu_, "One row per CPU as well (BCC's layout)");
  }

  // The refusal comes first, in one line, wherever the machine has no PMU; other failures (missing
  // privileges) are left to the common checks that follow.
  void validate(const CommonOptions&) override {
    int fd = open_cache_event(PERF_COUNT_HW_CACHE_REFERENCES, 0, sample_period_);
    if (fd >= 0) {
      close(fd);
      return;
    }
    int err = errno;
    if (err == ENOENT || err == EOPNOTSUPP || err == ENODEV)
      throw FatalError(
          fmt::format("this machine exposes no hardware cache counters: perf_event_open(PERF_TYPE_HARDWARE, "
                      "cache-references) fails with {} ({}); virtual machines often have no virtual PMU",
                      strerrorname_np(err), strerror(err)));
  }

  std::vector<ProbeSpec> probes(const KernelFeatures&) const override {
    return {{"LLC refs/misses (PMU)",
             {{HookKind::PerfEvent,
               {{"llcstat_references", {"hardware:cache-references"}},
                {"llcstat_misses", {"hardware:cache-misses"}}}}}}};
  }

  int run(ToolContext& context) override {
    std::vector<int> cpus = online_cpus();
    std::unique_ptr<BpfMapSampleSource> source;
    LlcAggregator aggregator(per_thread_, per_cpu_);
    auto report = [&]() {
      aggregator.add_all(*source);
      print(context, aggregator);
      aggregator.clear();
    };
    trace(context, {.what = fmt::format("LLC references and misses on {} CPUs, sampling every {} events",
                                        cpus.size(), sample_period_),
                    .attached =
                        [&](Skeleton<llcstat>& skel, EventLoop&) {
                          for (int cpu : cpus) {
                            attach(skel->progs.llcstat_references, skel.links(),
                                   PERF_COUNT_HW_CACHE_REFERENCES, cpu, "cache-references");
                            attach(skel->progs.llcstat_misses, skel.links(), PERF_COUNT_HW_CACHE_MISSES, cpu,
                                   "cache-misses");
                          }
                          source = std::make_unique<BpfMapSampleSource>(bpf_map__fd(skel->maps.llc_counts));
                        },
                    .on_interval = report,
                    .finish =
                        [&](const TracingOutcome& outcome) {
                          if (outcome.reason != StopReason::Count) report();
                          report_drops(context.sink, outcome.drops);
                        }});
    return 0;
  }

 private:
  void attach(bpf_program* program, BpfObjectLinks& links, uint64_t config, int cpu, const char* name) {
    int fd = open_cache_event(config, cpu, sample_period_);
    if (fd < 0) {
      if (errno == ENODEV) return;  // the CPU went offline meanwhile
      throw FatalError(fmt::format("perf_event_open({}) on CPU {}: {}", name, cpu, strerror(errno)));
    }
    bpf_link* link = bpf_program__attach_perf_event(program, fd);
    if (!link) {
      int err = errno;
      close(fd);
      throw FatalError(fmt::format("attaching to {} on CPU {}: {}", name, cpu, strerror(err)));
    }
    links.adopt(link);  // the link owns the perf event fd
  }

  void print(ToolContext& context, const LlcAggregator& aggregator) {
    bool text = !context.options.json;
    if (text && reports_++ > 0) context.sink.message("");
    if (text) context.sink.header(kRowSchema);
    for (const LlcRow& row : aggregator.rows())
      context.sink.record(kRowSchema, {uint64_t{row.pid}, uint64_t{row.tid}, row.comm, int64_t{row.cpu},
                                       row.references, row.misses, row.hit_ratio() * 100});
    LlcRow total = aggregator.total();
    context.sink.record(kTotalSchema, {total.references, total.misses, total.hit_ratio() * 100});
  }

  uint64_t sample_period_ = 100;
  bool per_thread_ = false;
  bool per_cpu_ = false;
  int reports_ = 0;
};

}  // namespace
}  // namespace memscope

MEMSCOPE_TOOL(tool_llcstat, "llcstat",
              "LLC references, misses and hit ratio per process (needs a hardware PMU)", LlcStatTool)
