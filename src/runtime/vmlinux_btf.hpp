#pragma once

struct btf;

namespace memscope {

// The running kernel's BTF (/sys/kernel/btf/vmlinux), parsed once for the whole process on first
// use and kept until exit; nullptr when the kernel has none. Every parse costs tens of
// milliseconds of start-up, so feature detection, probe resolution and the tools share this one
// (libbpf still parses its own copy for CO-RE relocations). Thread-safe.
const struct btf* vmlinux_btf();

}  // namespace memscope
