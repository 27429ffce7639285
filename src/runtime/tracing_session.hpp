// The end of every tool's run(): announce that everything is attached, run the event loop until a
// stop condition, detach, drain what the ring buffer still holds, and account for drops — written
// once so every tool stops, reports losses and logs the same way.
#pragma once

#include <bpf/libbpf.h>

#include <functional>
#include <string>

#include "output/sink.hpp"
#include "runtime/bpf_skeleton.hpp"
#include "runtime/event_loop.hpp"
#include "runtime/options.hpp"
#include "runtime/ring_buffer_reader.hpp"

namespace memscope {

struct TracingOutcome {
  StopReason reason;
  DropCounts drops;
};

// on_record: ring buffer records (null for tools that only read maps at each report).
// on_interval: called at each interval boundary.
TracingOutcome trace_until_stopped(bpf_object* object, BpfObjectLinks& links, const CommonOptions& options,
                                   const std::string& what, const RingBufferReader::Handler& on_record,
                                   const std::function<void()>& on_interval);

// "Lost: …" through the sink when anything was dropped; silent otherwise.
void report_drops(output::Sink& sink, const DropCounts& drops);

}  // namespace memscope
