# vm_tools: the host integration tests' assertions, once per attach mode each tool offers, under
# Debian's 6.1 kernel (kprobes and fentry available). One boot; several tracers of one tool, each
# forced into one mode (--probe), watch one run of a test program. Every check prints
# "ok   - TOOL/MODE: ..." or "FAIL - TOOL/MODE: ..." (tests/vm/lib.sh).
#
# Also saves `memscope doctor --all-modes --json` of this kernel (doctor-6.1.json) for
# tests/vm/kernel-matrix.sh.
set -u
. /vm/lib.sh

SYSCALL_MODES="tracepoint tp_btf raw_tp fentry kprobe"
FAULT_MODES="tp_btf raw_tp tracepoint fentry kprobe"

echo "kernel $(uname -r), $(nproc) CPUs, MemTotal $(meminfo_mb MemTotal) MiB, HugePages_Total $(awk '/^HugePages_Total/ { print $2 }' /proc/meminfo)"

# ---------------------------------------------------------------------------------------------
# doctor: what this kernel offers each tool (the kernel matrix's 6.1 column)
memscope doctor --all-modes --json > "$VM_OUT/doctor-6.1.json" 2> "$W/doctor.err"
doctor_rc=$?
memscope doctor --all-modes > "$VM_OUT/doctor-6.1.txt" 2>&1
check_begin doctor all "doctor --all-modes --json runs and lists tool_probe_mode records"
expect_count "doctor exit status" "$doctor_rc" -eq 0
expect_count "tool_probe_mode records" "$(json_count "$VM_OUT/doctor-6.1.json" tool_probe_mode)" -gt 0
expect_json_field "$VM_OUT/doctor-6.1.json" kernel_feature status available feature=kprobe
expect_json_field "$VM_OUT/doctor-6.1.json" kernel_feature status available feature=fentry
check_end "$W/doctor.err"

# ---------------------------------------------------------------------------------------------
# mmapsnoop: the four known mmap() calls of mmap_file (tests/integration/mmapsnoop_test.cpp)
check_mmapsnoop() {
	local what="known mmap calls of mmap_file (shared, private at offset, anonymous, EBADF)" modes
	require_tool mmapsnoop "$what" $SYSCALL_MODES || return
	select_modes modes mmapsnoop "$SYSCALL_MODES" "$what"
	dir=/tmp/mmapsnoop
	mkdir -p $dir
	size=65536
	prog_start mm mmap_file $dir $size
	prog_wait_output mm ready 30 || log "mmap_file did not get ready: $(cat "$W/mm.prog")"
	pid=$(prog_pid mm)
	tracers_start mm mmapsnoop "$modes" -p "$pid"
	tracers_wait_attached mm "$modes"
	prog_send mm go
	prog_finish mm
	tracers_wait_exit mm "$modes" 30   # -p: they stop when mmap_file exits
	shared=$(hex_to_dec "$(awk '$1 == "shared_before" { print $2 }' "$W/mm.prog")")
	private=$(hex_to_dec "$(awk '$1 == "private_after" { print $2 }' "$W/mm.prog")")
	anon=$(hex_to_dec "$(awk '$1 == "anonymous" { print $2 }' "$W/mm.prog")")
	for mode in $modes; do
		out=$W/mm_$mode.out
		check_begin mmapsnoop "$mode" "$what"
		expect_count "mmap_file exit status" "$PROG_RC" -eq 0
		if expect_tracer mm "$mode"; then
			expect_count "mmap events of PID $pid" "$(json_count "$out" mmap pid="$pid")" -eq 4
			f=$dir/before.bin
			expect_json_field "$out" mmap comm mmap_file pid="$pid" file=$f
			expect_json_field "$out" mmap addr "$shared" pid="$pid" file=$f
			expect_json_field "$out" mmap ret "$shared" pid="$pid" file=$f
			expect_json_field "$out" mmap len $size pid="$pid" file=$f
			expect_json_field "$out" mmap offset 0 pid="$pid" file=$f
			expect_json_field "$out" mmap prot_names "PROT_READ|PROT_WRITE" pid="$pid" file=$f
			expect_json_field "$out" mmap flags_names MAP_SHARED pid="$pid" file=$f
			expect_json_field "$out" mmap error "" pid="$pid" file=$f
			f=$dir/after.bin
			expect_json_field "$out" mmap addr "$private" pid="$pid" file=$f
			expect_json_field "$out" mmap len $((size - 4096)) pid="$pid" file=$f
			expect_json_field "$out" mmap offset 4096 pid="$pid" file=$f
			expect_json_field "$out" mmap prot_names PROT_READ pid="$pid" file=$f
			expect_json_field "$out" mmap flags_names MAP_PRIVATE pid="$pid" file=$f
			expect_json_field "$out" mmap addr "$anon" pid="$pid" file="[anon]"
			expect_json_field "$out" mmap len 12288 pid="$pid" file="[anon]"
			expect_json_field "$out" mmap fd -1 pid="$pid" file="[anon]"
			expect_json_field "$out" mmap flags_names "MAP_PRIVATE|MAP_ANONYMOUS" pid="$pid" file="[anon]"
			expect_json_field "$out" mmap error EBADF pid="$pid" file="[fd 987]"
			expect_json_field "$out" mmap ret -9 pid="$pid" file="[fd 987]"
			expect_json_field "$out" mmap len 4096 pid="$pid" file="[fd 987]"
		fi
		check_end "$out" "$W/mm_$mode.err"
	done
}

# ---------------------------------------------------------------------------------------------
# brkstack: 7 brk() calls of 10000 bytes from grow_heap_from_here (brkstack_test.cpp)
check_brkstack() {
	local what="7 brk() growths of brk_grow by symbolized stack" modes
	require_tool brkstack "$what" $SYSCALL_MODES || return
	select_modes modes brkstack "$SYSCALL_MODES" "$what"
	# Frame pointers: brk_grow grows at once after it starts, before its tables could load (a
	# call path would be split over a frame-pointer and a DWARF stack); unwind.sh checks DWARF.
	tracers_start brk brkstack "$modes" --comm brk_grow --stack-mode fp
	tracers_wait_attached brk "$modes"
	brk_grow 7 10000 > "$W/brk.prog" 2>&1 &
	pid=$!
	wait $pid
	prog_rc=$?
	tracers_stop brk "$modes"
	for mode in $modes; do
		out=$W/brk_$mode.out
		check_begin brkstack "$mode" "$what"
		expect_count "brk_grow exit status" "$prog_rc" -eq 0
		if expect_tracer brk "$mode"; then
			json_split_stacks "$out" brk_stacks | grep '"function":"grow_heap_from_here"' > "$W/brk_$mode.entries"
			expect_count "stacks of PID $pid with grow_heap_from_here" "$(json_count "$W/brk_$mode.entries" brk_stacks_entry pid="$pid")" -eq 1
			e=$W/brk_$mode.entries
			expect_json_field "$e" brk_stacks_entry comm brk_grow pid="$pid"
			expect_json_field "$e" brk_stacks_entry calls 7 pid="$pid"
			expect_json_field "$e" brk_stacks_entry growths 7 pid="$pid"
			expect_json_field "$e" brk_stacks_entry bytes 70000 pid="$pid"
			expect_json_field "$e" brk_stacks_entry failed 0 pid="$pid"
			frames=$(json_select "$e" brk_stacks_entry pid="$pid" | frame_functions | head -n 1)
			case "$frames " in
			"brk grow_heap_from_here main "*) ;;
			*) check_error "frames innermost first: want 'brk grow_heap_from_here main ...', got '$frames'" ;;
			esac
		fi
		check_end "$out" "$W/brk_$mode.err"
	done
}

# ---------------------------------------------------------------------------------------------
# shmsnoop: shm_user's six System V calls in order with decoded results (shmsnoop_test.cpp)
check_shmsnoop() {
	local what="shm_user's six SysV shm calls, in order, with results" modes
	require_tool shmsnoop "$what" $SYSCALL_MODES || return
	select_modes modes shmsnoop "$SYSCALL_MODES" "$what"
	key=0x4d53beef
	tracers_start shm shmsnoop "$modes" --comm shm_user
	tracers_wait_attached shm "$modes"
	shm_user $key 100000 > "$W/shm.prog" 2>&1 &
	pid=$!
	wait $pid
	prog_rc=$?
	tracers_stop shm "$modes"
	shmid=$(awk '$1 == "shmid" { print $2 }' "$W/shm.prog")
	address=$(hex_to_dec "$(awk '$1 == "address" { print $2 }' "$W/shm.prog")")
	for mode in $modes; do
		out=$W/shm_$mode.out
		check_begin shmsnoop "$mode" "$what"
		expect_count "shm_user exit status" "$prog_rc" -eq 0
		if expect_tracer shm "$mode"; then
			grep "\"pid\":$pid," "$out" > "$W/shm_$mode.mine"
			got=$(awk '{ sub(/^\{"event":"/, ""); sub(/".*/, ""); printf "%s ", $0 }' "$W/shm_$mode.mine")
			expect_count "events of PID $pid" "$(wc -l < "$W/shm_$mode.mine")" -eq 6
			[ "$got" = "shmget shmget shmat shmctl shmdt shmctl " ] ||
				check_error "calls in order: want 'shmget shmget shmat shmctl shmdt shmctl', got '$got'"
			m=$W/shm_$mode.mine
			expect_json_field "$m" shmget ret "$shmid" pid="$pid" error=
			expect_json_field "$m" shmget size 100000 pid="$pid" error=
			expect_json_field "$m" shmget shmflg_names "IPC_CREAT|IPC_EXCL|0600" pid="$pid" error=
			expect_json_field "$m" shmget ret -17 pid="$pid" error=EEXIST
			expect_json_field "$m" shmat ret "$address" pid="$pid"
			expect_json_field "$m" shmat shmflg_names SHM_RDONLY pid="$pid"
			expect_json_field "$m" shmctl cmd_name IPC_STAT pid="$pid" shmid="$shmid"
			expect_json_field "$m" shmctl cmd_name IPC_RMID pid="$pid" shmid="$shmid"
			expect_json_field "$m" shmdt shmaddr "$address" pid="$pid" ret=0
			expect_json_field "$m" shmctl comm shm_user pid="$pid"
		fi
		check_end "$out" "$W/shm_$mode.err"
	done
}

# process_faults PID: min_flt + maj_flt of /proc/PID/stat once the process sleeps (blocked
# reading its stdin). The kernel counts each fault that completed, once (a retried fault counts
# once): for fresh pages, each fault is one exception and one handle_mm_fault().
process_faults() {
	local tries=0
	while [ "$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat")" != S ] && [ $tries -lt 100 ]; do
		sleep 0.1; tries=$((tries + 1))
	done
	awk '{ sub(/^.*\) /, ""); print $8 + $10 }' "/proc/$1/stat"
}

# fault_touch_traced PREFIX TOOL "MODES" FAULT_TOUCH_ARGS...: runs fault_touch with the arguments
# under one TOOL tracer per mode (-p its PID, which is left in $pid): the tracers attach before the
# pages are touched and stop once fault_touch says it touched them.
fault_touch_traced() {
	local prefix=$1 tool=$2 modes=$3
	shift 3
	prog_start "$prefix" fault_touch "$@"
	prog_wait_output "$prefix" "pid " 30 || log "fault_touch did not start: $(cat "$W/$prefix.prog")"
	pid=$(prog_pid "$prefix")
	tracers_start "$prefix" "$tool" "$modes" -p "$pid"
	tracers_wait_attached "$prefix" "$modes"
	# The kernel's own fault count of the process (min_flt + maj_flt), read while it waits for a
	# line on stdin before and after touching: the tracers see every fault between the two reads.
	# Around them the trace buffer records the fault exceptions, in user and in kernel mode.
	ftrace_start exceptions/page_fault_user exceptions/page_fault_kernel
	process_faults0=$(process_faults "$pid")
	prog_send "$prefix" go
	prog_wait_output "$prefix" touched 60 || log "fault_touch did not touch: $(cat "$W/$prefix.prog")"
	process_faults1=$(process_faults "$pid")
	ftrace_stop
	cat "/proc/$pid/maps" > "$W/$prefix.maps"
	tracers_stop "$prefix" "$modes"
	prog_finish "$prefix"
}

# ---------------------------------------------------------------------------------------------
# faults: 1000 fresh anonymous pages written once = 1000 user-mode faults (faults_test.cpp)
check_faults() {
	local what="1000 user faults of fault_touch, stack with touch_pages_from_here" modes
	require_tool faults "$what" $FAULT_MODES perf_event || return
	select_modes modes faults "$FAULT_MODES perf_event" "$what"
	pages=1000
	fault_touch_traced ft faults "$modes" anon $pages
	for mode in $modes; do
		out=$W/ft_$mode.out
		check_begin faults "$mode" "$what"
		if expect_tracer ft "$mode"; then
			user=$(json_sum "$out" page_faults user pid="$pid")
			total=$(json_sum "$out" page_faults total pid="$pid")
			kernel_counted=$((process_faults1 - process_faults0))
			json_split_stacks "$out" fault_stacks > "$W/ft_$mode.entries"
			here=$(entries_by_top "$W/ft_$mode.entries" touch_pages_from_here | json_sum - fault_stacks_entry faults pid="$pid" mode=user)
			user_exceptions=$(ftrace_count page_fault_user "$pid")
			kernel_exceptions=$(ftrace_count page_fault_kernel "$pid")
			log "faults/$mode: $total faults of PID $pid ($user in user mode), $here on stacks topped by touch_pages_from_here; min_flt + maj_flt +$kernel_counted; ftrace: $user_exceptions user-mode and $kernel_exceptions kernel-mode fault exceptions"
			if [ "$mode" = perf_event ] && [ "$user" -lt $pages ] &&
				grep -q 'not sampled (perf throttling' "$out"; then
				log "perf_event: $user of $pages faults sampled, throttling reported"
			else
				expect_count "faults of PID $pid (its min_flt + maj_flt rose by $kernel_counted)" "$total" -eq "$kernel_counted"
				# fault_touch's touches fault in user mode; a copy the kernel makes into one of its
				# fresh pages (a read() buffer) would fault in kernel mode. min_flt counts both; the
				# exceptions tracepoints tell them apart.
				expect_count "ftrace entries lost" "$(ftrace_lost)" -eq 0
				expect_count "user-mode fault exceptions of PID $pid (ftrace: it touched its $pages pages)" "$user_exceptions" -ge $pages
				expect_count "user faults of PID $pid (ftrace: page_fault_user)" "$user" -eq "$user_exceptions"
				expect_count "kernel-mode faults of PID $pid (ftrace: page_fault_kernel)" $((total - user)) -eq "$kernel_exceptions"
				# fault_touch writes each of its fresh pages once, in touch_pages_from_here().
				expect_count "faults on stacks whose innermost frame is touch_pages_from_here" "$here" -eq $pages
			fi
			expect_json_field "$out" page_faults comm fault_touch pid="$pid"
		fi
		check_end "$out" "$W/ft_$mode.err"
	done
}

# ---------------------------------------------------------------------------------------------
# ffaults: 1000 write faults on a MAP_SHARED file (ffaults_test.cpp). The file is on ramfs, whose
# mappings fault through filemap_fault (the fentry/kprobe hook); tmpfs would use shmem_fault.
#
# ffaults and hfaults find the faulting VMA with bpf_find_vma on their tracepoint paths. Two
# programs doing that for the same fault collide (the second gets EBUSY: the first one's deferred
# mmap unlock still holds the CPU's irq_work) and see "[unknown]", so at most one tracepoint-family
# tracer watches each run (fault_groups).
fault_groups() {  # "MODES": one line per run, each with at most one bpf_find_vma mode
	local direct="" m first=1
	for m in $1; do case $m in fentry | kprobe) direct="$direct $m" ;; esac; done
	for m in $1; do
		case $m in
		fentry | kprobe) ;;
		*) if [ $first = 1 ]; then echo "$direct $m"; first=0; else echo "$m"; fi ;;
		esac
	done
	if [ $first = 1 ] && [ -n "$direct" ]; then echo "$direct"; fi
}

check_ffaults() {
	local what="1000 faults on a mapped ramfs file, by full path" modes group
	require_tool ffaults "$what" $FAULT_MODES || return
	select_modes modes ffaults "$FAULT_MODES" "$what"
	mkdir -p /mnt/ramfs
	mount -t ramfs ramfs /mnt/ramfs 2>/dev/null
	fault_groups "$modes" > "$W/ff.groups"
	while read -r group; do ffaults_run "$group" "$what" < /dev/null; done < "$W/ff.groups"
}

# Fault exceptions (user and kernel mode) of TGID at addresses inside the mapping of FILE in MAPS
# (a copy of /proc/TGID/maps), from the trace buffer.
ftrace_faults_in_file() {  # TGID MAPS FILE
	local range lo hi n=0 a
	range=$(awk -v f="$3" '$6 == f { print $1; exit }' "$2")
	[ -n "$range" ] || { echo "?"; return; }
	lo=$((0x${range%-*})) hi=$((0x${range#*-}))
	for a in $(awk -v tgid="$1" '/ page_fault_(user|kernel): / && !/^#/ &&
			match($0, /\( *[0-9]+\) \[/) && substr($0, RSTART + 1, RLENGTH - 4) + 0 == tgid &&
			match($0, /address=0x[0-9a-f]+/) { print substr($0, RSTART + 8, RLENGTH - 8) }' "$W/ftrace.txt"); do
		[ $((a)) -ge $lo ] && [ $((a)) -lt $hi ] && n=$((n + 1))
	done
	echo $n
}

ffaults_run() {  # "MODES" WHAT
	local pages=1000 file=/mnt/ramfs/ffaults-target.dat pid mode out in_file
	dd if=/dev/zero of=$file bs=4096 count=$pages 2>/dev/null
	fault_touch_traced ff ffaults "$1" file $file $pages
	# Each write fault on the shared ramfs mapping is one exception and one filemap_fault().
	in_file=$(ftrace_faults_in_file "$pid" "$W/ff.maps" "$file")
	log "ffaults: ftrace: $in_file fault exceptions of PID $pid inside its mapping of $file"
	for mode in $1; do
		out=$W/ff_$mode.out
		check_begin ffaults "$mode" "$2"
		if expect_tracer ff "$mode"; then
			n=$(json_sum "$out" file_faults faults file=$file)
			expect_count "ftrace entries lost" "$(ftrace_lost)" -eq 0
			expect_count "fault exceptions in $file's mapping (ftrace: fault_touch wrote its $pages pages)" "$in_file" -ge $pages
			expect_count "faults on $file (ftrace: exceptions of PID $pid inside its mapping)" "$n" -eq "$in_file"
			expect_json_field "$out" file_faults kind file file=$file
		fi
		check_end "$out" "$W/ff_$mode.err"
	done
	rm -f $file
}

# ---------------------------------------------------------------------------------------------
# hfaults: 4 huge pages of a MAP_HUGETLB mapping written once = 4 hugetlb faults (hfaults_test.cpp)
check_hfaults() {
	local what="4 hugetlb faults of fault_touch" modes
	require_tool hfaults "$what" $FAULT_MODES || return
	select_modes modes hfaults "$FAULT_MODES" "$what"
	fault_groups "$modes" > "$W/hf.groups"
	while read -r group; do hfaults_run "$group" "$what" < /dev/null; done < "$W/hf.groups"
}

hfaults_run() {  # "MODES" WHAT
	local huge=4 pid mode out
	fault_touch_traced hf hfaults "$1" hugetlb $huge
	for mode in $1; do
		out=$W/hf_$mode.out
		check_begin hfaults "$mode" "$2"
		if expect_tracer hf "$mode"; then
			expect_json_field "$out" hugetlb_faults faults $huge pid="$pid"
			expect_json_field "$out" hugetlb_faults comm fault_touch pid="$pid"
		fi
		check_end "$out" "$W/hf_$mode.err" "$W/hf.prog"
	done
}

# ---------------------------------------------------------------------------------------------
# memleak, user mode (uprobes): leak_funcs' known leak through each allocator function, traced
# from its first instruction with -c (memleak_test.cpp, EachAllocatorFunctionLeaksItsExactBytes)
check_memleak_user() {
	require_tool memleak "leak_funcs' exact leak per allocator function (-c)" uprobe || return
	tracer_start ml memleak - -c /memscope/leak_funcs --no-scan -T 200
	tracer_wait_exit ml 240
	rc=$TRACER_RC
	out=$W/ml.out
	check_begin memleak uprobe "leak_funcs' exact leak per allocator function (-c, user mode)"
	expect_count "memscope exit status" "$rc" -eq 0
	expect_mode_used ml uprobe
	json_last "$out" outstanding_allocations > "$W/ml.final"
	json_split_stacks "$W/ml.final" outstanding_allocations > "$W/ml.entries"
	[ -s "$W/ml.entries" ] || check_error "no outstanding_allocations report"
	for leak in leak_via_malloc:11001 leak_via_calloc:11011 leak_via_realloc:11021 \
		leak_via_reallocarray:11031 leak_via_posix_memalign:11041 leak_via_aligned_alloc:11072 \
		leak_via_memalign:11081 leak_via_valloc:11091 leak_via_pvalloc:11101 leak_via_mmap:12288 \
		leak_via_mremap:20480 leak_on_thread:31013; do
		function=${leak%%:*} bytes=${leak#*:}
		entries_by_top "$W/ml.entries" "$function" > "$W/ml.top"
		n=$(wc -l < "$W/ml.top")
		if [ "$n" -ne 1 ]; then
			check_error "$n stacks with $function on top, want 1"
			continue
		fi
		expect_json_field "$W/ml.top" outstanding_allocations_entry bytes "$bytes"
		expect_json_field "$W/ml.top" outstanding_allocations_entry allocations 1
		expect_json_field "$W/ml.top" outstanding_allocations_entry comm leak_funcs
		grep -qE "\"function\":\"$function\",\"offset\":[0-9]+,\"module\":\"leak_funcs\"" "$W/ml.top" ||
			check_error "$function's frame is not in module leak_funcs"
	done
	for function in allocate_and_free fail_to_allocate allocate_for_other_thread free_from_other_thread; do
		n=$(entries_by_top "$W/ml.entries" "$function" | wc -l)
		expect_count "stacks with $function on top (freed or failed: not outstanding)" "$n" -eq 0
	done
	check_end "$W/ml.final" "$W/ml.err"
}

# ---------------------------------------------------------------------------------------------
# memleak, kernel mode (kmem tracepoints): leak_kpipes holds 256 pipes with a page of data each;
# the pipe_inode_info + buffer array (kmalloc in alloc_pipe_info) and the data pages (pipe_write)
# are outstanding while it holds them and gone after it closes them
# (memleak_test.cpp, KernelModeSeesPipeMemoryComeAndGo)
held_bytes() {  # REPORT_LINE_FILE FUNCTION_REGEX: bytes of entries with such a frame, minus slab growth
	json_split_stacks "$1" outstanding_allocations |
		grep -E "\"function\":\"($2)\"" | grep -vE '"function":"(allocate_slab|new_slab|___slab_alloc)"' |
		awk -v key=bytes "$JSON_AWK_VALUE"'{ s += json_value($0, key) } END { printf "%.0f\n", s }'
}
wait_reports() {  # TRACER COUNT SECONDS: until its output has COUNT reports (or it is gone)
	local i=0
	while [ "$(json_count "$W/$1.out" outstanding_allocations)" -lt "$2" ] && [ $i -lt $(($3 * 10)) ] &&
		kill -0 "$(tracer_pid "$1")" 2>/dev/null; do
		sleep 0.1
		i=$((i + 1))
	done
}
check_memleak_kernel() {
	local what="pipe memory of leak_kpipes held, then released (kernel mode)" modes
	require_tool memleak "$what" tp_btf raw_tp tracepoint || return
	select_modes modes memleak "tp_btf raw_tp tracepoint" "$what"
	pipes=256
	tracers_start mk memleak "$modes" --comm leak_kpipes -o 0 -T 100 1
	tracers_wait_attached mk "$modes"
	prog_start kp leak_kpipes $pipes
	prog_wait_output kp "holding $pipes pipes" 60 || log "leak_kpipes did not get ready: $(cat "$W/kp.prog")"
	for mode in $modes; do eval "seen_$mode=\$(json_count \"\$W/mk_$mode.out\" outstanding_allocations)"; done
	for mode in $modes; do eval "wait_reports mk_$mode \$((seen_$mode + 2)) 30"; done
	for mode in $modes; do json_last "$W/mk_$mode.out" outstanding_allocations > "$W/mk_$mode.holding"; done
	prog_send kp release
	prog_wait_output kp released 30 || log "leak_kpipes did not release: $(cat "$W/kp.prog")"
	for mode in $modes; do eval "seen_$mode=\$(json_count \"\$W/mk_$mode.out\" outstanding_allocations)"; done
	for mode in $modes; do eval "wait_reports mk_$mode \$((seen_$mode + 2)) 30"; done
	for mode in $modes; do json_last "$W/mk_$mode.out" outstanding_allocations > "$W/mk_$mode.released"; done
	prog_send kp exit
	prog_finish kp
	tracers_stop mk "$modes"
	for mode in $modes; do
		out=$W/mk_$mode.out
		check_begin memleak "$mode" "$what"
		if expect_tracer mk "$mode"; then
			pages=$(held_bytes "$W/mk_$mode.holding" "pipe_write|anon_pipe_write")
			info=$(held_bytes "$W/mk_$mode.holding" alloc_pipe_info)
			expect_count "bytes held from pipe_write (data pages)" "$pages" -ge $((pipes * 4096))
			expect_count "bytes held from alloc_pipe_info (pipe_inode_info + buffers)" "$info" -ge $((pipes * (192 + 640)))
			expect_count "bytes from pipe_write after release" "$(held_bytes "$W/mk_$mode.released" "pipe_write|anon_pipe_write")" -lt $((pages / 10 + 1))
			expect_count "bytes from alloc_pipe_info after release" "$(held_bytes "$W/mk_$mode.released" alloc_pipe_info)" -lt $((info / 10 + 1))
		fi
		check_end "$W/mk_$mode.holding" "$W/mk_$mode.err"
	done
}

# ---------------------------------------------------------------------------------------------
# oomkill: an OOM kill inside a 48 MiB memory cgroup (oomkill_test.cpp), every mode at once
check_oomkill_memcg() {
	local what="memcg OOM kill of oom_victim: PID, command, cgroup, pages, hook" modes
	local all="fentry kprobe tp_btf raw_tp tracepoint"
	require_tool oomkill "$what" $all || return
	select_modes modes oomkill "$all" "$what"
	cg=/sys/fs/cgroup/memscope-oom
	echo +memory > /sys/fs/cgroup/cgroup.subtree_control
	mkdir -p $cg
	echo $((48 << 20)) > $cg/memory.max
	[ -f $cg/memory.swap.max ] && echo 0 > $cg/memory.swap.max
	tracers_start oc oomkill "$modes"
	tracers_wait_attached oc "$modes"
	oom_victim $cg/cgroup.procs 512 > "$W/oc.prog" 2>&1 &
	pid=$!
	wait $pid
	victim_rc=$?
	sleep 1
	tracers_stop oc "$modes"
	kills=$(memcg_oom_kills $cg)
	totalpages=$(oom_totalpages $cg)
	rss=$(oom_killed_rss "$pid")
	log "oomkill: memory.events oom_kill $kills; OOM domain $totalpages pages; the kernel's report: PID $pid's RSS ${rss:-?} pages"
	for mode in $modes; do
		out=$W/oc_$mode.out
		check_begin oomkill "$mode" "$what"
		expect_count "oom_victim exit status (SIGKILL)" "$victim_rc" -eq 137
		if expect_tracer oc "$mode"; then
			expect_count "oom_kill events in /memscope-oom (its memory.events: oom_kill $kills)" "$(json_count "$out" oom_kill memcg=/memscope-oom)" -eq "$kills"
			expect_json_field "$out" oom_kill victim_comm oom_victim victim_pid="$pid"
			expect_json_field "$out" oom_kill memcg /memscope-oom victim_pid="$pid"
			line=$(json_select "$out" oom_kill victim_pid="$pid" | head -n 1)
			expect_oom_pages "$mode" "$line" "$totalpages" "$rss" "$rss"
			hook=$(json_value "$line" hook 2>/dev/null)
			case "$hook" in "$mode "*) ;; *) check_error "hook '$hook' is not a $mode hook" ;; esac
			[ -n "$(json_value "$line" loadavg 2>/dev/null)" ] || check_error "empty loadavg"
		fi
		check_end "$out" "$W/oc_$mode.err"
	done
	rmdir $cg 2>/dev/null
}

# oomkill: a memcg OOM whose victim is not the task that ran into the limit. memhog holds 36 MiB in
# the 48 MiB cgroup; oom_victim then touches 24 MiB there, and the OOM killer picks the bigger
# memhog. The tracepoint mode has to find the victim's task by PID for its memcg (the other modes
# get it from oom_control or the tracepoint's task argument).
check_oomkill_other() {
	local what="memcg OOM kill of another task (memhog), triggered by oom_victim" modes
	local all="fentry kprobe tp_btf raw_tp tracepoint" holder trigger holder_rc trigger_rc
	require_tool oomkill "$what" $all || return
	select_modes modes oomkill "$all" "$what"
	cg=/sys/fs/cgroup/memscope-oom-other
	echo +memory > /sys/fs/cgroup/cgroup.subtree_control
	mkdir -p $cg
	echo $((48 << 20)) > $cg/memory.max
	[ -f $cg/memory.swap.max ] && echo 0 > $cg/memory.swap.max
	tracers_start oo oomkill "$modes"
	tracers_wait_attached oo "$modes"
	# Holder and trigger share CPU 0. The OOM killer SIGKILLs the holder before mark_victim; on
	# another CPU it would start exiting at once, and do_exit's sync_mm_rss() (6.1 caches a task's
	# RSS changes per task: SPLIT_RSS_COUNTING) can raise its RSS while the tracepoint programs read
	# it (seen: two tracers of one kill read 9498 and 9618 pages). On the trigger's CPU it cannot
	# run before the kernel's "Killed process" line (voluntary preemption, no sleep in between), so
	# the RSS the tracepoints see is that line's.
	taskset -c 0 sh -c "echo \$\$ > $cg/cgroup.procs && exec memhog 36 hold" > "$W/oo_holder.prog" 2>&1 &
	holder=$!
	i=0
	while ! grep -q holding "$W/oo_holder.prog" && [ $i -lt 300 ] && kill -0 $holder 2>/dev/null; do
		sleep 0.1
		i=$((i + 1))
	done
	taskset -c 0 oom_victim $cg/cgroup.procs 24 > "$W/oo_trigger.prog" 2>&1 &
	trigger=$!
	wait $trigger
	trigger_rc=$?
	kill -0 $holder 2>/dev/null && sleep 1
	kill -KILL $holder 2>/dev/null
	wait $holder
	holder_rc=$?
	sleep 1
	tracers_stop oo "$modes"
	kills=$(memcg_oom_kills $cg)
	totalpages=$(oom_totalpages $cg)
	rss=$(oom_killed_rss "$holder")
	log "oomkill: memory.events oom_kill $kills; OOM domain $totalpages pages; memhog's RSS ${rss:-?} pages in the kernel's report"
	for mode in $modes; do
		out=$W/oo_$mode.out
		check_begin oomkill "$mode" "$what"
		expect_count "memhog exit status (SIGKILL by the OOM killer)" "$holder_rc" -eq 137
		# memhog's pages are uncharged when the OOM reaper or its exit gets to them: an oom_victim
		# that charges again before then is the memcg's second victim, and that kill is reported too.
		expect_count "oom_victim exit status (finished, or killed second)" "$((trigger_rc == 0 || trigger_rc == 137))" -eq 1
		expect_count "kills in memory.events (memhog, and oom_victim if it was killed: status $trigger_rc)" "$kills" -eq $((1 + (trigger_rc == 137)))
		if expect_tracer oo "$mode"; then
			expect_count "oom_kill events (memory.events: oom_kill $kills)" "$(json_count "$out" oom_kill)" -eq "$kills"
			if [ "$kills" -eq 2 ]; then
				expect_json_field "$out" oom_kill memcg /memscope-oom-other victim_pid="$trigger"
			fi
			expect_json_field "$out" oom_kill victim_comm memhog victim_pid="$holder"
			expect_json_field "$out" oom_kill triggered_pid "$trigger" victim_pid="$holder"
			expect_json_field "$out" oom_kill triggered_comm oom_victim victim_pid="$holder"
			expect_json_field "$out" oom_kill memcg /memscope-oom-other victim_pid="$holder"
			line=$(json_select "$out" oom_kill victim_pid="$holder" | head -n 1)
			expect_oom_pages "$mode" "$line" "$totalpages" "${rss:-}" "${rss:-}"
		fi
		check_end "$out" "$W/oo_$mode.err" "$W/oo_holder.prog" "$W/oo_trigger.prog"
	done
	rmdir $cg 2>/dev/null
}

# ---------------------------------------------------------------------------------------------
# usdt (uprobes): usdt_target's memscope_test:args probe with its four typed arguments
# (usdt_test.cpp, TracesArgumentsWithTheirDeclaredSizeAndSign). usdt_target waits for a line on
# stdin before it fires, so the tracer of its PID sees every one of its FIRES firings.
check_usdt() {
	local what="usdt_target's memscope_test:args with its 4 typed arguments" pid fires=25 fired
	require_tool usdt "$what" uprobe || return
	prog_start ut usdt_target $fires wait
	prog_wait_output ut ready 30 || log "usdt_target did not start: $(cat "$W/ut.prog")"
	pid=$(prog_pid ut)
	tracer_start ut usdt - memscope_test:args -p "$pid"
	tracer_wait_attached ut 120
	prog_send ut go
	prog_finish ut 60
	tracer_wait_exit ut 30   # -p: it stops when usdt_target exits
	out=$W/ut.out
	check_begin usdt uprobe "$what"
	expect_tracer_ok ut uprobe
	fired=$(awk '/args probe fired/ { print $4 }' "$W/ut.prog")
	expect_count "usdt_target's exit status" "$PROG_RC" -eq 0
	expect_count "firings usdt_target reports (its argument: $fires)" "${fired:-0}" -eq $fires
	n=$(json_count "$out" usdt pid="$pid" provider=memscope_test name=args)
	expect_count "memscope_test:args events of PID $pid (usdt_target fired $fires after the tracer attached)" "$n" -eq $fires
	expect_count "events of other processes or probes" "$(json_count "$out" usdt)" -eq "$n"
	for field in comm=usdt_target path=/memscope/usdt_target arg_count=4 arg0=-42 arg1=4886718345 arg2=-1 arg3=65535; do
		expect_json_field "$out" usdt "${field%%=*}" "${field#*=}" pid="$pid" name=args
	done
	check_end "$out" "$W/ut.err" "$W/ut.prog"
}

for check in ${VM_CHECKS:-mmapsnoop brkstack shmsnoop faults ffaults hfaults memleak_user memleak_kernel oomkill_memcg oomkill_other usdt}; do
	t0=$(cut -d' ' -f1 /proc/uptime)
	"check_$check"
	echo "     ($check: $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }') s)"
done
finish
