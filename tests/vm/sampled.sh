# vm_sampled: memleak --sample-bytes (the in-process sampler, libmemscope-sampler.so, preloaded with
# -c) under Debian's 6.1 kernel, with the host integration tests' assertions
# (tests/integration/sampled_test.cpp): at --sample-bytes 1 every allocation is a sample of its own
# size, so leak_funcs' malloc family and sampled_hard's threads, realloc, operator new variants and
# fork are exact; at 65536 the estimates of sampled_estimates (64 MiB leaked in 4 KiB blocks, 32 MiB
# kept, 1 GiB churned) are within 20 % and the kept memory is never LEAKED. The USDT probes are
# attached with their semaphores (uprobe reference counters) in every case. With -p the library is
# loaded into a running process and its GOT entries redirected, then put back (attach_rounds).
set -u
. /vm/lib.sh

echo "kernel $(uname -r), $(nproc) CPUs, MemTotal $(meminfo_mb MemTotal) MiB"

# The final report's stack entries of `memleak -c PROGRAM --sample-bytes BYTES [MEMLEAK ARGS]` into
# $W/NAME.entries.
sampled_run() {  # NAME BYTES PROGRAM [MEMLEAK ARGS...]
	local name=$1 bytes=$2 program=$3
	shift 3
	tracer_start "$name" memleak - --sample-bytes "$bytes" -T 200 -c "$program" "$@"
	tracer_wait_exit "$name" 600
	expect_count "memscope exit status" "$TRACER_RC" -eq 0
	expect_grep "the sampler's probes" "$W/$name.err" "probes ddheap:alloc and ddheap:free attached"
	json_last "$W/$name.out" outstanding_allocations > "$W/$name.final"
	json_split_stacks "$W/$name.final" outstanding_allocations > "$W/$name.entries"
	[ -s "$W/$name.entries" ] || check_error "no outstanding_allocations report"
}

# One entry with FUNCTION on top still holding memory: exactly BYTES in COUNT allocations.
expect_exact() {  # NAME FUNCTION BYTES COUNT
	entries_by_top "$W/$1.entries" "$2" | grep -v '"bytes":0,' > "$W/$1.top"
	local n
	n=$(wc -l < "$W/$1.top")
	if [ "$n" -ne 1 ]; then
		check_error "$n outstanding stacks with $2 on top, want 1"
		return
	fi
	expect_json_field "$W/$1.top" outstanding_allocations_entry bytes "$3"
	expect_json_field "$W/$1.top" outstanding_allocations_entry allocations "$4"
	expect_json_field "$W/$1.top" outstanding_allocations_entry estimated true
}

expect_nothing_outstanding() {  # NAME FUNCTION
	local n
	n=$(entries_by_top "$W/$1.entries" "$2" | grep -vc '"bytes":0,')
	expect_count "outstanding stacks with $2 on top" "$n" -eq 0
}

check_leak_funcs() {
	require_tool memleak "leak_funcs' malloc family, exact at --sample-bytes 1 (-c)" uprobe || return
	check_begin memleak uprobe "leak_funcs' malloc family, exact at --sample-bytes 1 (-c)"
	sampled_run lf 1 /memscope/leak_funcs --no-scan
	for leak in leak_via_malloc:11001 leak_via_calloc:11011 leak_via_realloc:11021 \
		leak_via_reallocarray:11031 leak_via_posix_memalign:11041 leak_via_aligned_alloc:11072 \
		leak_via_memalign:11081 leak_via_valloc:11091 leak_via_pvalloc:11101 leak_on_thread:31013; do
		expect_exact lf "${leak%%:*}" "${leak#*:}" 1
	done
	for function in allocate_and_free fail_to_allocate allocate_for_other_thread free_from_other_thread; do
		expect_nothing_outstanding lf "$function"
	done
	check_end "$W/lf.final" "$W/lf.err"
}

check_hard_places() {
	require_tool memleak "sampled_hard: threads, realloc, new/delete, fork (exact)" uprobe || return
	check_begin memleak uprobe "sampled_hard: threads, realloc, new/delete, fork (exact)"
	sampled_run sh 1 /memscope/sampled_hard --no-scan
	expect_grep "the program's own checks" "$W/sh.out" "sampled_hard ok"
	expect_exact sh "thread_leak()" 40000 40
	expect_exact sh "realloc_moves()" 200000 1
	expect_exact sh "realloc_shrinks()" 3000 1
	expect_exact sh "new_array()" 5001 1
	expect_exact sh "new_nothrow()" 6001 1
	expect_exact sh "new_aligned()" 7001 1
	expect_exact sh "new_object()" 4008 1
	for function in "freed_pairs()" "churn()" "child_leak()"; do
		expect_nothing_outstanding sh "$function"
	done
	check_end "$W/sh.final" "$W/sh.err"
}

# Within 20 % of EXPECTED (integers).
expect_within20() {  # DESCRIPTION GOT EXPECTED
	expect_between "$1" "$2" $(($3 * 8 / 10)) $(($3 * 12 / 10))
}

check_estimates() {
	require_tool memleak "sampled_estimates: estimates within 20 %, kept memory never LEAKED" uprobe || return
	check_begin memleak uprobe "sampled_estimates: estimates within 20 % at --sample-bytes 65536, kept memory never LEAKED"
	sampled_run se 65536 /memscope/sampled_estimates
	entries_by_top "$W/se.entries" leak_blocks | grep -v '"bytes":0,' > "$W/se.leaked"
	entries_by_top "$W/se.entries" keep_blocks | grep -v '"bytes":0,' > "$W/se.kept"
	entries_by_top "$W/se.entries" churn > "$W/se.churn"
	for file in leaked kept churn; do
		expect_count "stacks in $file" "$(wc -l < "$W/se.$file")" -eq 1
	done
	value() { json_value "$(head -n 1 "$W/se.$1")" "$2"; }
	expect_within20 "leak_blocks bytes" "$(value leaked bytes)" 67108864
	expect_within20 "leak_blocks allocations" "$(value leaked allocations)" 16384
	expect_within20 "keep_blocks bytes" "$(value kept bytes)" 33554432
	expect_within20 "keep_blocks allocations" "$(value kept allocations)" 8192
	expect_within20 "churn alloc_bytes" "$(value churn alloc_bytes)" 1073741824
	expect_count "keep_blocks leaked_bytes" "$(value kept leaked_bytes)" -eq 0
	expect_count "leak_blocks leaked_bytes" "$(value leaked leaked_bytes)" -ge 50331648
	check_end "$W/se.final" "$W/se.err"
}

# -p: the sampler loaded into the running sampled_attach (ptrace, dlopen, GOT redirection), three
# rounds of attach, leak 7 blocks of 4099 bytes, detach; the process's own dladdr of its malloc GOT
# entry names the sampler while attached and libc after, its churning thread sees no corruption.
check_attach_rounds() {
	require_tool memleak "sampled_attach: -p injection, three attach/detach rounds (exact)" uprobe || return
	check_begin memleak uprobe "sampled_attach: -p injection, three attach/detach rounds, exact at --sample-bytes 1"
	prog_start sa /memscope/sampled_attach
	prog_wait_output sa ready 30 || check_error "sampled_attach did not start"
	local round answer=0
	ask() {  # COMMAND EXPECTED-TEXT
		answer=$((answer + 1))
		prog_send sa "$1"
		if ! prog_wait_output sa "#$answer " 60; then
			check_error "no answer #$answer to '$1'"
		elif ! grep "^#$answer " "$W/sa.prog" | grep -qF -- "$2"; then
			check_error "answer #$answer to '$1' is '$(grep "^#$answer " "$W/sa.prog")', want '$2'"
		fi
	}
	ask where "libc.so.6"
	for round in 1 2 3; do
		tracer_start "sa$round" memleak - -p "$(prog_pid sa)" --sample-bytes 1 -T 200 -o 0
		tracer_wait_attached "sa$round" 300 || check_error "round $round: memleak -p did not attach"
		ask where "libmemscope-sampler.so"
		ask "leak 7" "leaked 7"
		tracer_stop "sa$round" 300
		expect_count "round $round: memscope exit status" "$TRACER_RC" -eq 0
		json_last "$W/sa$round.out" outstanding_allocations > "$W/sa$round.final"
		json_split_stacks "$W/sa$round.final" outstanding_allocations > "$W/sa$round.entries"
		expect_exact "sa$round" leak_after_attach 28693 7
		ask where "libc.so.6"
	done
	ask status "errors 0"
	prog_send sa exit
	prog_finish sa 60
	expect_count "sampled_attach exit status" "$PROG_RC" -eq 0
	check_end "$W/sa3.final" "$W/sa3.err"
}

for check in ${VM_CHECKS:-leak_funcs hard_places estimates attach_rounds}; do
	t0=$(cut -d' ' -f1 /proc/uptime)
	"check_$check"
	echo "     ($check: $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }') s)"
done
finish
