#!/usr/bin/env bash
# unwind_bench.sh: what DWARF stack unwinding costs memleak, measured in one run as ratios (uprobes
# are slow on these machines: absolute times say little). Three tracers run the same malloc/free
# loop, built without frame pointers (build/bench/malloc_free_nofp), from its first instruction (-c):
#
#   floor   bpftrace with empty bodies on the three uprobes memleak takes per pair (malloc entry and
#           return, free entry): what attaching costs before any work
#   fp      memscope memleak -c … --stack-mode fp      (frame-pointer walk: short stacks here)
#   dwarf   memscope memleak -c … --stack-mode dwarf   (the DWARF CFI unwinder, the default)
#
#   sudo bench/unwind_bench.sh [PAIRS [REPEATS]]      (defaults: 200000 pairs, median of 5)
#
# Environment: BUILD_DIR (default build), BPFTRACE (default bpftrace).
#
# Prints ns per malloc/free pair of each (median; the cases take turns round after round so that a
# noisy neighbour hurts them alike), then the two goals of the DWARF unwinder:
#   dwarf - fp per pair  <= 1.5 us    (one stack per pair: the extra cost of a DWARF stack)
#   dwarf / floor        <= 1.25
# Exit status 0 when both were measured, whether or not they are met (a benchmark, not a test).
#
# It also reads the kernel's own accounting of BPF run time (kernel.bpf_stats_enabled, on for the
# run): nanoseconds per run of memleak's allocation-return program, which takes the stack, for fp and
# dwarf. That figure is the unwinder's cost alone, free of the uprobe traps' noise, and stays
# meaningful on a loaded machine where the wall-clock ratios do not.
set -uo pipefail

PAIRS=${1:-200000}
REPEATS=${2:-5}
BUILD_DIR=${BUILD_DIR:-build}
LOOP=$BUILD_DIR/bench/malloc_free_nofp
MEMSCOPE=$BUILD_DIR/memscope
BPFTRACE=${BPFTRACE:-bpftrace}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

[[ $EUID -eq 0 ]] || { echo "unwind_bench: run as root (tracers load BPF programs)" >&2; exit 1; }
[[ -x $LOOP && -x $MEMSCOPE ]] || { echo "unwind_bench: build first (missing $LOOP or $MEMSCOPE)" >&2; exit 1; }
command -v "$BPFTRACE" >/dev/null || { echo "unwind_bench: $BPFTRACE is not installed (the floor)" >&2; exit 1; }
command -v jq >/dev/null || echo "unwind_bench: jq is not installed: no BPF run-time figures (apt-get install jq)" >&2
LOOP=$(realpath "$LOOP")
LIBC=$(ldd "$LOOP" | awk '/libc\.so/ {print $3; exit}')
COMMAND="$LOOP $PAIRS --now"

CASES=(floor fp dwarf)
run_case() {  # CASE: the loop's "pairs N ns_per_pair X" line comes through the tracer's stdout
  case $1 in
  floor) "$BPFTRACE" -c "$COMMAND" -e "uprobe:$LIBC:malloc {} uretprobe:$LIBC:malloc {} uprobe:$LIBC:free {}" ;;
  fp | dwarf)
    # The last figures bpftool lists for the return program before memscope exits.
    (while sleep 0.2; do
      bpftool prog show --json 2>/dev/null |
        jq -c '.[] | select(.name | startswith("memleak_allocat")) | [.run_time_ns // 0, .run_cnt // 0]' >"$WORK/$1.stats.new" &&
        [[ -s $WORK/$1.stats.new ]] && mv -f "$WORK/$1.stats.new" "$WORK/$1.stats"
    done) &
    local poller=$!
    "$MEMSCOPE" memleak -c "$COMMAND" --no-scan --stack-mode "$1"
    kill "$poller" 2>/dev/null
    wait "$poller" 2>/dev/null
    [[ -s $WORK/$1.stats ]] && jq -r 'if .[1] > 0 then .[0] / .[1] else empty end' "$WORK/$1.stats" >>"$WORK/$1.bpf_ns"
    ;;
  esac
}

stats_before=$(cat /proc/sys/kernel/bpf_stats_enabled 2>/dev/null || echo 0)
echo 1 >/proc/sys/kernel/bpf_stats_enabled 2>/dev/null
trap 'echo "$stats_before" >/proc/sys/kernel/bpf_stats_enabled 2>/dev/null; rm -rf "$WORK"' EXIT

echo "unwind benchmark: $PAIRS malloc/free pairs per run, median of $REPEATS runs, kernel $(uname -r), $(nproc) CPUs"
echo "loop: $LOOP (no frame pointers), libc: $LIBC"
for ((round = 0; round < REPEATS; round++)); do
  for name in "${CASES[@]}"; do
    [[ -e $WORK/$name.failed ]] && continue
    run_case "$name" >"$WORK/$name.out" 2>"$WORK/$name.err"
    ns=$(awk '$3 == "ns_per_pair" {print $4}' "$WORK/$name.out")
    if [[ -z $ns ]]; then
      { echo "no result: $(grep -v '^$' "$WORK/$name.err" | tail -n 2 | tr '\n' ' ')"; } >"$WORK/$name.failed"
      continue
    fi
    echo "$ns" >>"$WORK/$name.results"
  done
done

declare -A NS
for name in "${CASES[@]}"; do
  [[ -e $WORK/$name.results ]] || continue
  NS[$name]=$(sort -g "$WORK/$name.results" | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
done
printf '\n%-8s %12s %10s\n' "tracer" "ns/pair" "x floor"
for name in "${CASES[@]}"; do
  if [[ -z ${NS[$name]:-} ]]; then
    printf '%-8s could not run: %s\n' "$name" "$(cat "$WORK/$name.failed" 2>/dev/null)"
    continue
  fi
  ratio=$([[ -n ${NS[floor]:-} ]] && awk -v a="${NS[$name]}" -v b="${NS[floor]}" 'BEGIN {printf "%.3f", a / b}' || echo "-")
  printf '%-8s %12s %10s\n' "$name" "${NS[$name]}" "$ratio"
done
echo
if [[ -n ${NS[fp]:-} && -n ${NS[dwarf]:-} ]]; then
  awk -v d="${NS[dwarf]}" -v f="${NS[fp]}" 'BEGIN {
    extra = (d - f) / 1000
    printf "DWARF over FP per pair (one stack): %+.3f us   goal <= 1.5 us: %s\n", extra, extra <= 1.5 ? "met" : "NOT met" }'
fi
if [[ -n ${NS[dwarf]:-} && -n ${NS[floor]:-} ]]; then
  awk -v d="${NS[dwarf]}" -v f="${NS[floor]}" 'BEGIN {
    r = d / f; printf "memleak DWARF / empty-probe floor:  %.3f       goal <= 1.25:   %s\n", r, r <= 1.25 ? "met" : "NOT met" }'
fi
declare -A BPF_NS
for name in fp dwarf; do
  [[ -s $WORK/$name.bpf_ns ]] && BPF_NS[$name]=$(sort -g "$WORK/$name.bpf_ns" | awk '{a[NR] = $1} END {printf "%.0f", a[int((NR + 1) / 2)]}')
done
if [[ -n ${BPF_NS[fp]:-} && -n ${BPF_NS[dwarf]:-} ]]; then
  echo "BPF run time of memleak's allocation-return program (bpf_stats), ns per run:"
  echo "  fp ${BPF_NS[fp]}   dwarf ${BPF_NS[dwarf]}   DWARF stack over FP stack: $((BPF_NS[dwarf] - BPF_NS[fp])) ns"
fi
[[ -n ${NS[fp]:-} && -n ${NS[dwarf]:-} && -n ${NS[floor]:-} ]]
