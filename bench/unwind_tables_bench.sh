#!/bin/bash
# How long the stack service takes to load the unwind tables of a process that maps many objects,
# and how much table memory they take: bench/dlopen_many maps OBJECTS shared libraries of this
# machine, then `memscope faults -p` (which preloads its target) reports the load with -v.
# Goal (docs/user-stacks.md): 100 mapped objects load in under 1 s.
#   sudo bench/unwind_tables_bench.sh [OBJECTS]      (default 100; BUILD_DIR, default build)
# EXCLUDE=REGEX leaves matching libraries out (e.g. 'LLVM|z3', the three objects with ~1M rows).
set -euo pipefail
cd "$(dirname "$0")/.."
OBJECTS=${1:-100}
BUILD_DIR=${BUILD_DIR:-build}
MEMSCOPE=$BUILD_DIR/memscope
LOADER=$BUILD_DIR/bench/dlopen_many
[[ -x $MEMSCOPE && -x $LOADER ]] || { echo "build first: $MEMSCOPE and $LOADER" >&2; exit 1; }

# Candidates: the machine's shared libraries, in a fixed order, skipping ones that run code or need
# a special environment when loaded (sanitizer runtimes, preload libraries).
mapfile -t candidates < <(find /usr/lib/x86_64-linux-gnu -maxdepth 1 -name 'lib*.so.[0-9]*' -type f |
  grep -v -E "${EXCLUDE:-^$}" | grep -v -e asan -e tsan -e lsan -e ubsan -e hwasan -e libSegFault -e libpcprofile -e libmemusage |
  LC_ALL=C sort | head -n $((OBJECTS * 3)))
fifo=$(mktemp -u); mkfifo "$fifo"
trap 'exec 3>&-; rm -f "$fifo"; kill "$target" 2>/dev/null || true' EXIT
"$LOADER" "$OBJECTS" "${candidates[@]}" < "$fifo" > "$fifo.count" &
target=$!
exec 3>"$fifo"
for _ in $(seq 100); do [[ -s $fifo.count ]] && break; sleep 0.1; done
mapped=$(awk '$2 ~ /x/ && $6 ~ /^\// {print $6}' /proc/$target/maps | sort -u | wc -l)
echo "process $target maps $mapped executable objects ($(cat "$fifo.count") dlopened)"
rm -f "$fifo.count"
/usr/bin/time -f "memscope peak RSS %M KiB" "$MEMSCOPE" faults -v -p "$target" -d 1 2>&1 >/dev/null |
  grep -E "user stacks: DWARF|peak RSS" 
