// The collectors of `memscope serve`: each runs one tool's BPF programs (the tool's probe specs
// and skeleton, resolved for this kernel by the runtime) and turns its maps into metric families.
// Everything here runs on the main thread: the event loop reads the ring buffers, collect() reads
// the maps at each refresh; the HTTP threads only see the rendered result.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "exposition.hpp"
#include "runtime/kernel_features.hpp"
#include "runtime/ring_buffer_reader.hpp"
#include "serve_config.hpp"

namespace memscope::symbols {
class StackSymbolizer;
}

namespace memscope::serve {

class Collector {
 public:
  virtual ~Collector() = default;
  virtual std::string name() const = 0;
  // Opens, configures, loads and attaches; throws FatalError when this kernel cannot run it.
  // probe_mode: --probe (hook kinds allowed), empty for the runtime's own choice.
  virtual void start(const KernelFeatures& features, const std::string& probe_mode) = 0;
  // The hooks chosen ("tp_btf mark_victim"), for the collector's info metric.
  virtual std::string hooks() const = 0;
  // Events not traced on this kernel (optional probes it lacks), "; "-separated.
  virtual std::string missing() const { return ""; }
  // Its ring buffer, when its records come that way (after start()).
  virtual RingBufferReader* reader() { return nullptr; }
  // Reads the maps; appends its metric families. now_s: CLOCK_MONOTONIC seconds.
  virtual void collect(std::vector<MetricFamily>& families, double now_s) = 0;
  virtual DropCounts drops() const = 0;
};

// The profile source of /debug/pprof/kmem.
class KernelAllocationProfile {
 public:
  virtual ~KernelAllocationProfile() = default;
  // Outstanding kernel allocations by stack, as an uncompressed profile.proto message.
  virtual std::string profile() = 0;
};

std::unique_ptr<Collector> make_collector(const std::string& name, const ServeConfig& config,
                                          symbols::StackSymbolizer& symbolizer);

}  // namespace memscope::serve
