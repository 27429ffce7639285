// The one runtime step of every tool that loads a skeleton:
//   open → kernel filters (-p/-t/-u/--comm) → the tool's configure hook → load (Skeleton::load switches
//   off every program no chosen hook names) → --cgroup filter → attach → the tool's attached hook →
//   "Tracing …" → event loop → the tool's stopped hook (still attached) → detach → drain what the ring
//   buffer still holds → the tool's finish hook (final report; by default the drops).
// Written once so every tool loads, stops, reports losses and logs the same way; a tool only says
// what differs.
#pragma once

#include <bpf/libbpf.h>

#include <functional>
#include <memory>
#include <string>

#include "output/sink.hpp"
#include "runtime/bpf_skeleton.hpp"
#include "runtime/event_loop.hpp"
#include "runtime/options.hpp"
#include "runtime/ring_buffer_reader.hpp"
#include "runtime/tool.hpp"
#include "runtime/user_stacks.hpp"

namespace memscope {

struct TracingOutcome {
  StopReason reason;
  DropCounts drops;
};

// What a tool adds to the runtime step; every hook may be left empty.
template <typename Skel>
struct TracingHooks {
  // Announced as "Tracing <what>... Hit Ctrl-C to end." once everything is attached.
  std::string what;
  // Whether -p/-t/-u/--comm are written into the skeleton's .rodata (tools that match the filters
  // against something else than the current task, in user space, say false).
  bool kernel_filters = true;
  // Before load: .rodata, map sizes, autoload of programs the probe specs do not cover.
  std::function<void(Skel& skel)> configure;
  // After attach, before the loop: the tool's own attachments (uprobes, perf events: adopted by
  // skeleton.links()), map descriptors, extra event sources (EventLoop::watch_fd), headers.
  std::function<void(Skeleton<Skel>& skeleton, EventLoop& loop)> attached;
  // Records of the `events` ring buffer; without a handler it is not read (tools that only read
  // maps), and drops come from the `drops` counters.
  RingBufferReader::Handler on_record;
  // At each interval boundary.
  std::function<void()> on_interval;
  // When the loop has stopped, before anything is detached.
  std::function<void(StopReason reason)> stopped;
  // After detach and drain, while the maps still exist: the final report. Default: report_drops.
  std::function<void(const TracingOutcome& outcome)> finish;
};

// The part of the step after attach, the same for every skeleton type.
struct AttachedTracing {
  std::string what;
  std::function<void(EventLoop& loop)> attached;
  RingBufferReader::Handler on_record;
  std::function<void()> on_interval;
  std::function<void(StopReason reason)> stopped;
  std::function<void(const TracingOutcome& outcome)> finish;
};
void trace_attached(ToolContext& context, bpf_object* object, BpfObjectLinks& links,
                    const AttachedTracing& tracing);

template <typename Skel>
void run_tracing_step(ToolContext& context, const typename Skeleton<Skel>::Ops& ops,
                      const TracingHooks<Skel>& hooks) {
  auto skeleton = Skeleton<Skel>::open(ops);
  if (hooks.kernel_filters) apply_filters(skeleton->rodata, context.options);
  // Declared after the skeleton: it stops before the maps it serves are gone.
  UserStacks user_stacks(skeleton.object(), context.options);
  struct ServiceInContext {
    ToolContext& context;
    ~ServiceInContext() { context.user_stacks = nullptr; }
  } service_in_context{context};
  context.user_stacks = &user_stacks;
  if (hooks.configure) hooks.configure(*skeleton.get());
  skeleton.load(context.specs, context.resolved);
  apply_cgroup_filter(skeleton.object(), context.options);
  user_stacks.start();
  skeleton.attach(context.resolved);
  std::function<void(EventLoop&)> attached;
  if (hooks.attached) attached = [&](EventLoop& loop) { hooks.attached(skeleton, loop); };
  // Released with the tool's links when tracing stops: each set's uprobe links wait for RCU grace
  // periods, and waits made at once overlap (separately, memleak -c waited ~60 ms + ~100 ms).
  skeleton.links().absorb(user_stacks.links());
  trace_attached(context, skeleton.object(), skeleton.links(),
                 {hooks.what, attached, hooks.on_record, hooks.on_interval, hooks.stopped, hooks.finish});
}

// A skeleton opened but not loaded, owned by the returned pointer: needs no privileges.
template <typename Skel>
std::shared_ptr<bpf_object> open_unloaded(const typename Skeleton<Skel>::Ops& ops) {
  auto skeleton = std::make_shared<Skeleton<Skel>>(Skeleton<Skel>::open(ops));
  return std::shared_ptr<bpf_object>(skeleton, skeleton->object());
}

// A tool that loads one skeleton, named once for run() and for open_bpf_object().
template <typename Skel>
class SkeletonTool : public Tool {
 public:
  explicit SkeletonTool(const typename Skeleton<Skel>::Ops& skeleton) : skeleton_(skeleton) {}
  std::shared_ptr<bpf_object> open_bpf_object() const override { return open_unloaded<Skel>(skeleton_); }

 protected:
  void trace(ToolContext& context, const TracingHooks<Skel>& hooks) const {
    run_tracing_step<Skel>(context, skeleton_, hooks);
  }

 private:
  typename Skeleton<Skel>::Ops skeleton_;
};

// "Lost: …" through the sink when anything was dropped; silent otherwise.
void report_drops(output::Sink& sink, const DropCounts& drops);

}  // namespace memscope
