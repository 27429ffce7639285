#include "runtime/usdt_notes.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <fnmatch.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cctype>
#include <charconv>
#include <cerrno>
#include <cstring>
#include <set>

#include "symbols/process_maps.hpp"
#include "symbols/target_files.hpp"

namespace memscope::usdt {
namespace {

// SystemTap's note type and owner in .note.stapsdt (see <sys/sdt.h>).
constexpr uint32_t kStapsdtNoteType = 3;
constexpr const char* kStapsdtOwner = "stapsdt";

uint64_t read_address(const uint8_t* data, int address_size) {
  if (address_size == 4) {
    uint32_t value;
    std::memcpy(&value, data, sizeof(value));
    return value;
  }
  uint64_t value;
  std::memcpy(&value, data, sizeof(value));
  return value;
}

// Reads a NUL-terminated string at *offset, advancing past it; false when it runs off the end.
bool read_string(const uint8_t* data, size_t size, size_t* offset, std::string* out) {
  const void* end = std::memchr(data + *offset, '\0', size - *offset);
  if (!end) return false;
  size_t length = static_cast<const uint8_t*>(end) - (data + *offset);
  out->assign(reinterpret_cast<const char*>(data + *offset), length);
  *offset += length + 1;
  return true;
}

struct LoadSegment {
  uint64_t vaddr, memsz, offset;
  bool executable;
};

std::optional<uint64_t> file_offset_of(const std::vector<LoadSegment>& segments, uint64_t address,
                                       bool want_executable) {
  for (const auto& segment : segments)
    if (address >= segment.vaddr && address < segment.vaddr + segment.memsz &&
        segment.executable == want_executable)
      return address - segment.vaddr + segment.offset;
  return std::nullopt;
}

// Reads with pread as sections are asked for (ELF_C_READ), never through a mapping a truncation of the
// file could turn into SIGBUS; or borrows an image in memory.
class ElfFile {
 public:
  explicit ElfFile(const std::string& path) {
    // Paths come from the user (resolved with realpath) or from maps; a final symlink stays in the root.
    auto opened = symbols::open_target_path(path, {.follow_final_symlink = true});
    if (!opened) {
      error_ = fmt::format("cannot open {}", opened.error().message);
      return;
    }
    file_ = std::move(opened->fd);
    elf_version(EV_CURRENT);
    elf_ = elf_begin(file_.get(), ELF_C_READ, nullptr);
    if (!elf_ || elf_kind(elf_) != ELF_K_ELF) error_ = fmt::format("{} is not an ELF file", path);
  }
  explicit ElfFile(std::string_view image) : image_(image) {
    elf_version(EV_CURRENT);
    elf_ = elf_memory(image_.data(), image_.size());
    if (!elf_ || elf_kind(elf_) != ELF_K_ELF) error_ = "not an ELF image";
  }
  ~ElfFile() {
    if (elf_) elf_end(elf_);
  }
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;

  const std::string& error() const { return error_; }
  Elf* elf() const { return elf_; }

  Elf_Scn* section(const char* wanted, GElf_Shdr* header) const {
    size_t names_index;
    if (elf_getshdrstrndx(elf_, &names_index) != 0) return nullptr;
    for (Elf_Scn* scn = elf_nextscn(elf_, nullptr); scn; scn = elf_nextscn(elf_, scn)) {
      if (!gelf_getshdr(scn, header)) continue;
      const char* name = elf_strptr(elf_, names_index, header->sh_name);
      if (name && std::strcmp(name, wanted) == 0) return scn;
    }
    return nullptr;
  }

  std::vector<LoadSegment> load_segments() const {
    std::vector<LoadSegment> segments;
    size_t count = 0;
    if (elf_getphdrnum(elf_, &count) != 0) return segments;
    for (size_t i = 0; i < count; i++) {
      GElf_Phdr header;
      if (!gelf_getphdr(elf_, static_cast<int>(i), &header) || header.p_type != PT_LOAD) continue;
      segments.push_back({header.p_vaddr, header.p_memsz, header.p_offset, (header.p_flags & PF_X) != 0});
    }
    return segments;
  }

 private:
  symbols::FileDescriptor file_;
  std::string image_;  // libelf wants writable memory
  Elf* elf_ = nullptr;
  std::string error_;
};

// .note.stapsdt is small in every real binary; a section claiming more is refused rather than read.
constexpr uint64_t kMaxNotesBytes = 16ull << 20;

Result<FileProbes> probes_of(const ElfFile& file, const std::string& path, const std::string& display_path) {
  if (!file.error().empty()) return Error{file.error()};
  FileProbes result;
  GElf_Shdr notes_header;
  Elf_Scn* notes = file.section(".note.stapsdt", &notes_header);
  if (!notes) return result;
  result.has_notes_section = true;
  if (notes_header.sh_type != SHT_NOTE) return result;
  if (notes_header.sh_size > kMaxNotesBytes)
    return Error{fmt::format("{}: .note.stapsdt has {} bytes, more than {}", display_path.empty() ? path : display_path,
                             notes_header.sh_size, kMaxNotesBytes)};

  GElf_Shdr base_header;
  uint64_t section_base = file.section(".stapsdt.base", &base_header) ? base_header.sh_addr : 0;
  int address_size = gelf_getclass(file.elf()) == ELFCLASS32 ? 4 : 8;
  std::vector<LoadSegment> segments = file.load_segments();

  Elf_Data* data = elf_getdata(notes, nullptr);
  if (!data || !data->d_buf) return result;
  GElf_Nhdr header;
  size_t name_offset = 0, descriptor_offset = 0;
  for (size_t offset = 0;
       (offset = gelf_getnote(data, offset, &header, &name_offset, &descriptor_offset)) > 0;) {
    const auto* bytes = static_cast<const uint8_t*>(data->d_buf);
    if (header.n_type != kStapsdtNoteType || header.n_namesz != std::strlen(kStapsdtOwner) + 1 ||
        std::memcmp(bytes + name_offset, kStapsdtOwner, header.n_namesz) != 0)
      continue;
    auto note = decode_note_descriptor(bytes + descriptor_offset, header.n_descsz, address_size);
    if (!note) continue;
    apply_base_adjustment(*note, section_base);
    Probe probe;
    probe.path = display_path.empty() ? path : display_path;
    probe.file = path;
    probe.provider = note->provider;
    probe.name = note->name;
    probe.address = note->address;
    probe.semaphore = note->semaphore;
    probe.file_offset = file_offset_of(segments, note->address, true).value_or(note->address);
    if (note->semaphore)
      probe.semaphore_file_offset = file_offset_of(segments, note->semaphore, false).value_or(0);
    probe.argument_text = note->arguments;
    probe.arguments = parse_arguments(note->arguments);
    result.probes.push_back(std::move(probe));
  }
  return result;
}

}  // namespace

std::optional<RawNote> decode_note_descriptor(const uint8_t* data, size_t size, int address_size) {
  size_t offset = 3 * static_cast<size_t>(address_size);
  if (size < offset) return std::nullopt;
  RawNote note;
  note.address = read_address(data, address_size);
  note.base = read_address(data + address_size, address_size);
  note.semaphore = read_address(data + 2 * address_size, address_size);
  if (!read_string(data, size, &offset, &note.provider) || !read_string(data, size, &offset, &note.name))
    return std::nullopt;
  // Notes written before arguments were recorded end after the name.
  if (offset < size && !read_string(data, size, &offset, &note.arguments)) return std::nullopt;
  return note;
}

void apply_base_adjustment(RawNote& note, uint64_t section_base) {
  if (section_base == 0 || note.base == 0 || section_base == note.base) return;
  uint64_t delta = section_base - note.base;  // modular: prelink may move either way
  note.address += delta;
  if (note.semaphore) note.semaphore += delta;
  note.base = section_base;
}

std::vector<ProbeArgument> parse_arguments(std::string_view text) {
  std::vector<ProbeArgument> arguments;
  size_t position = 0;
  while (position < text.size()) {
    while (position < text.size() && text[position] == ' ') position++;
    if (position >= text.size()) break;
    size_t end = text.find(' ', position);
    if (end == std::string_view::npos) end = text.size();
    std::string_view token = text.substr(position, end - position);
    position = end;

    ProbeArgument argument;
    size_t at = token.find('@');
    std::string_view size_text = at == std::string_view::npos ? std::string_view() : token.substr(0, at);
    bool size_is_number = !size_text.empty();
    for (size_t i = 0; i < size_text.size(); i++)
      if (!(std::isdigit(static_cast<unsigned char>(size_text[i])) || (i == 0 && size_text[i] == '-')))
        size_is_number = false;
    if (size_is_number && size_text != "-") {
      argument.is_signed = size_text.front() == '-';
      std::string_view digits = argument.is_signed ? size_text.substr(1) : size_text;
      int size = 0;
      // A size too long for an int is as invalid as any other odd size (std::stoi would throw).
      if (std::from_chars(digits.data(), digits.data() + digits.size(), size).ec != std::errc()) size = 0;
      argument.size = (size == 1 || size == 2 || size == 4 || size == 8) ? size : 8;
      argument.location = std::string(token.substr(at + 1));
    } else {
      argument.is_signed = true;
      argument.size = 8;
      argument.location = std::string(token);
    }
    arguments.push_back(std::move(argument));
  }
  return arguments;
}

Result<FileProbes> read_file_probes(const std::string& path, const std::string& display_path) {
  ElfFile file(path);
  return probes_of(file, path, display_path);
}

Result<FileProbes> read_image_probes(std::string_view image, const std::string& path) {
  ElfFile file(image);
  return probes_of(file, path, "");
}

std::vector<std::string> mapped_objects(pid_t pid) {
  std::vector<std::string> objects;
  auto maps = symbols::read_proc_maps(pid);
  if (!maps) return objects;
  std::set<std::string> seen;
  for (const auto& entry : *maps) {
    if (!entry.file_backed() || entry.deleted) continue;
    if (seen.insert(entry.path).second) objects.push_back(entry.path);
  }
  return objects;
}

std::string path_in_process(pid_t pid, const std::string& path) {
  return fmt::format("/proc/{}/root{}", pid, path);
}

bool probe_matches(const Probe& probe, const std::string& pattern) {
  size_t colon = pattern.find(':');
  if (colon == std::string::npos) return fnmatch(pattern.c_str(), probe.name.c_str(), 0) == 0;
  std::string provider = pattern.substr(0, colon);
  std::string name = pattern.substr(colon + 1);
  return fnmatch(provider.c_str(), probe.provider.c_str(), 0) == 0 &&
         fnmatch(name.c_str(), probe.name.c_str(), 0) == 0;
}

std::string format_argument(const ProbeArgument& argument, uint64_t value) {
  if (argument.size < 8) {
    uint64_t mask = (uint64_t{1} << (argument.size * 8)) - 1;
    if (!argument.is_signed) return std::to_string(value & mask);
    // Sign-extend from the declared width, whatever the upper bits hold.
    uint64_t sign_bit = uint64_t{1} << (argument.size * 8 - 1);
    uint64_t low = value & mask;
    int64_t extended = static_cast<int64_t>((low ^ sign_bit) - sign_bit);
    return std::to_string(extended);
  }
  return argument.is_signed ? std::to_string(static_cast<int64_t>(value)) : std::to_string(value);
}

}  // namespace memscope::usdt
