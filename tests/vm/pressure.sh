# vm_pressure: tools that need the whole machine under memory pressure, under Debian's 6.1 kernel,
# once per attach mode (forced with --probe):
#   1. swap on: memhog writes more than RAM and reads the oldest part back. swapin (fentry, kprobe)
#      counts memhog's swap-ins; drsnoop (tp_btf, raw_tp, tracepoint) sees memhog stall in direct
#      reclaim; vmscan (same modes) sees direct reclaim, kswapd wake-ups and pageout writes.
#   2. swap off: memhog grows past RAM and the OOM killer (global, no memory cgroup) kills it;
#      oomkill (fentry, kprobe, tp_btf, raw_tp, tracepoint) reports it.
# All tracers of one phase watch the same memhog run. Prints "ok/FAIL - TOOL/MODE: ..." lines.
set -u
. /vm/lib.sh

SWAPIN_MODES="fentry kprobe"
RECLAIM_MODES="tp_btf raw_tp tracepoint"
OOM_MODES="fentry kprobe tp_btf raw_tp tracepoint"

total_mb=$(meminfo_mb MemTotal)
allocstalls() { awk '$1 ~ /^allocstall_/ { s += $2 } END { print s + 0 }' /proc/vmstat; }
echo "kernel $(uname -r), MemTotal $total_mb MiB, swap $(awk 'NR > 1 { s += $3 } END { printf "%d", s / 1024 }' /proc/swaps) MiB"

# ---------------------------------------------------------------------------------------------
# Phase 1: swap pressure
have_swapin=1 have_drsnoop=1 have_vmscan=1
SWAPIN_WHAT="memhog's swap-ins under swap pressure"
DRSNOOP_WHAT="memhog's direct reclaims under global memory pressure"
VMSCAN_WHAT="direct reclaim, kswapd wake-ups and pageout writes under global pressure"
require_tool swapin "$SWAPIN_WHAT" $SWAPIN_MODES || have_swapin=0
require_tool drsnoop "$DRSNOOP_WHAT" $RECLAIM_MODES || have_drsnoop=0
require_tool vmscan "$VMSCAN_WHAT" $RECLAIM_MODES || have_vmscan=0
select_modes SWAPIN_MODES swapin "$SWAPIN_MODES" "$SWAPIN_WHAT"
select_modes DRSNOOP_MODES drsnoop "$RECLAIM_MODES" "$DRSNOOP_WHAT"
select_modes VMSCAN_MODES vmscan "$RECLAIM_MODES" "$VMSCAN_WHAT"

if [ $((have_swapin + have_drsnoop + have_vmscan)) -gt 0 ]; then
	[ $have_swapin = 1 ] && tracers_start si swapin "$SWAPIN_MODES"
	[ $have_drsnoop = 1 ] && tracers_start dr drsnoop "$DRSNOOP_MODES"
	[ $have_vmscan = 1 ] && tracers_start vs vmscan "$VMSCAN_MODES"
	[ $have_swapin = 1 ] && tracers_wait_attached si "$SWAPIN_MODES"
	[ $have_drsnoop = 1 ] && tracers_wait_attached dr "$DRSNOOP_MODES"
	[ $have_vmscan = 1 ] && tracers_wait_attached vs "$VMSCAN_MODES"
	# Tracers stay in memory: a swapped-out tracer would only slow the run down.
	for mode in $SWAPIN_MODES; do [ $have_swapin = 1 ] && tracer_protect "si_$mode"; done
	for mode in $DRSNOOP_MODES; do [ $have_drsnoop = 1 ] && tracer_protect "dr_$mode"; done
	for mode in $VMSCAN_MODES; do [ $have_vmscan = 1 ] && tracer_protect "vs_$mode"; done

	# More than free RAM + what the tracers hold, so that the first pages written go to swap; read
	# back only the first 48 MiB (the oldest, swapped out): each read is a swap-in.
	hog_mb=$((total_mb + 64))
	in0=$(vmstat_value pswpin) out0=$(vmstat_value pswpout)
	direct0=$(allocstalls) kswapd0=$(vmstat_value pgscan_kswapd)
	t0=$(cut -d' ' -f1 /proc/uptime)
	memhog $hog_mb 1 48 > "$W/hog1.prog" 2>&1 &
	hog_pid=$!
	wait $hog_pid
	hog_rc=$?
	t1=$(cut -d' ' -f1 /proc/uptime)
	in1=$(vmstat_value pswpin) out1=$(vmstat_value pswpout)
	log "memhog $hog_mb MiB: status $hog_rc, $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s, pswpout +$((out1 - out0)), pswpin +$((in1 - in0)), allocstall +$(( $(allocstalls) - direct0 )), pgscan_kswapd +$(( $(vmstat_value pgscan_kswapd) - kswapd0 )); $(cat "$W/hog1.prog")"
	[ $have_swapin = 1 ] && tracers_stop si "$SWAPIN_MODES"
	[ $have_drsnoop = 1 ] && tracers_stop dr "$DRSNOOP_MODES"
	[ $have_vmscan = 1 ] && tracers_stop vs "$VMSCAN_MODES"
	in2=$(vmstat_value pswpin)
	swapins=$((in2 - in0))

	if [ $have_swapin = 1 ]; then
		for mode in $SWAPIN_MODES; do
			out=$W/si_$mode.out
			check_begin swapin "$mode" "$SWAPIN_WHAT"
			expect_count "memhog exit status" "$hog_rc" -eq 0
			if expect_tracer si "$mode"; then
				mine=$(json_sum "$out" swapin count comm=memhog)
				all=$(json_sum "$out" swapin count)
				log "swapin/$mode: memhog $mine, all tasks $all; pswpin +$swapins while tracing"
				expect_count "swap-ins counted for memhog" "$mine" -gt 0
				# Each page read from swap is one swap_readpage() call and one pswpin.
				expect_count "swap-ins counted for all tasks (pswpin rose by $swapins)" "$all" -le "$swapins"
				expect_count "swap-ins counted for all tasks, at least half of pswpin's $swapins" "$all" -ge $((swapins / 2))
				expect_count "swap-ins counted for memhog vs the 48 MiB it read back (12288 pages)" "$mine" -le 20000
			fi
			check_end "$out" "$W/si_$mode.err"
		done
	fi

	if [ $have_drsnoop = 1 ]; then
		for mode in $DRSNOOP_MODES; do
			out=$W/dr_$mode.out
			check_begin drsnoop "$mode" "$DRSNOOP_WHAT"
			if expect_tracer dr "$mode"; then
				n=$(json_count "$out" reclaim comm=memhog)
				log "drsnoop/$mode: $n direct reclaims of memhog, $(json_count "$out" reclaim) in all"
				expect_count "direct reclaim events of memhog" "$n" -ge 1
				expect_json_field "$out" reclaim pid "$hog_pid" comm=memhog
				expect_json_field "$out" reclaim kind direct comm=memhog
				expect_json_field "$out" reclaim memcg / comm=memhog   # the root memory cgroup
				zero=$(json_count "$out" reclaim comm=memhog latency_ns=0)
				expect_count "memhog reclaims with zero latency" "$zero" -eq 0
			fi
			check_end "$out" "$W/dr_$mode.err"
		done
	fi

	if [ $have_vmscan = 1 ]; then
		for mode in $VMSCAN_MODES; do
			out=$W/vs_$mode.out
			check_begin vmscan "$mode" "$VMSCAN_WHAT"
			if expect_tracer vs "$mode"; then
				direct=$(json_sum "$out" vmscan direct_reclaims)
				direct_ns=$(json_sum "$out" vmscan direct_reclaim_ns)
				kswapd=$(json_sum "$out" vmscan kswapd_wakeups)
				writes=$(json_sum "$out" vmscan writepage)
				slab=$(json_sum "$out" vmscan slab_shrinks)
				log "vmscan/$mode: direct reclaims $direct (${direct_ns} ns), kswapd wake-ups $kswapd, writepage $writes, slab shrinks $slab"
				expect_count "direct reclaims" "$direct" -ge 1
				expect_count "direct reclaim time (ns)" "$direct_ns" -gt 0
				expect_count "kswapd wake-ups" "$kswapd" -ge 1
				expect_count "pageout writes (mm_vmscan_write_folio, swap-out)" "$writes" -ge 1
				expect_count "direct reclaim histogram total" "$(histogram_total "$out" direct_reclaim_latency)" -eq "$direct"
				expect_count "slab shrink histogram total" "$(histogram_total "$out" slab_shrink_latency)" -eq "$slab"
			fi
			check_end "$out" "$W/vs_$mode.err"
		done
	fi
fi

# ---------------------------------------------------------------------------------------------
# Phase 2: global OOM (no swap, no memory cgroup)
OOM_WHAT="global OOM kill of memhog (no swap, no memcg): PID, command, pages, hook"
if require_tool oomkill "$OOM_WHAT" $OOM_MODES; then
	select_modes OOM_MODES oomkill "$OOM_MODES" "$OOM_WHAT"
	for dev in $(awk 'NR > 1 { print $1 }' /proc/swaps); do swapoff "$dev" || log "swapoff $dev failed"; done
	log "swap now: $(awk 'NR > 1' /proc/swaps | wc -l) device(s)"
	tracers_start og oomkill "$OOM_MODES"
	tracers_wait_attached og "$OOM_MODES"
	for mode in $OOM_MODES; do tracer_protect "og_$mode"; done
	memhog $((total_mb * 2)) > "$W/hog2.prog" 2>&1 &
	hog_pid=$!
	wait $hog_pid
	hog_rc=$?
	sleep 1
	tracers_stop og "$OOM_MODES"
	for mode in $OOM_MODES; do
		out=$W/og_$mode.out
		check_begin oomkill "$mode" "$OOM_WHAT"
		expect_count "memhog exit status (SIGKILL)" "$hog_rc" -eq 137
		if expect_tracer og "$mode"; then
			expect_json_field "$out" oom_kill victim_comm memhog victim_pid="$hog_pid"
			expect_json_field "$out" oom_kill memcg "" victim_pid="$hog_pid"
			line=$(json_select "$out" oom_kill victim_pid="$hog_pid" | head -n 1)
			pages=$(json_value "$line" pages 2>/dev/null || echo 0)
			expect_count "pages" "${pages:-0}" -gt 0
			hook=$(json_value "$line" hook 2>/dev/null)
			case "$hook" in "$mode "*) ;; *) check_error "hook '$hook' is not a $mode hook" ;; esac
		fi
		check_end "$out" "$W/og_$mode.err"
	done
fi

finish
