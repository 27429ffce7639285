#include "runtime/tracing_session.hpp"

#include <memory>

#include "runtime/log.hpp"

namespace memscope {

void trace_attached(ToolContext& context, bpf_object* object, BpfObjectLinks& links,
                    const AttachedTracing& tracing) {
  EventLoop loop(context.options);
  std::unique_ptr<RingBufferReader> reader;
  if (tracing.on_record) {
    reader = std::make_unique<RingBufferReader>(object, tracing.on_record);
    loop.add(*reader);
  }
  if (tracing.attached) tracing.attached(loop);
  announce_attached(tracing.what, context.options);
  StopReason reason = loop.run(tracing.on_interval);
  if (tracing.stopped) tracing.stopped(reason);
  links.detach();
  loop.drain();
  log::verbose("stopped: {}", describe(reason));
  TracingOutcome outcome{reason, reader ? reader->drops() : read_drop_counts(object)};
  if (tracing.finish)
    tracing.finish(outcome);
  else
    report_drops(context.sink, outcome.drops);
}

void report_drops(output::Sink& sink, const DropCounts& drops) {
  if (drops.total()) sink.message("Lost: " + drops.describe());
}

}  // namespace memscope
