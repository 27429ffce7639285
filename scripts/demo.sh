#!/bin/bash
# Quick start: installs and builds as needed, then shows what memscope sees on this kernel and on the
# memory chapter's leak example (examples/leak.c: a thread callocs 8 KiB per second and never frees).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
MEMSCOPE="$BUILD_DIR/memscope"

banner() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

banner "memscope doctor: the hook each tool uses on this kernel"
"$MEMSCOPE" doctor

banner "memscope memleak -c $BUILD_DIR/examples/leak 2 3: outstanding allocations every 2 s, then the leak proof"
# The example runs forever; memleak stops after 3 reports, stops the program, scans it for
# references to every outstanding block (LEAKED = nothing points at it any more), then ends it.
"$MEMSCOPE" memleak -c "$BUILD_DIR/examples/leak" 2 3

banner "memscope mmapsnoop -d 2 while the example starts: every mmap with its file"
"$MEMSCOPE" mmapsnoop -d 2 --comm leak &
tracer=$!
sleep 1
timeout 0.5 "$BUILD_DIR/examples/leak" >/dev/null || true
wait "$tracer" || true
