# vm_events: the allocator-internals and page-movement tools (usdt, mallocsnoop, migrate, compact,
# llcstat) under Debian's 6.1 kernel, with the host integration tests' assertions
# (tests/integration/{usdt,mallocsnoop,migrate,compact,llcstat}_test.cpp), once per attach mode each
# tool offers:
#   usdt, mallocsnoop   uprobe (their only kind)
#   migrate             tp_btf, raw_tp, tracepoint (the migrate tracepoint is its only hook)
#   compact             zone compactions: tp_btf, raw_tp, tracepoint; direct-compaction stalls:
#                       fentry/fexit, kprobe/kretprobe (exact), tp_btf, raw_tp, tracepoint
#                       (forced as "fentry,tp_btf" and "kprobe,tracepoint": the zone compactions
#                       have no fentry or kprobe hook)
#   llcstat             perf_event, which qemu TCG cannot count: the refusal is checked
# Every check prints "ok   - TOOL/MODE: ..." or "FAIL - TOOL/MODE: ..." (tests/vm/lib.sh).
set -u
. /vm/lib.sh

TP_MODES="tp_btf raw_tp tracepoint"
FAKE_LIBC=/memscope/libusdt_fake_libc.so

echo "kernel $(uname -r), $(nproc) CPUs, MemTotal $(meminfo_mb MemTotal) MiB, HugePages_Total $(awk '/^HugePages_Total/ { print $2 }' /proc/meminfo)"

wait_for_file_text() {  # FILE TEXT [SECONDS]
	local limit=$(( ${3:-30} * 10 )) i=0
	while [ $i -lt $limit ]; do
		grep -qF -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# A cgroup v2 directory for the --cgroup checks (no controllers needed).
new_cgroup() {  # NAME: prints its path
	mkdir -p "/sys/fs/cgroup/$1" && echo "/sys/fs/cgroup/$1"
}

# ---------------------------------------------------------------------------------------------
# doctor: perf events but no PMU under TCG, uprobes for usdt/mallocsnoop, the tracepoint modes of
# migrate and compact, fentry and kprobe for compact's stalls (llcstat_test.cpp, usdt_test.cpp,
# mallocsnoop_test.cpp DoctorShows*)
check_doctor() {
	local json=$W/doctor.json
	memscope doctor --all-modes --json > "$json" 2> "$W/doctor.err"
	local rc=$?
	memscope doctor > "$W/doctor.txt" 2>&1
	check_begin doctor events "perf_event/pmu, uprobe and tracepoint lines of the event tools"
	expect_count "doctor exit status" "$rc" -eq 0
	expect_json_field "$json" kernel_feature status available feature=perf_event
	expect_json_field "$json" kernel_feature status unavailable feature=pmu
	expect_json_field "$json" kernel_feature status available feature=uprobe
	grep -q '^pmu  *unavailable  *no hardware' "$W/doctor.txt" || check_error "no 'pmu unavailable no hardware ...' line in doctor's text"
	expect_json_field "$json" tool_probe status unavailable tool=llcstat
	expect_json_field "$json" tool_probe_mode status unavailable tool=llcstat mode=perf_event
	for tool in usdt mallocsnoop; do
		expect_json_field "$json" tool_probe status ok tool=$tool
		expect_json_field "$json" tool_probe_mode status works tool=$tool mode=uprobe
	done
	for mode in $TP_MODES; do
		expect_json_field "$json" tool_probe_mode status works tool=migrate mode=$mode
		expect_json_field "$json" tool_probe_mode status works tool=compact mode=$mode traced_event="zone compaction"
		expect_json_field "$json" tool_probe_mode status works tool=compact mode=$mode traced_event="direct compaction stall"
	done
	for mode in fentry kprobe; do
		expect_json_field "$json" tool_probe_mode status works tool=compact mode=$mode traced_event="direct compaction stall"
	done
	# The automatic choice on 6.1: exact stalls with fentry.
	expect_json_field "$json" tool_probe hook "fentry try_to_compact_pages,try_to_compact_pages" tool=compact traced_event="direct compaction stall"
	check_end "$W/doctor.txt" "$W/doctor.err"
}

# ---------------------------------------------------------------------------------------------
# llcstat: no PMU under TCG; one line, exit 1, nothing left loaded (llcstat_test.cpp)
check_llcstat() {
	require_tool llcstat "refusal without a hardware PMU, in one line" perf_event || return
	memscope llcstat -d 1 > "$W/llc.out" 2> "$W/llc.err"
	local rc=$?
	check_begin llcstat perf_event "refusal without a hardware PMU, in one line"
	expect_count "exit status" "$rc" -eq 1
	expect_count "stderr lines" "$(wc -l < "$W/llc.err")" -eq 1
	expect_count "stdout lines" "$(wc -l < "$W/llc.out")" -eq 0
	expect_grep "refusal" "$W/llc.err" "memscope llcstat: this machine exposes no hardware cache counters"
	expect_grep "names the perf event type" "$W/llc.err" "PERF_TYPE_HARDWARE"
	check_end "$W/llc.err"
}

# ---------------------------------------------------------------------------------------------
# usdt: listing a binary and a process's libraries, typed arguments, semaphores, --cgroup/--comm
# (usdt_test.cpp)
check_usdt() {
	local what="-l of a binary and of -p PID (its dlopen()ed library), typed arguments, semaphore, --cgroup, --comm"
	require_tool usdt "$what" uprobe || return
	check_begin usdt uprobe "$what"

	memscope usdt -l /memscope/usdt_target > "$W/ul.out" 2> "$W/ul.err"
	printf 'usdt:/memscope/usdt_target:memscope_test:args\nusdt:/memscope/usdt_target:memscope_test:guarded\n' > "$W/ul.want"
	cmp -s "$W/ul.out" "$W/ul.want" || check_error "usdt -l usdt_target: got '$(tr '\n' ' ' < "$W/ul.out")'"
	memscope usdt -l --json /memscope/usdt_target > "$W/ulj.out" 2>&1
	expect_count "4 arguments of memscope_test:args" "$(json_select "$W/ulj.out" usdt_probe name=args | grep -c '"arguments":"-4@[^ ]* 8@[^ ]* -1@[^ ]* 2@')" -eq 1
	sem=$(json_value "$(json_select "$W/ulj.out" usdt_probe name=guarded)" semaphore)
	expect_count "semaphore address of memscope_test:guarded" "${sem:-0}" -gt 0

	prog_start fl fake_libc_user_run
	prog_wait_output fl ready 30 || log "usdt_fake_libc_user did not start: $(cat "$W/fl.prog")"
	memscope usdt -l -p "$(prog_pid fl)" --json > "$W/ulp.out" 2> "$W/ulp.err"
	expect_count "libc:memory_* probes of $FAKE_LIBC listed for PID $(prog_pid fl)" \
		"$(json_count "$W/ulp.out" usdt_probe path=$FAKE_LIBC provider=libc)" -eq 9
	expect_json_field "$W/ulp.out" usdt_probe sites 1 path=$FAKE_LIBC name=memory_tcache_double_free
	prog_finish fl 10

	# Typed arguments, semaphore raised by the tracer, -p.
	usdt_target > "$W/ut.prog" 2>&1 &
	pid=$!
	wait_for_file_text "$W/ut.prog" ready 30
	# The args tracer first: usdt_target exits 100 ms after the guarded tracer raises its semaphore.
	tracer_start ua usdt - memscope_test:args -p "$pid"
	tracer_wait_attached ua 120 || check_error "usdt memscope_test:args did not attach: $(tail -n 2 "$W/ua.err")"
	wait_for_file_text "$W/ua.out" '"name":"args"' 30
	tracer_start ug usdt - memscope_test:guarded -p "$pid"
	tracer_wait_attached ug 120 || check_error "usdt memscope_test:guarded did not attach: $(tail -n 2 "$W/ug.err")"
	tracer_wait_exit ug 60   # usdt_target exits after 5 guarded firings; -p stops the tracer
	TRACER_RC_UG=$TRACER_RC
	tracer_stop ua
	wait $pid 2>/dev/null
	TRACER_RC=$TRACER_RC_UG
	expect_tracer_ok ug uprobe
	expect_mode_used ua uprobe
	for field in comm=usdt_target path=/memscope/usdt_target provider=memscope_test arg_count=4 arg0=-42 arg1=4886718345 arg2=-1 arg3=65535; do
		expect_json_field "$W/ua.out" usdt "${field%%=*}" "${field#*=}" pid="$pid" name=args
	done
	fired=$(awk '/guarded probe fired/ { print $4 }' "$W/ut.prog")
	expect_count "guarded firings (usdt_target saw its semaphore raised)" "${fired:-0}" -eq 5
	# The kernel raises the semaphore before it writes the breakpoint; under TCG that gap can outlast
	# the 5 firings (20 ms apart), so 1 to 5 of them are traced: the firings before the breakpoint
	# carry no event, every later one does. The events are the last n of the 5 iterations
	# usdt_target reports, in order, none missing.
	first=$(awk '/guarded probe fired/ { print $8 }' "$W/ut.prog")
	guarded=$(json_count "$W/ug.out" usdt pid="$pid" name=guarded)
	expect_between "memscope_test:guarded events traced" "$guarded" 1 5
	got=$(json_select "$W/ug.out" usdt pid="$pid" name=guarded | awk -v key=arg0 "$JSON_AWK_VALUE"'{ printf "%s ", json_value($0, key) }')
	want=$(awk -v f="${first:-0}" -v n="$guarded" 'BEGIN { for (i = f + 5 - n; i <= f + 4; i++) printf "%d ", i }')
	[ "$got" = "$want" ] || check_error "memscope_test:guarded iterations traced: want the last $guarded of usdt_target's 5 from iteration ${first:-?} ('$want'), got '$got'"

	# Every process of the binary, narrowed by --cgroup and --comm (a symlink: same file, other name).
	# Both programs start after the tracers attached and fire memscope_test:args exactly $fires
	# times (their argument), then exit: every firing is in every tracer's window.
	fires=40
	cg=$(new_cgroup memscope-usdt)
	ln -sf /memscope/usdt_target "$W/usdt_alias"
	tracer_start uall usdt - memscope_test:args /memscope/usdt_target
	tracer_start ucg usdt - memscope_test:args /memscope/usdt_target --cgroup "$cg"
	tracer_start ucm usdt - memscope_test:args /memscope/usdt_target --comm usdt_alias
	for t in uall ucg ucm; do tracer_wait_attached $t 120 || check_error "$t did not attach: $(tail -n 2 "$W/$t.err")"; done
	sh -c "echo \$\$ > $cg/cgroup.procs && exec /memscope/usdt_target $fires" > "$W/uin.prog" 2>&1 &
	inside=$!
	"$W/usdt_alias" $fires > "$W/uout.prog" 2>&1 &
	outside=$!
	wait $inside
	inside_rc=$?
	wait $outside
	outside_rc=$?
	for t in uall ucg ucm; do tracer_stop $t; expect_tracer_ok $t uprobe; done
	expect_count "exit status of usdt_target in the cgroup" "$inside_rc" -eq 0
	expect_count "exit status of usdt_alias" "$outside_rc" -eq 0
	for p in uin uout; do
		expect_count "firings $p.prog reports (its argument: $fires)" "$(awk '/args probe fired/ { print $4 }' "$W/$p.prog")" -eq $fires
	done
	expect_count "events of the process inside the cgroup, all processes" "$(json_count "$W/uall.out" usdt pid=$inside comm=usdt_target)" -eq $fires
	expect_count "events of the alias, all processes" "$(json_count "$W/uall.out" usdt pid=$outside comm=usdt_alias)" -eq $fires
	expect_count "events of all processes (both programs)" "$(json_count "$W/uall.out" usdt)" -eq $((2 * fires))
	expect_count "--cgroup: events inside" "$(json_count "$W/ucg.out" usdt pid=$inside)" -eq $fires
	expect_count "--cgroup: events of other processes" "$(json_select "$W/ucg.out" usdt | grep -vc "\"pid\":$inside,")" -eq 0
	expect_count "--comm: events of usdt_alias" "$(json_count "$W/ucm.out" usdt pid=$outside)" -eq $fires
	expect_count "--comm: events of other processes" "$(json_select "$W/ucm.out" usdt | grep -vc "\"pid\":$outside,")" -eq 0
	rmdir "$cg" 2>/dev/null
	check_end "$W/ua.out" "$W/ua.err" "$W/ug.err" "$W/ucg.err"
}

fake_libc_user_run() { exec usdt_fake_libc_user "$FAKE_LIBC"; }

# ---------------------------------------------------------------------------------------------
# mallocsnoop: the refusal of Debian's glibc, the fake libc's probes decoded by name, the double
# free with its user stack, per-interval counts (mallocsnoop_test.cpp)
check_mallocsnoop() {
	local what="Debian glibc refused in one line; memory_* probes decoded; double free with stack; counts"
	require_tool mallocsnoop "$what" uprobe || return
	check_begin mallocsnoop uprobe "$what"

	memscope mallocsnoop > "$W/mr.out" 2> "$W/mr.err"
	rc=$?
	expect_count "exit status without probes" "$rc" -eq 1
	expect_count "stderr lines of the refusal" "$(wc -l < "$W/mr.err")" -eq 1
	expect_grep "refusal" "$W/mr.err" "has no USDT notes (no .note.stapsdt section): this glibc was built without SystemTap probes"
	expect_grep "substitute" "$W/mr.err" "memscope brkstack"
	expect_grep "substitute" "$W/mr.err" "memscope mmapsnoop"

	# -p PID of a process whose only C library is Debian's (fault_touch waits for a line): refused.
	# -d 5: were it to attach instead, the check ends rather than the whole VM run.
	prog_start mrl fault_touch anon 1
	prog_wait_output mrl "pid " 30 || log "fault_touch did not start: $(cat "$W/mrl.prog")"
	memscope mallocsnoop -p "$(prog_pid mrl)" -d 5 > "$W/mrp.out" 2> "$W/mrp.err"
	expect_count "exit status for -p PID with Debian's libc" "$?" -eq 1
	expect_grep "refusal names the libc the process maps" "$W/mrp.err" "libc.so.6 has no USDT notes"
	prog_send mrl go
	prog_send mrl go
	prog_finish mrl

	prog_start md fake_libc_user_run
	prog_wait_output md ready 30 || log "usdt_fake_libc_user did not start: $(cat "$W/md.prog")"
	pid=$(prog_pid md)
	# Without -O, -p finds the probes in whichever mapped object has them: the dlopen()ed fake libc.
	tracer_start md mallocsnoop - -p "$pid"
	tracer_start mc mallocsnoop - -p "$pid" -O "$FAKE_LIBC" 1
	tracer_wait_attached md 120 || check_error "mallocsnoop did not attach: $(tail -n 2 "$W/md.err")"
	tracer_wait_attached mc 120 || check_error "mallocsnoop (counts) did not attach: $(tail -n 2 "$W/mc.err")"
	prog_send md go
	prog_wait_output md "fired double_free=" 30
	prog_send md go
	prog_send md go
	i=0
	while [ "$(grep -c 'fired double_free' "$W/md.prog")" -lt 3 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	sleep 2.5   # one more interval for the counts
	tracer_stop md
	expect_tracer_ok md uprobe
	tracer_stop mc
	expect_tracer_ok mc uprobe
	prog_finish md 10
	expect_count "double frees fired (semaphore raised)" "$(grep -c 'fired double_free=1' "$W/md.prog")" -eq 3
	o=$W/md.out
	expect_count "memory_* events of PID $pid" "$(json_count "$o" malloc_probe pid="$pid")" -eq 27
	expect_json_field "$o" malloc_probe brk $((0x5555aaaa0000)) probe=memory_sbrk_more pid="$pid"
	expect_json_field "$o" malloc_probe size 135168 probe=memory_sbrk_more
	expect_json_field "$o" malloc_probe new_brk $((0x5555aaaa1000)) probe=memory_sbrk_less
	expect_json_field "$o" malloc_probe size 131072 probe=memory_sbrk_less
	expect_json_field "$o" malloc_probe heap $((0x7f0000000000)) probe=memory_heap_new
	expect_json_field "$o" malloc_probe size 1048576 probe=memory_heap_new
	expect_json_field "$o" malloc_probe new_size 2097152 probe=memory_heap_more
	expect_json_field "$o" malloc_probe arena $((0x7f0000000020)) probe=memory_arena_new
	expect_json_field "$o" malloc_probe param -1 probe=memory_mallopt
	expect_json_field "$o" malloc_probe param_name M_TRIM_THRESHOLD probe=memory_mallopt
	expect_json_field "$o" malloc_probe value 65536 probe=memory_mallopt
	expect_json_field "$o" malloc_probe bytes 1000 probe=memory_malloc_retry
	expect_json_field "$o" malloc_probe arena $((0x7f0000000020)) probe=memory_arena_retry
	expect_json_field "$o" malloc_probe pointer $((0x5555aaab1230)) probe=memory_tcache_double_free
	expect_json_field "$o" malloc_probe tcache_bin 3 probe=memory_tcache_double_free
	expect_json_field "$o" malloc_probe error "double free" probe=memory_tcache_double_free
	json_split_stacks "$o" double_free > "$W/md.entries"
	expect_count "double-free stack reports" "$(wc -l < "$W/md.entries")" -eq 3
	frames=$(head -n 1 "$W/md.entries" | frame_functions)
	case "$frames " in
	"fake_memory_tcache_double_free free_twice main "*) ;;
	*) check_error "double-free stack: want fake_memory_tcache_double_free, free_twice, main innermost first; got '$frames'" ;;
	esac
	expect_json_field "$W/md.entries" double_free_entry error "double free"
	for probe in memory_sbrk_more memory_mallopt memory_tcache_double_free; do
		expect_count "per-interval count of $probe" "$(json_sum "$W/mc.out" malloc_probe_count count probe=$probe pid="$pid")" -eq 3
	done
	expect_count "single events in counting mode" "$(json_count "$W/mc.out" malloc_probe)" -eq 0
	check_end "$o" "$W/md.err" "$W/mc.out" "$W/md.prog"
}

# The compacting shell was the only process that migrated pages while pgmigrate_success was read,
# and the trace buffer lost nothing: its pages can be compared with the system-wide counter.
expect_migration_window_sound() {
	expect_count "ftrace entries lost" "$(ftrace_lost)" -eq 0
	expect_count "migrate_pages() calls of other processes (ftrace)" $(( $(ftrace_count mm_migrate_pages) - migrate_calls )) -eq 0
	expect_count "migrate_pages() calls of PID $pid (ftrace)" "$migrate_calls" -ge 1
}

# ---------------------------------------------------------------------------------------------
# Compaction workload: 128 MiB in 4 KiB holes, then `echo 1 > compact_memory` from a shell named
# "compactor" inside a cgroup. migrate and compact tracers in every mode
# watch the same run (migrate_test.cpp, compact_test.cpp).
check_compaction() {
	local mig_what="compaction migrations of compact_memory's writer, per process and reason (JSON, 1 s intervals)"
	local zone_what="each zone compacted by compact_memory: node, zone, order -1, manual, sync, result; histogram"
	local mig_modes="" zone_modes="" mode
	if require_tool migrate "$mig_what" $TP_MODES; then select_modes mig_modes migrate "$TP_MODES" "$mig_what"; fi
	if require_tool compact "$zone_what" $TP_MODES; then select_modes zone_modes compact "$TP_MODES" "$zone_what"; fi
	cg=$(new_cgroup memscope-compact)
	# The outer window: everything any tracer below can have seen in its whole life (its per-interval
	# totals and histograms also cover what happened before and after the compacting shell ran).
	ftrace_outer_start migrate/mm_migrate_pages compaction/mm_compaction_end
	migrated_outer0=$(vmstat_value pgmigrate_success)
	# A script, not a symlink to busybox (which would look for an applet "compactor"): the kernel
	# names the interpreter's process after the script.
	printf '#!/bin/sh\necho 1 > /proc/sys/vm/compact_memory\n' > "$W/compactor"
	chmod +x "$W/compactor"
	[ -n "$mig_modes" ] && tracers_start mg migrate "$mig_modes" 1
	[ -n "$zone_modes" ] && tracers_start cz compact "$zone_modes"
	tracer_start mgf migrate tp --comm compactor --cgroup "$cg"
	tracer_start czf compact tp --comm compactor --cgroup "$cg"
	tracers_wait_attached mg "$mig_modes"
	tracers_wait_attached cz "$zone_modes"
	tracer_wait_attached mgf 120
	tracer_wait_attached czf 120
	prog_start fr compact_fragment 0 128
	prog_wait_output fr fragmented 120 || log "compact_fragment: $(cat "$W/fr.prog")"
	# kcompactd's proactive compaction would migrate pages of its own in the window.
	proactiveness=$(cat /proc/sys/vm/compaction_proactiveness)
	echo 0 > /proc/sys/vm/compaction_proactiveness
	ftrace_start migrate/mm_migrate_pages compaction/mm_compaction_end
	migrated_before=$(vmstat_value pgmigrate_success)
	sh -c "echo \$\$ > $cg/cgroup.procs && exec $W/compactor" &
	pid=$!
	wait $pid
	compact_rc=$?
	migrated=$(( $(vmstat_value pgmigrate_success) - migrated_before ))
	ftrace_stop
	echo "$proactiveness" > /proc/sys/vm/compaction_proactiveness
	# pgmigrate_success rises by what each migrate_pages() call passes to mm_migrate_pages as
	# succeeded, for every process: the window is exact when only the compacting shell migrated.
	migrate_calls=$(ftrace_count mm_migrate_pages "$pid")
	zone_compactions=$(ftrace_count mm_compaction_end "$pid")
	others=$(( $(ftrace_count mm_compaction_try_to_compact_pages) - tried ))
	log "ftrace: $migrate_calls migrate_pages() calls and $zone_compactions zone compactions by PID $pid; $(ftrace_count mm_migrate_pages) calls in all, $(ftrace_lost) entries lost"
	prog_finish fr 30
	sleep 2   # the migrate tracers report per second
	tracers_stop mg "$mig_modes"
	tracers_stop cz "$zone_modes"
	tracer_stop mgf
	RC_mgf=$TRACER_RC
	tracer_stop czf
	RC_czf=$TRACER_RC
	migrated_outer=$(( $(vmstat_value pgmigrate_success) - migrated_outer0 ))
	ftrace_outer_stop
	log "compact_memory by PID $pid migrated $migrated pages (pgmigrate_success)"
	log "around the tracers: pgmigrate_success +$migrated_outer, $(ftrace_outer_count mm_migrate_pages) migrate_pages() calls, $(ftrace_outer_count mm_compaction_end) zone compactions (ftrace), $(ftrace_outer_lost) entries lost"

	for mode in $mig_modes; do
		out=$W/mg_$mode.out
		check_begin migrate "$mode" "$mig_what"
		expect_count "compact_memory exit status" "$compact_rc" -eq 0
		expect_count "pages migrated system-wide" "$migrated" -gt 0
		expect_migration_window_sound
		if expect_tracer mg "$mode"; then
			pages=$(json_sum "$out" migrate succeeded pid="$pid")
			expect_count "pages migrated by PID $pid (pgmigrate_success rose by $migrated)" "$pages" -eq "$migrated"
			expect_json_field "$out" migrate reason compaction pid="$pid"
			expect_json_field "$out" migrate comm compactor pid="$pid"
			expect_count "records of PID $pid with another reason" "$(json_select "$out" migrate pid="$pid" | grep -vc '"reason":"compaction"')" -eq 0
			# The per-reason totals cover the tracer's whole life: at least the compacting shell's
			# migrations (the inner window, where no one else migrated), at most every migration
			# between the first tracer's start and the last one's end (the outer window; more than
			# the shell's when e.g. kcompactd compacted compact_fragment's holes before proactive
			# compaction was switched off). Exact whenever nothing else migrated.
			expect_count "outer ftrace entries lost" "$(ftrace_outer_lost)" -eq 0
			expect_between "pages in the per-reason totals for compaction (the shell's $migrated .. pgmigrate_success +$migrated_outer around the tracers)" \
				"$(json_sum "$out" migrate_reason succeeded reason=compaction)" "$migrated" "$migrated_outer"
			expect_between "calls in the per-reason totals for compaction (the shell's $migrate_calls .. all $(ftrace_outer_count mm_migrate_pages) around the tracers, ftrace)" \
				"$(json_sum "$out" migrate_reason calls reason=compaction)" "$migrate_calls" "$(ftrace_outer_count mm_migrate_pages)"
			expect_count "calls of PID $pid (ftrace: mm_migrate_pages)" "$(json_sum "$out" migrate calls pid="$pid")" -eq "$migrate_calls"
		fi
		check_end "$out" "$W/mg_$mode.err"
	done
	for mode in $zone_modes; do
		out=$W/cz_$mode.out
		check_begin compact "$mode" "$zone_what"
		if expect_tracer cz "$mode"; then
			n=$(json_count "$out" compaction pid="$pid")
			expect_count "zone compactions of PID $pid (ftrace: mm_compaction_end)" "$n" -eq "$zone_compactions"
			expect_count "zone compactions of PID $pid (ftrace saw the workload compact)" "$zone_compactions" -ge 1
			expect_count "of them order -1, manual, sync" "$(json_count "$out" compaction pid="$pid" order=-1 type=manual mode=sync comm=compactor node=0)" -eq "$n"
			expect_count "of them in zone Normal or DMA32" "$(json_select "$out" compaction pid="$pid" | grep -c '"zone":"\(Normal\|DMA32\|DMA\)"')" -eq "$n"
			expect_count "of them with a zero latency" "$(json_count "$out" compaction pid="$pid" latency_ns=0)" -eq 0
			expect_count "of them with an unknown status" "$(json_select "$out" compaction pid="$pid" | grep -vc '"status":"\(not_suitable_zone\|skipped\|deferred\|no_suitable_page\|continue\|complete\|partial_skipped\|contended\|success\)"')" -eq 0
			# Every zone compaction of the tracer's life but its own: at least the inner window's,
			# at most the outer window's (ftrace: mm_compaction_end).
			expect_within_windows "histogram count (zone compactions)" "$(histogram_total "$out" compaction_latency)" \
				mm_compaction_end "$(tracer_pid "cz_$mode")"
		fi
		check_end "$out" "$W/cz_$mode.err"
	done
	check_begin migrate filters "--comm compactor --cgroup: only the compacting shell"
	TRACER_RC=$RC_mgf
	expect_tracer_ok mgf -
	expect_count "calls of PID $pid (ftrace: mm_migrate_pages)" "$(json_sum "$W/mgf.out" migrate calls pid="$pid")" -eq "$migrate_calls"
	expect_count "pages migrated by PID $pid (pgmigrate_success rose by $migrated)" "$(json_sum "$W/mgf.out" migrate succeeded pid="$pid")" -eq "$migrated"
	expect_migration_window_sound
	expect_count "records of other processes" "$(json_select "$W/mgf.out" migrate | grep -vc "\"pid\":$pid,")" -eq 0
	check_end "$W/mgf.out" "$W/mgf.err"
	check_begin compact filters "--comm compactor --cgroup: only the compacting shell"
	TRACER_RC=$RC_czf
	expect_tracer_ok czf -
	expect_count "zone compactions of PID $pid (ftrace: mm_compaction_end)" "$(json_count "$W/czf.out" compaction pid="$pid")" -eq "$zone_compactions"
	expect_count "zone compactions of PID $pid" "$zone_compactions" -ge 1
	expect_count "zone compactions of other processes" "$(json_select "$W/czf.out" compaction | grep -vc "\"pid\":$pid,")" -eq 0
	check_end "$W/czf.out" "$W/czf.err"
	rmdir "$cg" 2>/dev/null
}

# ---------------------------------------------------------------------------------------------
# Direct-compaction stalls: all free memory but 48 MiB in 4 KiB holes, then huge pages for half the
# free memory asked for by a shell; compact in every stall mode watches (compact_test.cpp,
# SeesDirectCompactionStallsOfAHugePageAllocation).
check_stalls() {
	local what="direct compaction stalls of a huge page allocation: order 9, result, per process, histogram"
	local all="fentry kprobe tp_btf raw_tp tracepoint" modes mode
	require_tool compact "$what" $all || return
	select_modes modes compact "$all" "$what"
	ftrace_outer_start compaction/mm_compaction_try_to_compact_pages
	for mode in $modes; do
		case $mode in
		fentry) tracer_start cs_fentry compact fentry,tp_btf ;;
		kprobe) tracer_start cs_kprobe compact kprobe,tracepoint ;;
		*) tracer_start "cs_$mode" compact "$mode" ;;
		esac
	done
	tracers_wait_attached cs "$modes"
	# Without this kcompactd compacts the fragmented memory proactively (it did: DMA32, 0.9 s) and
	# the huge pages find free 2 MiB blocks.
	proactiveness=$(cat /proc/sys/vm/compaction_proactiveness)
	echo 0 > /proc/sys/vm/compaction_proactiveness
	prog_start fs compact_fragment 48
	prog_wait_output fs fragmented 180 || log "compact_fragment: $(cat "$W/fs.prog")"
	log "$(cat "$W/fs.prog"); MemFree $(meminfo_mb MemFree) MiB; buddyinfo: $(tr -s ' ' < /proc/buddyinfo | tr '\n' ';')"
	ftrace_start compaction/mm_compaction_try_to_compact_pages compaction/mm_compaction_end
	stalls_before=$(vmstat_value compact_stall)
	huge_before=$(awk '/^HugePages_Total/ { print $2 }' /proc/meminfo)
	# Huge pages for half the free memory: far more than its free 2 MiB blocks.
	wanted=$(( $(meminfo_mb MemFree) / 4 ))
	sh -c "echo $((huge_before + wanted)) > /proc/sys/vm/nr_hugepages" &
	pid=$!
	wait $pid
	huge_after=$(awk '/^HugePages_Total/ { print $2 }' /proc/meminfo)
	stalls=$(( $(vmstat_value compact_stall) - stalls_before ))
	ftrace_stop
	# Each try_to_compact_pages() that may do I/O fires mm_compaction_try_to_compact_pages: one
	# stall. compact_stall counts only those that compacted some zone (did not return skipped).
	tried=$(ftrace_count mm_compaction_try_to_compact_pages "$pid")
	zone_compactions=$(ftrace_count mm_compaction_end "$pid")
	others=$(( $(ftrace_count mm_compaction_try_to_compact_pages) - tried ))
	log "ftrace: PID $pid entered direct compaction $tried times, compacted $zone_compactions zones; $(ftrace_count mm_compaction_try_to_compact_pages) direct compactions in all, $(ftrace_lost) entries lost"
	echo "$huge_before" > /proc/sys/vm/nr_hugepages
	prog_finish fs 30
	echo "$proactiveness" > /proc/sys/vm/compaction_proactiveness
	sleep 1.5   # tracepoint modes close a stall after 1 s without events
	tracers_stop cs "$modes"
	ftrace_outer_stop
	log "nr_hugepages $huge_before -> $huge_after by PID $pid; compact_stall +$stalls; around the tracers $(ftrace_outer_count mm_compaction_try_to_compact_pages) direct compactions (ftrace), $(ftrace_outer_lost) entries lost"
	for mode in $modes; do
		out=$W/cs_$mode.out
		check_begin compact "$mode" "$what"
		expect_count "compact_stall rise in /proc/vmstat" "$stalls" -ge 1
		expect_count "ftrace entries lost" "$(ftrace_lost)" -eq 0
		if expect_tracer cs "$mode"; then
			case $mode in
			fentry | kprobe)
				grep -q "zone compaction: using \(tp_btf\|tracepoint\)" "$W/cs_$mode.err" || check_error "zone compactions not on a tracepoint hook"
				end=return ;;
			*) end=last_zone ;;
			esac
			n=$(json_count "$out" compaction_stall pid="$pid")
			expect_count "stalls of PID $pid (ftrace: mm_compaction_try_to_compact_pages)" "$n" -eq "$tried"
			case $mode in
			fentry | kprobe)  # the result is try_to_compact_pages()'s return value
				# compact_stall also counts other processes' direct compactions that were not
				# skipped: ftrace saw $others of them in the window, results unknown. Exact when 0.
				not_skipped=$(json_select "$out" compaction_stall pid="$pid" | grep -vc '"result":"skipped"')
				expect_count "stalls of PID $pid not skipped (compact_stall rose by $stalls)" "$not_skipped" -le "$stalls"
				expect_count "stalls of PID $pid not skipped (compact_stall rose by $stalls, $others by other processes)" "$not_skipped" -ge $((stalls - others)) ;;
			esac
			expect_count "of them order 9" "$(json_count "$out" compaction_stall pid="$pid" order=9)" -eq "$n"
			expect_count "of them ended by '$end' or 'next_stall'" "$(json_select "$out" compaction_stall pid="$pid" | grep -c "\"end\":\"\($end\|next_stall\)\"")" -eq "$n"
			expect_count "of them with an unknown result" "$(json_select "$out" compaction_stall pid="$pid" | grep -vc '"result":"\(not_suitable_zone\|skipped\|deferred\|no_suitable_page\|continue\|complete\|partial_skipped\|contended\|success\)"')" -eq 0
			expect_count "of them with an empty priority" "$(json_count "$out" compaction_stall pid="$pid" priority=)" -eq 0
			expect_json_field "$out" compaction_stall_process stalls "$n" pid="$pid"
			# Every stall of the tracer's life but its own: at least the inner window's, at most
			# the outer window's (ftrace). try_to_compact_pages() returns before the tracepoint
			# only for allocations that may not do I/O (GFP_NOIO/NOFS): none in this quiet guest.
			expect_within_windows "stall histogram count" "$(histogram_total "$out" direct_compaction_stall)" \
				mm_compaction_try_to_compact_pages "$(tracer_pid "cs_$mode")"
			expect_count "direct zone compactions of PID $pid (ftrace: mm_compaction_end)" "$(json_count "$out" compaction pid="$pid" type=direct)" -eq "$zone_compactions"
		fi
		check_end "$out" "$W/cs_$mode.err"
	done
}

for check in ${VM_CHECKS:-doctor llcstat usdt mallocsnoop compaction stalls}; do
	t0=$(cut -d' ' -f1 /proc/uptime)
	"check_$check"
	echo "     ($check: $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }') s)"
done
finish
