#!/bin/bash
# CPU cost of `memscope serve` (every collector), at idle and under a steady page-fault load, with
# Prometheus-style scrapes every second: the agent's utime+stime from /proc/PID/stat over each
# phase, as a percentage of one CPU. The fault rate achieved is printed too (bench/fault_rate.c).
# The BPF programs run in the faulting tasks, not in the agent: the last lines compare the fastest
# fault rate of one process without and with the agent attached.
#   sudo bench/serve_bench.sh [BUILD_DIR] [SECONDS] [FAULTS_PER_SECOND] [CONFIG]
set -euo pipefail
BUILD_DIR=${1:-build}
SECONDS_PER_PHASE=${2:-20}
RATE=${3:-100000}
CONFIG=${4:-}
MEMSCOPE="$BUILD_DIR/memscope"
FAULT_RATE="$BUILD_DIR/bench/fault_rate"
TICKS=$(getconf CLK_TCK)

echo "fastest fault rate without memscope: $("$FAULT_RATE" 100000000 "$SECONDS_PER_PHASE")"

log=$(mktemp)
"$MEMSCOPE" serve --listen 127.0.0.1:0 ${CONFIG:+--config "$CONFIG"} 2>"$log" &
pid=$!
trap 'kill -INT $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q "Hit Ctrl-C" "$log" && break; sleep 0.1; done
url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$log" | head -1)
[[ -n $url ]] || { cat "$log" >&2; exit 1; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
scrape_for() {
  local end=$((SECONDS + $1))
  while ((SECONDS < end)); do curl -s -o /dev/null "$url/metrics"; sleep 1; done
}
measure() {  # phase name, then the load command (or nothing)
  local name=$1
  shift
  local before after load=""
  sleep 2
  before=$(cpu_ticks)
  if (($#)); then "$@" >"$log.load" & load=$!; fi
  scrape_for "$SECONDS_PER_PHASE"
  after=$(cpu_ticks)
  [[ -n $load ]] && wait $load
  printf "%-28s %8.2f %% of one CPU" "$name" "$(echo "($after - $before) * 100 / $TICKS / $SECONDS_PER_PHASE" | bc -l)"
  [[ -n $load ]] && printf "   (load: %s)" "$(cat "$log.load")"
  printf "\n"
  rm -f "$log.load"
}

echo "memscope serve, ${CONFIG:-every collector}, scraped every second, ${SECONDS_PER_PHASE} s per phase:"
measure "idle"
measure "${RATE} page faults/s" "$FAULT_RATE" "$RATE" "$SECONDS_PER_PHASE"
echo "fastest fault rate with memscope serve: $("$FAULT_RATE" 100000000 "$SECONDS_PER_PHASE")"
printf "%-28s %8.1f MiB\n" "RSS at the end" "$(awk '/VmRSS/ {print $2 / 1024}' /proc/$pid/status)"
