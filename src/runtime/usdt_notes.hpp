// USDT probes (SystemTap SDT notes in .note.stapsdt) of an ELF file and of every object a process
// maps: what `memscope usdt -l` lists and what the usdt and mallocsnoop tools attach to (with
// tools/usdt/usdt_attach.hpp). Pure ELF reading: no BPF, no privileges.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/result.hpp"

namespace memscope::usdt {

// One argument of a probe as the note describes it ("-4@%edi": 4 bytes, signed, in %edi).
struct ProbeArgument {
  int size = 8;  // bytes: 1, 2, 4 or 8
  bool is_signed = false;
  std::string location;  // "%rdi", "-8(%rbp)", "$5", …
};

struct Probe {
  std::string path;  // the file, as given or as the process maps it (what is shown)
  std::string file;  // the same file as memscope reaches it (/proc/PID/root/… for a process)
  std::string provider;
  std::string name;
  // Link-time virtual addresses after the prelink adjustment (note base vs. .stapsdt.base).
  uint64_t address = 0;
  uint64_t semaphore = 0;  // 0: the probe has no semaphore (is-enabled counter)
  // File offsets: what a uprobe attaches to, and the kernel's reference counter offset.
  uint64_t file_offset = 0;
  uint64_t semaphore_file_offset = 0;
  std::string argument_text;  // "-4@%edi 8@%rsi" as in the note
  std::vector<ProbeArgument> arguments;

  std::string full_name() const { return provider + ":" + name; }
};

// The decoded fields of one NT_STAPSDT note descriptor, before any adjustment.
struct RawNote {
  uint64_t address = 0;
  uint64_t base = 0;  // the link-time address of .stapsdt.base the note was written against
  uint64_t semaphore = 0;
  std::string provider;
  std::string name;
  std::string arguments;
};

// Decodes a descriptor: three addresses of `address_size` bytes (4 or 8), then provider, name and
// argument strings, each NUL-terminated. nullopt when truncated.
std::optional<RawNote> decode_note_descriptor(const uint8_t* data, size_t size, int address_size);

// Prelink moves .stapsdt.base (and the code) but cannot rewrite the non-allocated notes: the probe and
// semaphore addresses move by the difference between the section's address and the note's base.
// section_base 0 (no .stapsdt.base section) or note base 0 mean no adjustment.
void apply_base_adjustment(RawNote& note, uint64_t section_base);

// "-4@%edi 8@-8(%rbp) 1@$5" → arguments. Sizes without a sign are unsigned; entries without "N@"
// (very old notes) are 8-byte signed.
std::vector<ProbeArgument> parse_arguments(std::string_view text);

// All probes of an ELF file; has_notes_section tells a file without .note.stapsdt apart from one
// whose section is empty. Error when the file can't be opened or isn't ELF.
struct FileProbes {
  bool has_notes_section = false;
  std::vector<Probe> probes;
};
// display_path: the name to show for the file (the path a process maps); defaults to `file`.
// The file is opened with symbols::open_target_path(): a regular file, "/proc/PID/root/…" resolved in
// that process's root.
Result<FileProbes> read_file_probes(const std::string& file, const std::string& display_path = "");
// The same from an image in memory (`path` is what the probes' path and file say).
Result<FileProbes> read_image_probes(std::string_view image, const std::string& path);

// The file-backed objects a process maps, in address order, each once: paths as the process
// sees them. Empty when the process is gone.
std::vector<std::string> mapped_objects(pid_t pid);

// A path the process sees, reachable from memscope even when the process is in a container.
std::string path_in_process(pid_t pid, const std::string& path);

// "provider:name" with shell wildcards in either part; a pattern without ':' matches names of any
// provider.
bool probe_matches(const Probe& probe, const std::string& pattern);

// The value of an argument, as bpf_usdt_arg() returns it (sign-extended to 64 bits), shown the way
// its declaration says: signed decimal for signed arguments, unsigned otherwise.
std::string format_argument(const ProbeArgument& argument, uint64_t value);

}  // namespace memscope::usdt
