#include "runtime/tracing_session.hpp"

#include <memory>

#include "runtime/log.hpp"
#include "runtime/tool.hpp"

namespace memscope {

TracingOutcome trace_until_stopped(bpf_object* object, BpfObjectLinks& links, const CommonOptions& options,
                                   const std::string& what, const RingBufferReader::Handler& on_record,
                                   const std::function<void()>& on_interval) {
  EventLoop loop(options);
  std::unique_ptr<RingBufferReader> reader;
  if (on_record) {
    reader = std::make_unique<RingBufferReader>(object, on_record);
    loop.add(*reader);
  }
  announce_attached(what, options);
  StopReason reason = loop.run(on_interval);
  links.detach();
  loop.drain();
  log::verbose("stopped: {}", describe(reason));
  return {reason, reader ? reader->drops() : read_drop_counts(object)};
}

void report_drops(output::Sink& sink, const DropCounts& drops) {
  if (drops.total()) sink.message("Lost: " + drops.describe());
}

}  // namespace memscope
