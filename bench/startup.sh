#!/bin/bash
# Start-up time until attached and peak RSS of memscope tools (issue: "start-up under 0.3 s and
# 30 MB"). For each tool: start it, time until "Hit Ctrl-C to end." appears on stderr, read the
# tracer's VmHWM from /proc, stop it. Repeats RUNS times and prints the median.
#   sudo bench/startup.sh [BUILD_DIR] [RUNS] [TOOLS...]
set -euo pipefail
BUILD_DIR=${1:-build}
RUNS=${2:-5}
shift $(( $# > 2 ? 2 : $# )) || true
TOOLS=("$@")
((${#TOOLS[@]})) || TOOLS=(oomkill faults)
MEMSCOPE="$BUILD_DIR/memscope"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf "%-10s %14s %14s\n" TOOL "ATTACH(ms)" "PEAK_RSS(MB)"
for tool in "${TOOLS[@]}"; do
  times=() rss=()
  for ((i = 0; i < RUNS; i++)); do
    fifo=$(mktemp -u)
    mkfifo "$fifo"
    start=$(date +%s%N)
    "$MEMSCOPE" "$tool" >/dev/null 2>"$fifo" &
    pid=$!
    exec 3<"$fifo"
    while IFS= read -r line <&3; do
      [[ $line == *"Hit Ctrl-C to end"* ]] && break
    done
    end=$(date +%s%N)
    hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
    kill -INT $pid
    wait $pid || true
    exec 3<&-
    rm -f "$fifo"
    times+=($(( (end - start) / 1000000 )))
    rss+=("$hwm")
  done
  t=$(printf "%s\n" "${times[@]}" | median)
  r=$(printf "%s\n" "${rss[@]}" | median)
  printf "%-10s %14s %14.1f\n" "$tool" "$t" "$(echo "$r / 1024" | bc -l)"
done
