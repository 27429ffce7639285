#!/bin/bash
# Installs everything memscope needs to build and test, from Debian packages only, then builds.
# Idempotent: skips apt when every package is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake pkg-config clang llvm bpftool libclang-rt-dev
  libbpf-dev libelf-dev libdw-dev zlib1g-dev
  libcli11-dev libfmt-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  systemtap-sdt-dev bpftrace valgrind gdb sqlite3 golang-go libjemalloc2 libc6-dbg
  qemu-system-x86 linux-image-amd64 busybox-static cpio
  libcpp-httplib-dev libssl-dev libyaml-cpp-dev libcrypt-dev
  prometheus curl openssl systemd util-linux strace
)

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: these packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
