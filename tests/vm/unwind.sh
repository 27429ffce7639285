# vm_unwind: user stacks through code built without frame pointers under Debian's 6.1 kernel: the
# test programs tests/testprogs/unwind_* (-O2 -g, frame pointers omitted) calling into Debian's libc
# and libstdc++. Each check asserts the frames tests/integration/unwind_test.cpp asserts on the host,
# in order (innermost first, other frames between allowed), none of them walked by frame pointer
# ("unwound":"fp"). The host test also checks those frames against gdb and valgrind, which the VM
# does not have. Every check prints "ok   - TOOL/MODE: ..." or "FAIL - TOOL/MODE: ..."
# (tests/vm/lib.sh).
set -u
. /vm/lib.sh

echo "kernel $(uname -r), $(nproc) CPUs, MemTotal $(meminfo_mb MemTotal) MiB"

# The stack entry lines on stdin (json_split_stacks) against EXPECTED, frames separated by commas,
# innermost first, each "name|alias|...". Names are compared without parameter list, symbol version
# and leading underscores (glibc's strdup is also __strdup), as stack_oracle.cpp compares them.
# Prints nothing when some entry holds them all, none walked by frame pointer; otherwise what is
# wrong with the entry that got furthest (the first of those, reports being sorted largest first),
# and that entry's frames.
frames_problem() {  # EXPECTED
	awk -v expected="$1" '
	function comparable(name) {
		sub(/\(.*/, "", name); sub(/@.*/, "", name); sub(/^__GI_/, "", name); sub(/^_+/, "", name)
		return name
	}
	BEGIN { wanted = split(expected, want, ","); best_matched = -1 }
	{
		# One piece per frame object (frames hold no nested objects), its keys in any order.
		n = 0; line = substr($0, index($0, "\"frames\":[")); k = "\"function\":\""
		pieces = split(line, piece, "}")
		for (p = 1; p <= pieces; p++) {
			if (!(i = index(piece[p], k))) continue
			rest = substr(piece[p], i + length(k)); j = index(rest, "\"")
			n++; name[n] = comparable(substr(rest, 1, j - 1))
			fp[n] = index(piece[p], "\"unwound\":\"fp\"") > 0
			shown[n] = substr(rest, 1, j - 1) (fp[n] ? " [fp]" : "")
		}
		at = 1; matched = 0; problem = ""
		for (w = 1; w <= wanted && problem == ""; w++) {
			alternatives = split(want[w], alias, "|"); found = 0
			for (; at <= n && !found; at++)
				for (a = 1; a <= alternatives; a++)
					if (name[at] == comparable(alias[a])) { found = 1; hit = at }
			if (!found) problem = want[w] " is missing"
			else if (fp[hit]) problem = want[w] " was walked by frame pointer"
			else matched++
		}
		if (problem == "") { ok = 1; exit }
		if (matched > best_matched) {  # the first (largest) of equals
			best_matched = matched; best = problem " in:"
			for (f = 1; f <= n; f++) best = best " " shown[f]
		}
	}
	END { if (!ok) print (best == "" ? "no stacks" : best) }'
}

expect_frames() {  # ENTRIES_FILE EXPECTED
	local problem
	problem=$(frames_problem "$2" < "$1")
	[ -z "$problem" ] || check_error "stack $(echo "$2" | sed 's/,/ <- /g'): $problem"
}

# memleak -c PROGRAM…: its final report's stacks into $W/NAME.entries; the check is begun.
memleak_command_check() {  # NAME WHAT PROGRAM [ARGS...]
	local name=$1 what=$2
	shift 2
	tracer_start "$name" memleak - -c "$*" --no-scan -T 1000
	tracer_wait_exit "$name" 240
	check_begin memleak uprobe "$what"
	expect_count "memscope exit status" "$TRACER_RC" -eq 0
	expect_mode_used "$name" uprobe
	json_last "$W/$name.out" outstanding_allocations > "$W/$name.final"
	json_split_stacks "$W/$name.final" outstanding_allocations > "$W/$name.entries"
	[ -s "$W/$name.entries" ] || check_error "no outstanding_allocations report"
}

check_libc_leaks() {
	require_tool memleak "leaks through libc from unwind_libc's named functions" uprobe || return
	memleak_command_check ul "strdup, asprintf, getline, fopen leaks of unwind_libc name their callers" /memscope/unwind_libc
	expect_frames "$W/ul.entries" "strdup,make_label,main"
	expect_frames "$W/ul.entries" "asprintf,format_label,main"
	expect_frames "$W/ul.entries" "getline|getdelim|_IO_getdelim,read_line_leak,main"
	expect_frames "$W/ul.entries" "open_leak,main"  # fopen's allocating frame is named by libc6-dbg only
	check_end "$W/ul.final" "$W/ul.err"
}

check_signal_handler() {
	require_tool memleak "malloc in a signal handler" uprobe || return
	memleak_command_check us "malloc in on_signal() reaches raise_here() through the signal frame" /memscope/unwind_signal
	expect_frames "$W/us.entries" "on_signal,raise|gsignal,raise_here,main"
	check_end "$W/us.final" "$W/us.err"
}

check_cxx() {
	require_tool memleak "C++ allocations through libstdc++" uprobe || return
	memleak_command_check uc "std::string, std::vector growth, std::make_shared of unwind_cxx name their callers" /memscope/unwind_cxx
	for function in make_name grow_vector make_shared_here; do
		expect_frames "$W/uc.entries" "$function,main"
	done
	check_end "$W/uc.final" "$W/uc.err"
}

check_dlopen() {
	require_tool memleak "leak in a dlopen()ed library" uprobe || return
	memleak_command_check ud "strdup in libunwind_plugin.so, loaded after attaching, names plugin_make_record" \
		/memscope/unwind_dlopen /memscope/libunwind_plugin.so
	expect_frames "$W/ud.entries" "strdup,plugin_make_record,plugin_leak,main"
	check_end "$W/ud.final" "$W/ud.err"
	memleak_command_check usw "a second library loaded where the first was unloaded names plugin_build_entry" \
		/memscope/unwind_dlopen /memscope/libunwind_plugin.so swap /memscope/libunwind_plugin_second.so
	expect_frames "$W/usw.entries" "strdup,plugin_build_entry,plugin_leak,main"
	check_end "$W/usw.final" "$W/usw.err"
}

# sbrk() keeps the old break in rbp: no frame-pointer walk gets from brk() to grow_heap_here().
check_sbrk() {
	local what="sbrk growth of unwind_sbrk: brk <- sbrk <- grow_heap_here <- main" mode=tp_btf pid
	require_tool brkstack "$what" $mode || return
	prog_start sb unwind_sbrk 5 10000
	prog_wait_output sb ready 30 || log "unwind_sbrk did not start: $(cat "$W/sb.prog")"
	pid=$(prog_pid sb)
	tracers_start sb brkstack "$mode" -p "$pid"
	tracers_wait_attached sb "$mode"
	prog_send sb go
	prog_wait_output sb grown 30 || log "unwind_sbrk did not grow: $(cat "$W/sb.prog")"
	tracers_stop sb "$mode"
	prog_finish sb
	check_begin brkstack "$mode" "$what"
	if expect_tracer sb "$mode"; then
		json_split_stacks "$W/sb_$mode.out" brk_stacks | grep "\"pid\":$pid," > "$W/sb.entries"
		expect_json_field "$W/sb.entries" brk_stacks_entry bytes 50000 pid="$pid"
		expect_frames "$W/sb.entries" "brk,sbrk,grow_heap_here,main"
	fi
	check_end "$W/sb_$mode.out" "$W/sb_$mode.err"
}

for check in ${VM_CHECKS:-libc_leaks signal_handler cxx dlopen sbrk}; do
	t0=$(cut -d' ' -f1 /proc/uptime)
	"check_$check"
	echo "     ($check: $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }') s)"
done
finish
