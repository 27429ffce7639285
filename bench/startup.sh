#!/bin/bash
# Start-up: time from exec until attached, and peak RSS, of memscope tools next to libbpf-tools'
# drsnoop and oomkill (Debian package libbpf-tools, installed by hand for this benchmark: never
# part of the tests), in one run; then `memscope memleak -c /bin/true` end to end.
#
#   sudo bench/startup.sh [BUILD_DIR] [RUNS] [TOOLS...]     (defaults: build, 5, drsnoop oomkill faults)
#   sudo BASELINE=/path/to/other/memscope bench/startup.sh build 5 drsnoop memleak
#   sudo bench/startup.sh build 7 "memleak -p SLEEPER"
#
# A tool may be given with arguments, as one quoted word; SLEEPER in it is the PID of a `sleep`
# process the script starts (a small target mapping libc, the loader and the vDSO), for the
# per-process modes.
# BASELINE adds another memscope binary (an older build) as cases of its own, in the same rounds, so
# that before/after figures come from one run on the same load.
# "Attached" is the line each tracer prints once its programs are attached: memscope's "Hit Ctrl-C
# to end." on stderr, libbpf-tools' column header on stdout. A run that ends or fails before that
# line is reported as failed with its last message, never timed. Peak RSS is VmHWM read from
# /proc just after the line. The figures are medians over RUNS; cases take turns each round.
set -uo pipefail
BUILD_DIR=${1:-build}
RUNS=${2:-5}
shift $(($# > 2 ? 2 : $#)) || true
TOOLS=("$@")
((${#TOOLS[@]})) || TOOLS=(drsnoop oomkill faults)
MEMSCOPE="$BUILD_DIR/memscope"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

[[ $EUID -eq 0 ]] || { echo "startup: run as root (tracers load BPF programs)" >&2; exit 1; }
[[ -x $MEMSCOPE ]] || { echo "startup: build first (missing $MEMSCOPE)" >&2; exit 1; }

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# attach_run NAME STREAM PATTERN COMMAND...: starts COMMAND, waits (10 s at most) for PATTERN on
# STREAM (out|err), appends "ms kb" to $WORK/NAME.results or the failure to $WORK/NAME.failed.
attach_run() {
  local name=$1 stream=$2 pattern=$3
  shift 3
  local fifo="$WORK/fifo" start end pid hwm line seen=0
  rm -f "$fifo" && mkfifo "$fifo"
  start=$(date +%s%N)
  if [[ $stream == err ]]; then
    "$@" >/dev/null 2>"$fifo" &
  else
    "$@" >"$fifo" 2>"$WORK/$name.err" &
  fi
  pid=$!
  exec 3<"$fifo"
  while IFS= read -r -t 10 line <&3; do
    echo "$line" >>"$WORK/$name.log"
    if [[ $line == *"$pattern"* ]]; then
      seen=1
      break
    fi
  done
  end=$(date +%s%N)
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null)
  kill -INT "$pid" 2>/dev/null
  cat <&3 >/dev/null &
  wait "$pid" 2>/dev/null
  exec 3<&-
  if ((seen)) && [[ -n $hwm ]]; then
    echo "$(((end - start) / 1000000)) $hwm" >>"$WORK/$name.results"
  else
    { tail -n 1 "$WORK/$name.log" "$WORK/$name.err" 2>/dev/null | grep -v '^==>' | grep -v '^$' | tail -n 1; } >"$WORK/$name.failed"
  fi
}

SLEEPER_PID=
if [[ " ${TOOLS[*]} " == *SLEEPER* ]]; then
  sleep 100000 &
  SLEEPER_PID=$!
  trap 'kill "$SLEEPER_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
fi

BASELINE=${BASELINE:-}
[[ -z $BASELINE || -x $BASELINE ]] || { echo "startup: BASELINE $BASELINE is not an executable" >&2; exit 1; }
CASES=()
for tool in "${TOOLS[@]}"; do
  CASES+=("memscope:$tool")
  [[ -n $BASELINE ]] && CASES+=("baseline:$tool")
  [[ -x /usr/sbin/$tool && $tool =~ ^(drsnoop|oomkill)$ ]] && CASES+=("libbpf-tools:$tool")
done
for ((round = 0; round < RUNS; round++)); do
  for case in "${CASES[@]}"; do
    [[ -e $WORK/$case.failed ]] && continue
    tool=${case#*:}
    read -r -a words <<<"${tool//SLEEPER/$SLEEPER_PID}"
    case $case in
    memscope:*) attach_run "$case" err "Hit Ctrl-C to end" "$MEMSCOPE" "${words[@]}" ;;
    baseline:*) attach_run "$case" err "Hit Ctrl-C to end" "$BASELINE" "${words[@]}" ;;
    libbpf-tools:drsnoop) attach_run "$case" out "COMM" stdbuf -oL /usr/sbin/drsnoop ;;
    libbpf-tools:oomkill) attach_run "$case" err "Tracing OOM kills" /usr/sbin/oomkill ;;
    esac
  done
  for binary in "$MEMSCOPE" $BASELINE; do
    name=memleak_true
    [[ $binary == "$MEMSCOPE" ]] || name=memleak_true_baseline
    start=$(date +%s%N)
    if "$binary" memleak -c /bin/true --no-scan >/dev/null 2>"$WORK/memleak.err"; then
      echo $((($(date +%s%N) - start) / 1000000)) >>"$WORK/$name.results"
    else
      tail -n 1 "$WORK/memleak.err" >"$WORK/$name.failed"
    fi
  done
done

echo "start-up: kernel $(uname -r), $(nproc) CPUs, median of $RUNS runs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
[[ -n $BASELINE ]] && echo "baseline: $BASELINE"
printf "%-24s %12s %14s\n" CASE "ATTACH(ms)" "PEAK_RSS(MB)"
for case in "${CASES[@]}"; do
  if [[ ! -s $WORK/$case.results || -e $WORK/$case.failed ]]; then
    printf "%-24s failed: %s\n" "$case" "$(cat "$WORK/$case.failed" 2>/dev/null)"
    continue
  fi
  t=$(awk '{print $1}' "$WORK/$case.results" | median)
  r=$(awk '{print $2}' "$WORK/$case.results" | median)
  printf "%-24s %12s %14.1f\n" "$case" "$t" "$(awk -v r="$r" 'BEGIN {print r / 1024}')"
done
for name in memleak_true memleak_true_baseline; do
  [[ $name == memleak_true_baseline && -z $BASELINE ]] && continue
  label="memleak -c /bin/true"
  [[ $name == memleak_true_baseline ]] && label="baseline memleak -c"
  if [[ -s $WORK/$name.results && ! -e $WORK/$name.failed ]]; then
    printf "%-24s %12s ms end to end\n" "$label" "$(median <"$WORK/$name.results")"
  else
    printf "%-24s failed: %s\n" "$label" "$(cat "$WORK/$name.failed" 2>/dev/null)"
  fi
done
