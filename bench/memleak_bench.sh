#!/usr/bin/env bash
# memleak_bench.sh: what `memscope memleak` costs a malloc/free-heavy program, measured in one run
# next to the floor (bpftrace with the same three uprobes that fire, malloc entry and return and
# free entry, and empty bodies) and BCC's memleak.
#
#   sudo bench/memleak_bench.sh [PAIRS [REPEATS]]      (defaults: 200000 pairs, median of 5)
#
# Environment: BUILD_DIR (default build), BPFTRACE (default bpftrace), BCC_MEMLEAK (default
# memleak-bpfcc; Debian's bpfcc-tools, which needs /lib/modules/$(uname -r)/build).
#
# Manual preparation for the BCC case (once, by hand; never part of the tests): BCC compiles its
# programs against kernel headers. On a kernel without a Debian headers package, Debian 12's 6.1
# headers make it start (the tracepoints and uprobes it uses have not changed):
#   apt-get install bpfcc-tools linux-headers-amd64
#   mkdir -p /lib/modules/$(uname -r)
#   ln -s /usr/src/linux-headers-6.1.0-*-amd64 /lib/modules/$(uname -r)/build    (one version)
#   ln -s /usr/src/linux-headers-6.1.0-*-common /lib/modules/$(uname -r)/source
# Without them the BCC line says why it could not run.
#
# Each case starts build/bench/malloc_free, which waits for SIGUSR1; the tracer attaches by PID;
# once it says it is attached (and one more second) the timed loop runs; the program prints the
# nanoseconds per malloc/free pair. Tracer RSS is its VmHWM (peak resident set) at the end. The
# cases take turns (round after round) so that a noisy neighbour hurts them all alike, and each
# reports its median.
set -uo pipefail

PAIRS=${1:-200000}
REPEATS=${2:-5}
BUILD_DIR=${BUILD_DIR:-build}
BENCH=$BUILD_DIR/bench/malloc_free
MEMSCOPE=$BUILD_DIR/memscope
BPFTRACE=${BPFTRACE:-bpftrace}
BCC_MEMLEAK=${BCC_MEMLEAK:-memleak-bpfcc}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

[[ $EUID -eq 0 ]] || { echo "memleak_bench: run as root (tracers load BPF programs)" >&2; exit 1; }
[[ -x $BENCH && -x $MEMSCOPE ]] || { echo "memleak_bench: build first (missing $BENCH or $MEMSCOPE)" >&2; exit 1; }
LIBC=$(ldd "$BENCH" | awk '/libc\.so/ {print $3; exit}')

# wait_for FILE PATTERN SECONDS: true once FILE contains PATTERN.
wait_for() {
  local deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# stop_tracer PID: SIGINT (tracers print their final report), then SIGTERM, then SIGKILL. A
# background job of a non-interactive shell starts with SIGINT ignored, and Python keeps it so:
# BCC's memleak never sees the SIGINT.
stop_tracer() {
  kill -INT "$1" 2>/dev/null
  for signal in TERM KILL; do
    for _ in $(seq 50); do
      kill -0 "$1" 2>/dev/null || break 2
      sleep 0.1
    done
    kill -"$signal" "$1" 2>/dev/null
  done
  wait "$1" 2>/dev/null
}

# run_once NAME ATTACHED_PATTERN [TRACER ARGS... with {pid}]: appends "ns_per_pair rss_kib" to
# $WORK/NAME.results, or the reason it failed to $WORK/NAME.failed.
run_once() {
  local name=$1 pattern=$2 file=$WORK/${1//[^A-Za-z0-9]/_}
  shift 2
  "$BENCH" "$PAIRS" >"$WORK/bench.out" 2>&1 &
  local bench=$!
  if ! wait_for "$WORK/bench.out" ready 10; then
    kill "$bench" 2>/dev/null
    echo "the benchmark did not start" >"$file.failed"
    return
  fi
  local tracer="" rss=0
  if (($# > 0)); then
    local args=("${@//\{pid\}/$bench}")
    "${args[@]}" >"$WORK/tracer.out" 2>&1 &
    tracer=$!
    if ! wait_for "$WORK/tracer.out" "$pattern" 120; then
      echo "did not attach: $(tail -2 "$WORK/tracer.out" | tr '\n' ' ')" >"$file.failed"
      kill "$bench" "$tracer" 2>/dev/null
      wait "$tracer" "$bench" 2>/dev/null
      return
    fi
    sleep 1
  fi
  kill -USR1 "$bench"
  wait "$bench"
  if [[ -n $tracer ]]; then
    rss=$(awk '/^VmHWM:/ {print $2}' "/proc/$tracer/status" 2>/dev/null)
    stop_tracer "$tracer"
  fi
  local ns
  ns=$(awk '/ns_per_pair/ {print $4}' "$WORK/bench.out")
  if [[ -z $ns ]]; then
    echo "no result from the benchmark: $(tr '\n' ' ' <"$WORK/bench.out")" >"$file.failed"
    return
  fi
  echo "$ns ${rss:-0}" >>"$file.results"
}

# Cases: NAME|PATTERN|TRACER ARGS… (fields separated by |, arguments by ␣ within a field list).
NAMES=()
declare -A PATTERN COMMAND WHY
add_case() {  # add_case NAME PATTERN [TRACER ARGS…]
  local name=$1
  NAMES+=("$name")
  PATTERN[$name]=$2
  shift 2
  COMMAND[$name]=$(printf '%q ' "$@")
}
skip_case() {  # skip_case NAME REASON
  NAMES+=("$1")
  WHY[$1]=$2
}

echo "memleak benchmark: $PAIRS malloc/free pairs per run, median of $REPEATS runs, kernel $(uname -r), $(nproc) CPUs"
echo "libc: $LIBC"

add_case "untraced" ""
FLOOR="bpftrace, empty probes (floor)"
if command -v "$BPFTRACE" >/dev/null; then
  add_case "$FLOOR" "Attaching" "$BPFTRACE" -p "{pid}" -e \
    "uprobe:$LIBC:malloc {} uretprobe:$LIBC:malloc {} uprobe:$LIBC:free {}"
else
  skip_case "$FLOOR" "$BPFTRACE is not installed"
fi
add_case "memscope memleak" "Hit Ctrl-C" "$MEMSCOPE" memleak -p "{pid}" --no-scan
add_case "memscope memleak --combined-only" "Hit Ctrl-C" "$MEMSCOPE" memleak -p "{pid}" --no-scan --combined-only
add_case "memscope memleak -s 10" "Hit Ctrl-C" "$MEMSCOPE" memleak -p "{pid}" --no-scan -s 10
if ! command -v "$BCC_MEMLEAK" >/dev/null; then
  skip_case "BCC memleak" "$BCC_MEMLEAK is not installed (Debian: bpfcc-tools)"
elif [[ ! -e /lib/modules/$(uname -r)/build ]]; then
  skip_case "BCC memleak" "no kernel headers at /lib/modules/$(uname -r)/build"
else
  add_case "BCC memleak" "Attaching to pid" "$BCC_MEMLEAK" -p "{pid}"
fi

for ((round = 0; round < REPEATS; round++)); do
  for name in "${NAMES[@]}"; do
    [[ -n ${COMMAND[$name]+set} ]] || continue
    [[ -e $WORK/${name//[^A-Za-z0-9]/_}.failed ]] && continue
    eval "run_once \"\$name\" \"\${PATTERN[\$name]}\" ${COMMAND[$name]}"
  done
done

declare -A NS RSS
for name in "${NAMES[@]}"; do
  file=$WORK/${name//[^A-Za-z0-9]/_}
  if [[ -e $file.failed ]]; then
    WHY[$name]=$(cat "$file.failed")
  elif [[ -e $file.results ]]; then
    NS[$name]=$(awk '{print $1}' "$file.results" | sort -g | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}')
    RSS[$name]=$(awk 'BEGIN {m = 0} $2 > m {m = $2} END {print m}' "$file.results")
  fi
done

untraced=${NS[untraced]:-}
floor=${NS[$FLOOR]:-}
printf '\n%-34s %12s %12s %10s %11s\n' "configuration" "ns/pair" "x untraced" "x floor" "tracer RSS"
for name in "${NAMES[@]}"; do
  if [[ -z ${NS[$name]:-} ]]; then
    printf '%-34s could not run: %s\n' "$name" "${WHY[$name]:-unknown}"
    continue
  fi
  ns=${NS[$name]}
  vs_untraced=$(awk -v a="$ns" -v b="$untraced" 'BEGIN {printf "%.1f", a / b}')
  vs_floor=$([[ -n $floor ]] && awk -v a="$ns" -v b="$floor" 'BEGIN {printf "%.3f", a / b}' || echo "-")
  rss=$([[ ${RSS[$name]} -gt 0 ]] && awk -v k="${RSS[$name]}" 'BEGIN {printf "%.1f MB", k / 1024}' || echo "-")
  printf '%-34s %12s %12s %10s %11s\n' "$name" "$ns" "$vs_untraced" "$vs_floor" "$rss"
done
