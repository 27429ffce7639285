# vm_serve: `memscope serve` on Debian's 6.1 kernel, scraped with wget, once with the hooks the
# agent picks by itself (fentry where 6.1 offers it) and once with kprobes (--probe kprobe,tp:
# kprobes, and tracepoint flavours for the events that have no function hook):
#   - every collector attaches (memscope_collector_up 1 for all seven);
#   - a 32 MiB memory cgroup without swap OOM-kills memhog: memscope_oom_kills_total of that memcg
#     and victim equals the kernel's memory.events oom_kill;
#   - memhog writing 64 MiB through a 32 MiB cgroup with swap reclaims and swaps out, and reading
#     its first 16 MiB back swaps in: memcg reclaim count and swap-ins rise, page faults rise by at
#     least its 16384 pages.
set -u
. /vm/lib.sh

PORT=9477
URL="http://127.0.0.1:$PORT/metrics"
MODES="- kprobe,tp"

metric() {  # FILE SERIES: the value of one exact series, or nothing
	awk -v s="$2" 'index($0, s " ") == 1 { print substr($0, length(s) + 2); exit }' "$1"
}
echo +memory > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null

require_tool serve "agent on 6.1" $MODES || { finish; exit; }
n=0
for mode in $MODES; do
	n=$((n + 1))
	name=serve$n
	what="collectors attach; memcg OOM kill, memcg reclaim, swap-ins and page faults scraped"
	# The check's label is the hook kind asserted: fentry for the agent's own choice on 6.1.
	label=fentry
	[ "$mode" = - ] || label=kprobe
	check_begin serve "$label" "$what"
	tracer_start $name serve "$mode" --listen 127.0.0.1:$PORT
	if ! tracer_wait_attached $name 120; then
		check_error "memscope serve did not start"
		check_end "$W/$name.err"
		continue
	fi
	tracer_protect $name
	wget -q -O "$W/$name.before" "$URL" || check_error "first scrape failed"
	faults0=$(metric "$W/$name.before" 'memscope_page_faults_total{mode="user"}')
	reclaims0=$(metric "$W/$name.before" 'memscope_reclaim_duration_seconds_count{kind="memcg"}')
	swapins0=$(metric "$W/$name.before" 'memscope_swapins_total')

	oom=/sys/fs/cgroup/vmserve-oom$n
	mkdir -p $oom && echo 32M > $oom/memory.max && echo 0 > $oom/memory.swap.max
	sh -c "echo \$\$ > $oom/cgroup.procs; exec memhog 64" > "$W/$name.oom" 2>&1
	oom_rc=$?
	kills=$(awk '$1 == "oom_kill" { print $2 }' $oom/memory.events)
	log "OOM cgroup: memhog status $oom_rc, memory.events oom_kill $kills"

	swap=/sys/fs/cgroup/vmserve-swap$n
	mkdir -p $swap && echo 32M > $swap/memory.max
	in0=$(vmstat_value pswpin)
	sh -c "echo \$\$ > $swap/cgroup.procs; exec memhog 64 1 16" > "$W/$name.swap" 2>&1
	log "swap cgroup: memhog status $?, pswpin +$(( $(vmstat_value pswpin) - in0 )); $(cat "$W/$name.swap")"

	sleep 3  # two refreshes
	wget -q -O "$W/$name.after" "$URL" || check_error "second scrape failed"
	for collector in oomkill reclaim faults swapin compact migrate kmem; do
		up=$(metric "$W/$name.after" "memscope_collector_up{collector=\"$collector\",reason=\"\"}")
		[ "$up" = 1 ] || check_error "collector $collector is not up: $(grep "collector=\"$collector\"" "$W/$name.after" | head -n 1)"
	done
	[ "$mode" = - ] || grep -q ": using kprobe" "$W/$name.err" || check_error "no collector says it uses kprobe"
	[ "$mode" = - ] && ! grep -q ": using fentry" "$W/$name.err" && check_error "no collector says it uses fentry"
	got=$(metric "$W/$name.after" "memscope_oom_kills_total{memcg=\"/vmserve-oom$n\",victim_comm=\"memhog\"}")
	expect_count "memscope_oom_kills_total of /vmserve-oom$n (memory.events oom_kill)" "${got:-0}" -eq "${kills:-0}"
	expect_count "memory.events oom_kill" "${kills:-0}" -ge 1
	expect_count "memcg reclaims" "$(metric "$W/$name.after" 'memscope_reclaim_duration_seconds_count{kind="memcg"}')" -gt "${reclaims0:-0}"
	expect_count "swap-ins" "$(metric "$W/$name.after" 'memscope_swapins_total')" -gt "${swapins0:-0}"
	faults1=$(metric "$W/$name.after" 'memscope_page_faults_total{mode="user"}')
	expect_count "user page faults (memhog's 16384 pages at least)" $(( ${faults1:-0} - ${faults0:-0} )) -ge 16384
	tracer_stop $name
	expect_count "exit status" "$TRACER_RC" -eq 0
	check_end "$W/$name.err" "$W/$name.after"
	rmdir $oom $swap 2>/dev/null
done
finish
