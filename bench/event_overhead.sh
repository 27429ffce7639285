#!/usr/bin/env bash
# event_overhead.sh: what the event tools cost the traced work, measured in one run as ratios to the
# same work untraced (the cases take turns round after round, so a noisy neighbour hurts them alike).
# The workloads are timed inside build/bench/event_loop:
#
#   faults N   page faults on fresh anonymous pages:  faults (user stacks), faults --no-stacks,
#              ffaults, hfaults (each with --comm event_loop, as a user limits a system-wide tool)
#   mmap N     mmap + munmap of one page:             mmapsnoop --comm event_loop (every call printed)
#   usdt N     hits of libc:memory_sbrk_more:         usdt and mallocsnoop on event_loop's own probe
#
#   sudo bench/event_overhead.sh [N [REPEATS]]      (defaults: 200000, median of 3)
#
# Environment: BUILD_DIR (default build). Prints ns per operation and × untraced per case; the
# difference, in ns, is the tool's cost per event on this machine.
set -uo pipefail

N=${1:-200000}
REPEATS=${2:-3}
BUILD_DIR=${BUILD_DIR:-build}
LOOP=$BUILD_DIR/bench/event_loop
MEMSCOPE=$BUILD_DIR/memscope
WORK=$(mktemp -d)
tracer=""
trap '[[ -n $tracer ]] && kill -INT "$tracer" 2>/dev/null; rm -rf "$WORK"' EXIT

[[ $EUID -eq 0 ]] || { echo "event_overhead: run as root (tracers load BPF programs)" >&2; exit 1; }
[[ -x $LOOP && -x $MEMSCOPE ]] || { echo "event_overhead: build first (missing $LOOP or $MEMSCOPE)" >&2; exit 1; }
LOOP=$(realpath "$LOOP")

# NAME|WORKLOAD|TRACER ARGS (empty: untraced)
CASES=(
  "faults: untraced|faults|"
  "faults|faults|faults --comm event_loop"
  "faults --no-stacks|faults|faults --no-stacks --comm event_loop"
  "ffaults|faults|ffaults --comm event_loop"
  "hfaults|faults|hfaults --comm event_loop"
  "mmap: untraced|mmap|"
  "mmapsnoop|mmap|mmapsnoop --comm event_loop"
  "usdt: untraced|usdt|"
  "usdt|usdt|usdt libc:memory_sbrk_more $LOOP"
  "mallocsnoop|usdt|mallocsnoop -O $LOOP"
)

# Starts memscope with ARGS and waits for its attach line; fails with its last message.
start_tracer() {
  local fifo=$WORK/fifo line
  rm -f "$fifo" && mkfifo "$fifo"
  # shellcheck disable=SC2086  # ARGS are words of the table above
  "$MEMSCOPE" $1 >/dev/null 2>"$fifo" &
  tracer=$!
  exec 3<"$fifo"
  while IFS= read -r -t 30 line <&3; do
    echo "$line" >>"$WORK/tracer.err"
    [[ $line == *"Hit Ctrl-C to end"* ]] && { cat <&3 >/dev/null & return 0; }
  done
  exec 3<&-
  return 1
}

stop_tracer() {
  kill -INT "$tracer" 2>/dev/null
  wait "$tracer" 2>/dev/null
  exec 3<&-
  tracer=""
}

for ((round = 0; round < REPEATS; round++)); do
  for entry in "${CASES[@]}"; do
    IFS='|' read -r name workload args <<<"$entry"
    key=${name//[^A-Za-z0-9]/_}
    [[ -e $WORK/$key.failed ]] && continue
    if [[ -n $args ]] && ! start_tracer "$args"; then
      echo "did not attach: $(tail -n 1 "$WORK/tracer.err")" >"$WORK/$key.failed"
      stop_tracer
      continue
    fi
    ns=$("$LOOP" "$workload" "$N" | awk '$3 == "ns_per_op" {print $4}')
    [[ -n $args ]] && stop_tracer
    if [[ -z $ns ]]; then
      echo "the workload printed no result" >"$WORK/$key.failed"
      continue
    fi
    echo "$ns" >>"$WORK/$key.results"
  done
done

echo "event overhead: $N operations per run, median of $REPEATS runs, kernel $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-22s %12s %10s %14s\n' case "ns/op" "x untraced" "+ns per event"
base=""
for entry in "${CASES[@]}"; do
  IFS='|' read -r name workload args <<<"$entry"
  key=${name//[^A-Za-z0-9]/_}
  if [[ ! -s $WORK/$key.results || -e $WORK/$key.failed ]]; then
    printf '%-22s could not run: %s\n' "$name" "$(cat "$WORK/$key.failed" 2>/dev/null)"
    [[ -z $args ]] && base=""
    continue
  fi
  ns=$(sort -g "$WORK/$key.results" | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
  if [[ -z $args ]]; then
    base=$ns
    printf '%-22s %12s %10s %14s\n' "$name" "$ns" "1.000" "-"
  elif [[ -n $base ]]; then
    printf '%-22s %12s %10s %14s\n' "$name" "$ns" "$(awk -v a="$ns" -v b="$base" 'BEGIN {printf "%.3f", a / b}')" \
      "$(awk -v a="$ns" -v b="$base" 'BEGIN {printf "%+.0f", a - b}')"
  else
    printf '%-22s %12s %10s %14s\n' "$name" "$ns" "-" "-"
  fi
done
