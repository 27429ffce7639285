#!/bin/bash
# Quick start: installs and builds as needed, then shows what memscope sees on this kernel and on the
# memory chapter's leak example (examples/leak.c: a thread callocs 8 KiB per second and never frees).
# memleak joins the demo when it lands (see issue: memleak).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
MEMSCOPE="$BUILD_DIR/memscope"

banner() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

banner "memscope doctor: the hook each tool uses on this kernel"
"$MEMSCOPE" doctor

banner "memscope faults 1 3 -p <leak>: page faults of the book's leak example, by user stack"
"$BUILD_DIR/examples/leak" >/dev/null &
example=$!
trap 'kill $example 2>/dev/null || true' EXIT
"$MEMSCOPE" faults -p "$example" 1 3

banner "memscope brkstack -p <leak> -d 3: heap growth of the example by user stack"
"$MEMSCOPE" brkstack -p "$example" -d 3 || true

banner "memscope mmapsnoop -d 2 while the example starts: every mmap with its file"
"$MEMSCOPE" mmapsnoop -d 2 --comm leak &
tracer=$!
sleep 1
timeout 0.5 "$BUILD_DIR/examples/leak" >/dev/null || true
wait "$tracer" || true
