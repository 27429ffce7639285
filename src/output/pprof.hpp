// pprof output: stack reports as gzip-compressed profile.proto files, which `go tool pprof`,
// speedscope, Pyroscope and most profilers' UIs read. The format is protobuf; its wire encoding is
// small enough (varints and length-delimited fields) that a dependency on libprotobuf and protoc
// would cost more than the encoder below.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "output/sink.hpp"
#include "output/stack.hpp"

namespace memscope::symbols {
class StackSymbolizer;
}

namespace memscope::output {

// Protobuf wire format, just what profile.proto needs.
class ProtoWriter {
 public:
  void varint_field(uint32_t field, uint64_t value);
  void bytes_field(uint32_t field, const std::string& bytes);
  void message_field(uint32_t field, const ProtoWriter& message) { bytes_field(field, message.data_); }
  void packed_field(uint32_t field, const std::vector<uint64_t>& values);
  const std::string& data() const { return data_; }

 private:
  void varint(uint64_t value);
  std::string data_;
};

// Encodes one stack report as an (uncompressed) profile.proto message. Every numeric value of the
// entries becomes a sample type (unit "bytes" when its name says bytes, else "count"); values named
// *_id, the command name, the PID and the entries' labels become sample labels.
std::string encode_pprof(const StackReport& report, symbols::StackSymbolizer& symbolizer, int64_t time_ns);

// `bytes` gzip-compressed in memory (profiles served over HTTP).
std::string gzip_bytes(const std::string& bytes);

// Writes `profile` gzip-compressed to `path`, replacing it atomically (a reader never sees half a
// profile). Throws FatalError when the file cannot be written.
void write_gzip_file_atomically(const std::string& path, const std::string& profile);

// --pprof FILE: a sink that passes everything on to `inner` and also writes each stack report to
// `path` (the latest report replaces the previous one, so at exit the file holds the final report).
std::unique_ptr<Sink> with_pprof_file(std::unique_ptr<Sink> inner, const std::string& path,
                                      symbols::StackSymbolizer& symbolizer);

}  // namespace memscope::output
