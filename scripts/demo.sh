#!/bin/bash
# Quick start: installs and builds as needed, then shows each of memscope's main jobs finding
# something real on this machine:
#   - memleak -c on the memory chapter's leak example (examples/leak.c: a thread callocs 8 KiB per
#     second and never frees it): the leak is proven (LEAKED) on the fibonacci ← child stack;
#   - brkstack on a workload whose heap grows by brk (examples/heap_grow.c);
#   - faults by user stack, mmapsnoop on a program starting;
#   - oomkill on a program killed in a 32 MiB memory cgroup (examples/memory_hog.c), where the
#     machine has cgroup v2 with the memory controller.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
MEMSCOPE="$BUILD_DIR/memscope"
EXAMPLES="$BUILD_DIR/examples"

banner() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
background=()
cgroup=""
cleanup() {
  for pid in "${background[@]}"; do kill "$pid" 2>/dev/null || true; done
  # A killed task leaves its cgroup a moment after it is reaped.
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    [[ -n $cgroup && -d $cgroup ]] || break
    rmdir "$cgroup" 2>/dev/null || sleep 0.2
  done
}
trap cleanup EXIT

banner "memscope doctor: the hook each tool uses on this kernel"
"$MEMSCOPE" doctor

banner "memscope memleak -c <leak> --scan 4 1: outstanding blocks by stack, and which are proven leaks"
# The example runs until stopped: one report after 4 s, with a scan of its memory for references.
"$MEMSCOPE" memleak -c "$EXAMPLES/leak" --scan -o 0 4 1 | grep -v '=> '

banner "memscope brkstack -p <heap_grow> -d 3: who grows the heap (the program break), by stack"
"$EXAMPLES/heap_grow" >/dev/null &
grower=$!
background+=("$grower")
"$MEMSCOPE" brkstack -p "$grower" -d 3

banner "memscope faults -p <leak> 3 1: page faults by user stack"
"$EXAMPLES/leak" >/dev/null &
leaker=$!
background+=("$leaker")
"$MEMSCOPE" faults -p "$leaker" 3 1

banner "memscope mmapsnoop -d 2 --comm leak while the example starts: every mmap with its file"
"$MEMSCOPE" mmapsnoop -d 2 --comm leak &
tracer=$!
background+=("$tracer")
sleep 1
timeout 0.5 "$EXAMPLES/leak" >/dev/null || true
wait "$tracer" || true

banner "memscope oomkill while a program fills a 32 MiB memory cgroup"
# A memory cgroup of its own: cgroup v1's memory hierarchy where it is mounted (hybrid hosts), else v2.
limit=$((32 << 20))
if [[ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]]; then
  cgroup=/sys/fs/cgroup/memory/memscope-demo-$$
  mkdir "$cgroup"
  echo "$limit" >"$cgroup/memory.limit_in_bytes"
  [[ -f $cgroup/memory.memsw.limit_in_bytes ]] && echo "$limit" >"$cgroup/memory.memsw.limit_in_bytes"
elif [[ -f /sys/fs/cgroup/cgroup.controllers ]] && grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
  cgroup=/sys/fs/cgroup/memscope-demo-$$
  grep -qw memory /sys/fs/cgroup/cgroup.subtree_control || echo +memory >/sys/fs/cgroup/cgroup.subtree_control
  mkdir "$cgroup"
  echo "$limit" >"$cgroup/memory.max"
  [[ -f $cgroup/memory.swap.max ]] && echo 0 >"$cgroup/memory.swap.max"
fi
if [[ -n $cgroup ]]; then
  "$MEMSCOPE" oomkill -d 5 &
  tracer=$!
  background+=("$tracer")
  sleep 1.5
  # The shell joins the cgroup, then becomes the hog: its allocations are charged there.
  sh -c 'echo $$ >"$1/cgroup.procs" && exec "$2"' demo "$cgroup" "$EXAMPLES/memory_hog" || true
  wait "$tracer" || true
else
  echo "skipped: this machine has no memory cgroup controller"
fi
