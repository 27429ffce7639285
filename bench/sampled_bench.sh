#!/usr/bin/env bash
# sampled_bench.sh: what heap profiling costs three allocation-heavy programs, measured in one run:
# untraced, memleak --sample-bytes (the in-process sampler: preloaded with -c, injected with -p),
# full-fidelity memleak -c, heaptrack and valgrind (memcheck with --leak-check=full).
#
#   sudo bench/sampled_bench.sh [REPEATS [SAMPLE_BYTES]]     (defaults: median of 3, 524288)
#
# Environment: BUILD_DIR (default build), WORKLOADS (default "perl sqlite3 malloc"), PAIRS (malloc
# loop pairs, default 2000000), FAST=1 (only
# untraced and sampled, for more rounds in the same time: the slow tracers take minutes a round),
# SCALE (default 1: multiplies the perl and sqlite3 work; with FAST=1, SCALE=8 makes each run ~1 s,
# long enough that neighbours on a shared machine move the ratios by a few percent, not tens; perl
# at SCALE=8, 0.79 s untraced, and sqlite3 at SCALE=1, 60000 rows, are the sizes the speed goals of
# docs/sampled-heap.md are stated for).
#
# Workloads, each measured by the program itself so that a tracer's own start-up and final report
# are not counted: the CPU time (user + system, so the kernel's uprobe handling is in) the work
# took. CPU time rather than the wall clock because the 2 CPUs of the machine this runs on are
# shared with other builds (load average 8-12): a wall clock measures the neighbours. The median
# wall time of the whole command (tracer start-up included) is printed too.
#   perl     Debian's /usr/bin/perl churning a hash (inserts and deletes of strings) and building
#            arrays of small arrays; it prints its own CPU time (CLOCK_PROCESS_CPUTIME_ID).
#   sqlite3  Debian's /usr/bin/sqlite3 building a 60000-row table with an index in memory; the
#            sum of the user and sys times of its `.timer on` lines.
#   malloc   build/bench/malloc_free --now: malloc/free pairs of 16-271 bytes (cpu_ns_per_pair,
#            times PAIRS; full fidelity, heaptrack and valgrind run PAIRS/10 of them).
# Last, the malloc loop once more, in one process: build/bench/sampler_fast_path --preloaded under
# memleak -c --sample-bytes runs the same pairs through libc's functions and through the preloaded,
# traced library in slices that take turns, so that the host's noise falls on both alike (a ratio
# good to about 2% from one run, where separate processes move by 10-25%); median of REPEATS runs
# (at most 9).
# The configurations take turns (round after round) so that a noisy neighbour hurts them all
# alike. "x untraced" is the median over the rounds of each round's ratio to that round's untraced
# run (a slow stretch of the host then slows both sides of a ratio), with the 95% confidence
# interval of that median (distribution-free, from the order statistics of the ratios: it needs 6
# rounds or more); "best x" the ratio of the fastest runs. On a virtual machine whose single runs
# move by ±10-25% (CPU steal, neighbours on the host's cores), a few percent can only be told
# apart with many short rounds: FAST=1 SCALE=2 PAIRS=20000000 bench/sampled_bench.sh 61 takes ~6
# minutes.
# Tracer RSS is memscope's peak resident set (VmHWM, polled).
set -uo pipefail

REPEATS=${1:-3}
SAMPLE_BYTES=${2:-524288}
PAIRS=${PAIRS:-2000000}
SCALE=${SCALE:-1}
export MEMSCOPE_BENCH_SCALE=$SCALE  # read by churn.pl
BUILD_DIR=${BUILD_DIR:-build}
MEMSCOPE=$BUILD_DIR/memscope
MALLOC_FREE=$BUILD_DIR/bench/malloc_free
FAST_PATH=$BUILD_DIR/bench/sampler_fast_path
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

[[ $EUID -eq 0 ]] || { echo "sampled_bench: run as root (memscope loads BPF programs)" >&2; exit 1; }
[[ -x $MEMSCOPE && -x $MALLOC_FREE && -x $FAST_PATH ]] ||
  { echo "sampled_bench: build first (missing $MEMSCOPE, $MALLOC_FREE or $FAST_PATH)" >&2; exit 1; }
FAST_PATH=$(realpath "$FAST_PATH")
MEMSCOPE=$(realpath "$MEMSCOPE")
MALLOC_FREE=$(realpath "$MALLOC_FREE")

cat >"$WORK/churn.pl" <<'EOF'
my $gate = <STDIN>;  # under -p, the work starts once memscope has attached (empty stdin otherwise)
use Time::HiRes qw(clock_gettime CLOCK_PROCESS_CPUTIME_ID);
my $start = clock_gettime(CLOCK_PROCESS_CPUTIME_ID);
my %hash;
my $scale = $ENV{MEMSCOPE_BENCH_SCALE} // 1;
for my $i (1 .. 150000 * $scale) {
  $hash{"key$i"} = "v" x ($i % 60);
  delete $hash{"key" . ($i - 2000)} if $i > 2000;
}
my @rows = map { [$_, "x$_", {n => $_}] } 1 .. 60000 * $scale;
printf STDERR "workload_seconds %.6f\n", clock_gettime(CLOCK_PROCESS_CPUTIME_ID) - $start;
EOF

{
  echo ".timer on"
  echo "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, value REAL);"
  echo "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $((60000 * SCALE)))"
  echo "  INSERT INTO t SELECT i, printf('name-%d-%s', i, hex(randomblob(16))), i * 0.5 FROM n;"
  echo "CREATE INDEX t_name ON t(name);"
  echo "SELECT count(*), sum(length(name)) FROM t WHERE name LIKE 'name-1%';"
} >"$WORK/build.sql"
: >"$WORK/empty"

# workload NAME: the command words (one per line) and the stdin file.
workload_command() {
  case $1 in
    perl) echo "/usr/bin/perl $WORK/churn.pl" ;;
    sqlite3) echo "/usr/bin/sqlite3 -batch :memory:" ;;
    malloc) echo "$MALLOC_FREE $PAIRS --now" ;;
    malloc-short) echo "$MALLOC_FREE $((PAIRS / 10)) --now" ;;
  esac
}
workload_stdin() { [[ $1 == sqlite3 ]] && echo "$WORK/build.sql" || echo "$WORK/empty"; }

# workload_seconds NAME FILE: the time the program measured itself.
workload_seconds() {
  case $1 in
    perl) awk '/^workload_seconds/ {print $2; exit}' "$2" ;;
    sqlite3) awk '/^Run Time: real/ {s += $6 + $8; n++} END {if (n) printf "%.6f\n", s}' "$2" ;;
    malloc) awk -v p="$PAIRS" '/cpu_ns_per_pair/ {printf "%.6f\n", $6 * p / 1e9; exit}' "$2" ;;
  esac
}

# Configurations: NAME and how to run COMMAND under it ({cmd} = the command as one string for
# memscope's -c, {words} = the command's words).
CONFIGS=("untraced" "memleak --sample-bytes -c" "memleak --sample-bytes -p" "memleak -c (full fidelity)"
         "heaptrack" "valgrind memcheck")
[[ ${FAST:-0} == 1 ]] && CONFIGS=("untraced" "memleak --sample-bytes -c" "memleak --sample-bytes -p")
declare -A WHY
command -v heaptrack >/dev/null || WHY[heaptrack]="heaptrack is not installed (Debian: heaptrack)"
command -v valgrind >/dev/null || WHY["valgrind memcheck"]="valgrind is not installed (Debian: valgrind)"

# attach_and_run WORKLOAD STDIN OUT WORDS...: memleak -p --sample-bytes on the workload once it is
# running and waiting (for its stdin, a FIFO, or for malloc_free's SIGUSR1): memscope injects the
# sampler, says it is tracing, then the work starts; Ctrl-C once the workload has ended. Writes the
# tracer's peak RSS (KiB) to $WORK/tracer.rss; the exit status is the workload's.
attach_and_run() {
  local workload=$1 stdin=$2 out=$3
  shift 3
  local gate=$WORK/gate tracer_out=$WORK/tracer.out
  rm -f "$gate" && mkfifo "$gate"
  (exec sleep 1000 >"$gate") &
  local holder=$!
  if [[ $workload == malloc ]]; then set -- "$1" "$2"; fi  # without --now: waits for SIGUSR1
  (cd "$WORK" && exec "$@" <"$gate" >"$out" 2>&1) &
  local target=$!
  sleep 0.3
  # Emptied first: the loop below must not find the previous round's "Hit Ctrl-C" before this
  # tracer has opened the file.
  : >"$tracer_out"
  "$MEMSCOPE" memleak --no-scan --sample-bytes "$SAMPLE_BYTES" -p "$target" >"$tracer_out" 2>&1 &
  local tracer=$! rss=0 seen
  for ((i = 0; i < 600; i++)); do
    grep -q 'Hit Ctrl-C' "$tracer_out" && break
    kill -0 "$tracer" 2>/dev/null || break
    sleep 0.1
  done
  if [[ $workload == malloc ]]; then kill -USR1 "$target"; else cat "$stdin" >"$gate"; fi
  kill "$holder" 2>/dev/null
  while kill -0 "$target" 2>/dev/null; do
    seen=$(awk '/^VmHWM:/ {print $2}' "/proc/$tracer/status" 2>/dev/null)
    [[ -n $seen && $seen -gt $rss ]] && rss=$seen
    sleep 0.05
  done
  wait "$target"
  local status=$?
  kill -INT "$tracer" 2>/dev/null
  wait "$tracer" || status=1
  wait "$holder" 2>/dev/null
  grep -q 'Hit Ctrl-C' "$tracer_out" || { status=1; tail -2 "$tracer_out" >>"$out"; }
  echo "$rss" >"$WORK/tracer.rss"
  return "$status"
}

# run_once CONFIG WORKLOAD: appends "workload_seconds wall_seconds rss_kib" to the results file.
run_once() {
  local config=$1 workload=$2 key=${1//[^A-Za-z0-9]/_}_$2
  local command stdin out=$WORK/out
  # The loop under the tracers that trap on every call runs a tenth of the pairs (minutes
  # otherwise); its CPU time per pair is what is compared.
  if [[ $workload == malloc && $config != untraced && $config != "memleak --sample-bytes -"[cp] ]]; then
    command=$(workload_command malloc-short)
  else
    command=$(workload_command "$workload")
  fi
  stdin=$(workload_stdin "$workload")
  read -r -a words <<<"$command"
  local argv=()
  case $config in
    "untraced") argv=("${words[@]}") ;;
    "memleak --sample-bytes -c") argv=("$MEMSCOPE" memleak --no-scan --sample-bytes "$SAMPLE_BYTES" -c "$command") ;;
    "memleak -c (full fidelity)") argv=("$MEMSCOPE" memleak --no-scan -c "$command") ;;
    "heaptrack") argv=(heaptrack -o "$WORK/heaptrack.$workload" "${words[@]}") ;;
    "valgrind memcheck") argv=(valgrind -q --leak-check=full "${words[@]}") ;;
  esac
  local start end rss=0 status
  start=$(date +%s.%N)
  if [[ $config == "memleak --sample-bytes -p" ]]; then
    attach_and_run "$workload" "$stdin" "$out" "${words[@]}"
    status=$?
    rss=$(cat "$WORK/tracer.rss")
  else
    (cd "$WORK" && exec "${argv[@]}" <"$stdin" >"$out" 2>&1) &
    local runner=$!
    if [[ $config == memleak* ]]; then
      # The runner's process is memscope itself (exec): poll its peak resident set until it ends.
      while kill -0 "$runner" 2>/dev/null; do
        local seen
        seen=$(awk '/^VmHWM:/ {print $2}' "/proc/$runner/status" 2>/dev/null)
        [[ -n $seen && $seen -gt $rss ]] && rss=$seen
        sleep 0.05
      done
    fi
    wait "$runner"
    status=$?
  fi
  end=$(date +%s.%N)
  rm -rf "$WORK"/heaptrack.*
  local seconds
  seconds=$(workload_seconds "$workload" "$out")
  if [[ $status -ne 0 || -z $seconds ]]; then
    echo "exit status $status: $(tail -3 "$out" | tr '\n' ' ')" >"$WORK/$key.failed"
    return
  fi
  echo "$seconds $(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.3f", b - a}') $rss" >>"$WORK/$key.results"
}

echo "sampled heap profiling benchmark: median of $REPEATS runs, --sample-bytes $SAMPLE_BYTES, kernel $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
read -r -a WORKLOADS <<<"${WORKLOADS:-perl sqlite3 malloc}"
for ((round = 0; round < REPEATS; round++)); do
  for workload in "${WORKLOADS[@]}"; do
    for config in "${CONFIGS[@]}"; do
      [[ -n ${WHY[$config]+set} ]] && continue
      [[ -e $WORK/${config//[^A-Za-z0-9]/_}_$workload.failed ]] && continue
      run_once "$config" "$workload"
    done
  done
done

median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
minimum() { sort -g | head -n 1; }
# paired_ratios A B: line i of B's first column over line i of A's (the same round).
paired_ratios() { paste -d' ' <(awk '{print $1}' "$1") <(awk '{print $1}' "$2") | awk '$1 > 0 {printf "%.6f\n", $2 / $1}'; }
# median_interval: "low-high", the 95% interval of the median of the numbers on stdin (the
# order statistics n/2 -+ 0.98 sqrt(n), 1-based), or "-" with fewer than 6.
median_interval() {
  sort -g | awk '{a[NR] = $1} END {
    if (NR < 6) { print "-"; exit }
    half = 0.98 * sqrt(NR); low = int(NR / 2 - half); high = int(NR / 2 + 1 + half + 0.999999)
    if (low < 1) low = 1; if (high > NR) high = NR
    printf "%.3f-%.3f\n", a[low], a[high] }'
}
# "best x" compares the fastest run of each (noise on a shared machine, CPU steal included, only
# ever adds time, so the fastest runs are the closest to the real cost).
for workload in "${WORKLOADS[@]}"; do
  printf '\n%s: %s\n' "$workload" "$(workload_command "$workload" | sed "s|$WORK/||")"
  printf '%-30s %11s %11s %13s %8s %9s %11s\n' "configuration" "work CPU s" "x untraced" "95% interval" "best x" "wall s" "tracer RSS"
  base_file=$WORK/untraced_$workload.results
  best_base=$(awk '{print $1}' "$base_file" 2>/dev/null | minimum)
  for config in "${CONFIGS[@]}"; do
    key=${config//[^A-Za-z0-9]/_}_$workload
    if [[ -n ${WHY[$config]+set} ]]; then
      printf '%-30s could not run: %s\n' "$config" "${WHY[$config]}"
      continue
    fi
    if [[ -e $WORK/$key.failed ]]; then
      printf '%-30s could not run: %s\n' "$config" "$(cat "$WORK/$key.failed")"
      continue
    fi
    seconds=$(awk '{print $1}' "$WORK/$key.results" | median)
    wall=$(awk '{print $2}' "$WORK/$key.results" | median)
    rss=$(awk 'BEGIN {m = 0} $3 > m {m = $3} END {print m}' "$WORK/$key.results")
    round_ratios=$(paired_ratios "$base_file" "$WORK/$key.results")
    ratio=$(median <<<"$round_ratios")
    interval=$(median_interval <<<"$round_ratios")
    best=$(awk '{print $1}' "$WORK/$key.results" | minimum)
    best_ratio=$(awk -v a="$best" -v b="$best_base" 'BEGIN {if (b > 0) printf "%.3f", a / b; else print "-"}')
    rss_text=$([[ $rss -gt 0 ]] && awk -v k="$rss" 'BEGIN {printf "%.1f MB", k / 1024}' || echo "-")
    printf '%-30s %11.4f %11.3f %13s %8s %9s %11s\n' "$config" "$seconds" "${ratio:-0}" "$interval" "$best_ratio" "$wall" "$rss_text"
  done
done

printf '\nmalloc loop in one process: memleak --sample-bytes %s -c "sampler_fast_path --preloaded"\n' "$SAMPLE_BYTES"
ratios=()
for ((run = 0; run < (REPEATS < 9 ? REPEATS : 9); run++)); do
  ratio=$("$MEMSCOPE" memleak --no-scan --sample-bytes "$SAMPLE_BYTES" -c "$FAST_PATH --preloaded" 2>&1 |
          awk '/^  ratio / {print $2}')
  [[ -n $ratio ]] && ratios+=("$ratio")
done
if ((${#ratios[@]} == 0)); then
  echo "could not run: sampler_fast_path printed no ratio"
else
  printf 'x libc: median %s of %d runs (%s)\n' "$(printf '%s\n' "${ratios[@]}" | median)" "${#ratios[@]}" \
    "$(printf '%s\n' "${ratios[@]}" | sort -g | tr '\n' ' ' | sed 's/ $//')"
fi
