# lib.sh: helpers for the VM check scripts (busybox sh; sourced as /vm/lib.sh, which
# memscope_vm_test() puts into every VM). No jq in the VM: JSON lines are matched with awk.
#
# A check is one assertion group for one tool in one attach mode:
#
#   check_begin TOOL MODE "what is checked"
#   ... expect_* calls; each failed expectation is recorded with check_error ...
#   check_end [FILE ...]        # prints "ok   - TOOL/MODE: what" or "FAIL - TOOL/MODE: what",
#                               # the errors, and on failure the FILEs (tracer output, stderr)
#
# Those "ok/FAIL/skip - TOOL/MODE:" lines are what tests/vm/kernel-matrix.sh reads from output.log
# to say which modes were exercised and passed. finish exits non-zero if any check failed.
# require_tool fails every mode of a tool missing from `memscope --help`; select_modes drops the
# known failures listed in VM_EXCLUDE (set where the test is registered) with a "skip" line.
#
# Tracers run in the background, forced into one mode, with -v so stderr names the hook used:
#
#   tracer_start NAME TOOL MODE [ARGS...]   # memscope TOOL --json -v --probe MODE ARGS
#   tracer_wait_attached NAME [SECONDS]     # until "Hit Ctrl-C to end." (fails if it exited)
#   tracer_stop NAME [SECONDS]              # SIGTERM, wait; TRACER_RC holds its exit status
#   $W/NAME.out, $W/NAME.err                # its stdout (JSON lines) and stderr
#   tracers_start PREFIX TOOL "MODES" ...   # one tracer per mode, PREFIX_MODE; tracers_wait_attached,
#                                           # tracers_stop, tracers_wait_exit; expect_tracer PREFIX MODE
#
# Programs that wait for stdin lines: prog_start NAME PROG ARGS, prog_wait_output, prog_send,
# prog_finish (a fifo held open by a sleeping writer).
#
# JSON: json_select FILE EVENT [KEY=VALUE ...] prints the lines whose "event" is EVENT and whose
# top-level KEYs have those values (strings compared without quotes); json_value LINE KEY prints
# one value. Good enough for memscope's flat records; nested stack reports are split first with
# json_split_stacks.

W=${W:-/tmp/vmcheck}
mkdir -p "$W"
FAILURES=0
CHECKS=0
CHECK_TOOL="" CHECK_MODE="" CHECK_WHAT="" CHECK_ERRORS=""
TRACER_RC=""

log() { echo "     $*"; }

check_begin() {
	CHECK_TOOL=$1 CHECK_MODE=$2 CHECK_WHAT=$3 CHECK_ERRORS=""
}

check_error() {
	CHECK_ERRORS="${CHECK_ERRORS}     error: $*
"
}

# Shows the first lines of each file (tracer output) to explain a failure.
show_file() {
	[ -f "$1" ] || { echo "     ($1: no such file)"; return; }
	echo "     ----- $1 ($(wc -l < "$1") lines, first 40, long lines cut) -----"
	head -n 40 "$1" | cut -c1-400 | sed 's/^/     | /'
}

check_end() {
	CHECKS=$((CHECKS + 1))
	if [ -z "$CHECK_ERRORS" ]; then
		echo "ok   - $CHECK_TOOL/$CHECK_MODE: $CHECK_WHAT"
		return 0
	fi
	echo "FAIL - $CHECK_TOOL/$CHECK_MODE: $CHECK_WHAT"
	printf '%s' "$CHECK_ERRORS"
	local f
	for f in "$@"; do show_file "$f"; done
	FAILURES=$((FAILURES + 1))
	return 1
}

# One-line check without a body: a tool missing from the binary fails every mode it should run in.
check_fail_now() {  # TOOL MODE WHAT REASON
	check_begin "$1" "$2" "$3"
	check_error "$4"
	check_end
}

finish() {
	echo "$CHECKS check(s), $FAILURES failure(s)"
	[ "$FAILURES" -eq 0 ]
}

# ---------------------------------------------------------------------------------------------
# memscope and its tools

# Whether `memscope --help` lists TOOL (the registry is the binary's, not the source tree's).
tool_registered() {
	[ -n "${REGISTERED_TOOLS:-}" ] || REGISTERED_TOOLS=$(memscope --help 2>&1 | awk '{ print $1 }' | tr '\n' ' ')
	case " $REGISTERED_TOOLS " in *" $1 "*) return 0 ;; esac
	return 1
}

# require_tool TOOL WHAT MODE...: true if TOOL is registered; otherwise one FAIL per mode.
require_tool() {
	local tool=$1 what=$2 mode
	shift 2
	tool_registered "$tool" && return 0
	for mode in "$@"; do
		check_fail_now "$tool" "$mode" "$what" "'$tool' is not registered in this memscope (memscope --help)"
	done
	return 1
}

# Known failures are listed where a VM test is registered (vm.cmake: ENV VM_EXCLUDE=TOOL/MODE ...,
# each with its reason in a comment). select_modes drops them from the modes to run and prints
# "skip - TOOL/MODE: WHAT (excluded ...)" for each, so the log and the kernel matrix show them.
select_modes() {  # VAR TOOL "MODES" WHAT
	local var=$1 tool=$2 mode keep=""
	for mode in $3; do
		case " ${VM_EXCLUDE:-} " in
		*" $tool/$mode "*) echo "skip - $tool/$mode: $4 (excluded: known failure, VM_EXCLUDE)" ;;
		*) keep="$keep $mode" ;;
		esac
	done
	eval "$var=\"\${keep# }\""
}

tracer_start() {  # NAME TOOL MODE [ARGS...]; MODE "-" = the tool's own choice
	local name=$1 tool=$2 mode=$3
	shift 3
	if [ "$mode" = - ]; then
		memscope "$tool" --json -v "$@" > "$W/$name.out" 2> "$W/$name.err" &
	else
		memscope "$tool" --json -v --probe "$mode" "$@" > "$W/$name.out" 2> "$W/$name.err" &
	fi
	eval "TRACER_PID_$name=$!"
}

tracer_pid() { eval "echo \${TRACER_PID_$1:-}"; }

# Waits for the tracer's "Tracing ... Hit Ctrl-C to end." (printed once everything is attached).
tracer_wait_attached() {  # NAME [SECONDS]
	local pid limit i=0
	pid=$(tracer_pid "$1")
	limit=$(( ${2:-120} * 10 ))
	while [ $i -lt $limit ]; do
		grep -q 'Hit Ctrl-C to end' "$W/$1.err" 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# Stops the tracer like Ctrl-C does (its final report comes after it) and waits for it. SIGTERM,
# not SIGINT: a non-interactive shell starts background commands with SIGINT ignored, and an
# ignored signal never reaches memscope's signalfd.
tracer_stop() {  # NAME [SECONDS]
	local pid
	pid=$(tracer_pid "$1")
	kill -TERM "$pid" 2>/dev/null
	tracer_wait_exit "$1" "${2:-60}"
}

# Waits for a tracer that stops by itself (-d, -p PID exiting); kills it after SECONDS.
tracer_wait_exit() {  # NAME [SECONDS]
	local pid limit i=0
	pid=$(tracer_pid "$1")
	limit=$(( ${2:-60} * 10 ))
	while kill -0 "$pid" 2>/dev/null && [ $i -lt $limit ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
		echo "memscope did not exit within ${2:-60} s: killed" >> "$W/$1.err"
	fi
	wait "$pid"
	TRACER_RC=$?
	return 0
}

# Several tracers of one tool at once, one per mode, named PREFIX_MODE: one run of a test program
# then serves every mode.
tracers_start() {  # PREFIX TOOL "MODES" [ARGS...]
	local prefix=$1 tool=$2 modes=$3 mode
	shift 3
	for mode in $modes; do tracer_start "${prefix}_$mode" "$tool" "$mode" "$@"; done
}

# Waits until each has attached; ATTACHED_PREFIX_MODE=1 for those that did (the others exited or
# hung: their check fails with their stderr).
tracers_wait_attached() {  # PREFIX "MODES" [SECONDS]
	local mode
	for mode in $2; do
		if tracer_wait_attached "${1}_$mode" "${3:-180}"; then eval "ATTACHED_${1}_$mode=1"
		else eval "ATTACHED_${1}_$mode=0"; fi
	done
}

tracers_stop() {  # PREFIX "MODES": SIGTERM to all first (their final reports run in parallel)
	local mode
	for mode in $2; do kill -TERM "$(tracer_pid "${1}_$mode")" 2>/dev/null; done
	for mode in $2; do tracer_wait_exit "${1}_$mode" 60; eval "RC_${1}_$mode=$TRACER_RC"; done
}

tracers_wait_exit() {  # PREFIX "MODES" [SECONDS]: tracers that stop by themselves (-p, -d)
	local mode
	for mode in $2; do tracer_wait_exit "${1}_$mode" "${3:-60}"; eval "RC_${1}_$mode=$TRACER_RC"; done
}

# Inside a check: the tracer PREFIX_MODE attached, exited 0 and used MODE.
expect_tracer() {  # PREFIX MODE
	local attached rc
	eval "attached=\${ATTACHED_${1}_$2:-0} rc=\${RC_${1}_$2:-none}"
	if [ "$attached" != 1 ]; then
		check_error "memscope did not attach: $(grep -v '^libbpf' "$W/${1}_$2.err" | tail -n 3 | tr '\n' ' ')"
		return 1
	fi
	TRACER_RC=$rc
	expect_tracer_ok "${1}_$2" "$2"
}

# Keeps the OOM killer away from a tracer (global OOM tests).
tracer_protect() { echo -1000 > "/proc/$(tracer_pid "$1")/oom_score_adj" 2>/dev/null; }

# Standard expectations about a tracer run, inside a check: it attached in MODE (stderr says
# "EVENT: using MODE ..." for every event) and exited 0.
expect_tracer_ok() {  # NAME MODE
	if [ "$TRACER_RC" != 0 ]; then
		check_error "memscope exited with status $TRACER_RC: $(grep -v '^libbpf' "$W/$1.err" | tail -n 3 | tr '\n' ' ')"
	fi
	expect_mode_used "$1" "$2"
}

expect_mode_used() {  # NAME MODE
	[ "$2" = - ] && return 0
	if ! grep -q ": using $2\( \|$\)" "$W/$1.err"; then
		check_error "stderr does not say 'using $2': $(grep ': using \|: unavailable' "$W/$1.err" | head -n 3 | tr '\n' ' ')"
	fi
}

# ---------------------------------------------------------------------------------------------
# JSON lines

# awk function text shared by the helpers: the value of top-level KEY in a flat JSON line.
JSON_AWK_VALUE='
function json_value(line, key,    k, i, rest, j) {
	k = "\"" key "\":"
	i = index(line, k)
	if (!i) return "\001missing"
	rest = substr(line, i + length(k))
	if (substr(rest, 1, 1) == "\"") {
		rest = substr(rest, 2)
		j = index(rest, "\"")
		return substr(rest, 1, j - 1)
	}
	match(rest, /^[^],}]*/)
	return substr(rest, 1, RLENGTH)
}'

json_value() {  # LINE KEY
	printf '%s\n' "$1" | awk -v key="$2" "$JSON_AWK_VALUE"'
		{ v = json_value($0, key); if (v == "\001missing") exit 1; print v; exit 0 }'
}

json_select() {  # FILE EVENT [KEY=VALUE ...]
	local file=$1 event=$2 conds="" cond
	shift 2
	for cond in "$@"; do conds="$conds$cond$(printf '\037')"; done
	awk -v event="$event" -v conds="$conds" "$JSON_AWK_VALUE"'
		BEGIN { n = split(conds, c, "\037") }
		json_value($0, "event") == event {
			for (i = 1; i <= n; i++) {
				if (c[i] == "") continue
				eq = index(c[i], "=")
				if (json_value($0, substr(c[i], 1, eq - 1)) != substr(c[i], eq + 1)) next
			}
			print
		}' "$file"
}

json_count() { json_select "$@" | wc -l; }

# Splits each stack report ({"event":"X",...,"stacks":[{"pid":...},{"pid":...}]}) into one line
# per entry, each prefixed with {"event":"X_entry", so json_select can match entries. The frames
# stay in the entry's line (as "function":"name" pairs); frames are the last key of an entry.
json_split_stacks() {  # FILE EVENT
	json_select "$1" "$2" | awk -v ev="$2" '{
		line = $0
		i = index(line, "\"stacks\":[")
		if (!i) next
		line = substr(line, i + 10)
		sep = "{\"pid\":"
		while ((i = index(line, sep)) > 0) {
			line = substr(line, i + length(sep))
			j = index(line, sep)
			print "{\"event\":\"" ev "_entry\",\"pid\":" (j ? substr(line, 1, j - 1) : line)
		}
	}'
}

# Sums KEY over the lines json_select finds.
json_sum() {  # FILE EVENT KEY [KEY=VALUE ...]
	local file=$1 event=$2 key=$3
	shift 3
	json_select "$file" "$event" "$@" | awk -v key="$key" "$JSON_AWK_VALUE"'
		{ v = json_value($0, key); if (v != "\001missing") s += v } END { printf "%.0f\n", s }'
}

# The brief's assertion: some EVENT line (optionally narrowed by KEY=VALUE selectors) has KEY=VALUE.
expect_json_field() {  # FILE EVENT KEY VALUE [SELECTOR=VALUE ...]
	local file=$1 event=$2 key=$3 want=$4 got
	shift 4
	if [ "$(json_count "$file" "$event" "$@" "$key=$want")" -eq 0 ]; then
		got=$(json_select "$file" "$event" "$@" | awk -v key="$key" "$JSON_AWK_VALUE"'{ print json_value($0, key) }' | head -n 5 | tr '\n' ' ')
		check_error "no '$event' record${*:+ with $*} has $key=$want (got: ${got:-no such record})"
		return 1
	fi
}

expect_count() {  # DESCRIPTION GOT OP WANT   (OP: -eq -ge -le -gt)
	if ! test "$2" "$3" "$4" 2>/dev/null; then
		check_error "$1: got $2, want $3 $4"
		return 1
	fi
}

expect_between() {  # DESCRIPTION GOT LOW HIGH
	if ! [ "$2" -ge "$3" ] 2>/dev/null || ! [ "$2" -le "$4" ] 2>/dev/null; then
		check_error "$1: got $2, want $3..$4"
		return 1
	fi
}

expect_grep() {  # DESCRIPTION FILE PATTERN (fixed string)
	if ! grep -qF -- "$3" "$2"; then
		check_error "$1: '$3' not in $(basename "$2")"
		return 1
	fi
}

# ---------------------------------------------------------------------------------------------
# Programs that wait for a line on stdin (fault_touch, mmap_file): a fifo feeds them, held open
# for writing by a sleeping process so that each prog_send is one line and not an end of file.

prog_start() {  # NAME PROGRAM [ARGS...]: stdin from the fifo $W/NAME.in, output to $W/NAME.prog
	local name=$1
	shift
	rm -f "$W/$name.in"
	mkfifo "$W/$name.in"
	"$@" < "$W/$name.in" > "$W/$name.prog" 2>&1 &
	eval "PROG_PID_$name=$!"
	sleep 100000 > "$W/$name.in" &
	eval "PROG_HOLDER_$name=$!"
}

prog_pid() { eval "echo \${PROG_PID_$1:-}"; }
prog_send() { echo "$2" > "$W/$1.in"; }

prog_wait_output() {  # NAME TEXT [SECONDS]
	local limit=$(( ${3:-60} * 10 )) i=0
	while [ $i -lt $limit ]; do
		grep -qF -- "$2" "$W/$1.prog" 2>/dev/null && return 0
		kill -0 "$(prog_pid "$1")" 2>/dev/null || { grep -qF -- "$2" "$W/$1.prog"; return; }
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

prog_finish() {  # NAME [SECONDS]: ends its stdin and waits; PROG_RC holds its exit status
	local holder pid limit i=0
	eval "holder=\${PROG_HOLDER_$1:-}"
	[ -n "$holder" ] && kill "$holder" 2>/dev/null
	pid=$(prog_pid "$1")
	limit=$(( ${2:-60} * 10 ))
	while kill -0 "$pid" 2>/dev/null && [ $i -lt $limit ]; do sleep 0.1; i=$((i + 1)); done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
	wait "$pid"
	PROG_RC=$?
	[ -n "$holder" ] && wait "$holder" 2>/dev/null
	return 0
}

meminfo_mb() { awk -v k="$1:" '$1 == k { printf "%d\n", $2 / 1024 }' /proc/meminfo; }
vmstat_value() { awk -v k="$1" '$1 == k { print $2 }' /proc/vmstat; }
# A node counter of /proc/vmstat (nr_*) exactly: the kernel folds each CPU's pending diff into it
# first (otherwise it lags by up to the per-CPU threshold). Event counters (pswpin, allocstall_*,
# compact_stall, pgmigrate_*) are summed over the CPUs on every read and are always exact.
vmstat_exact() { echo 1 > /proc/sys/vm/stat_refresh; vmstat_value "$1"; }

# ftrace as an oracle: the kernel's own trace buffer counts a tracepoint's firings per process,
# where /proc/vmstat has no counter for it (kswapd wake-ups) or cannot say whose it was (direct
# reclaims of one process). A tracer never counts its own process (memscope_current_wanted), so
# the expectation for one tracer is "every firing outside that tracer's process".
#   ftrace_start EVENT...        e.g. vmscan/mm_vmscan_wakeup_kswapd; clears the buffer
#   ftrace_stop                  stops, copies the buffer to $W/ftrace.txt, disables all events
#   ftrace_count EVENT [TGID]    firings of EVENT (its name without the system), of process TGID
#   ftrace_lost                  prints entries written but not in the buffer (must be 0)
FTRACE=/sys/kernel/tracing
ftrace_start() { ftrace_start_in $FTRACE "$@"; }
ftrace_stop() { ftrace_stop_in $FTRACE "$W/ftrace.txt"; }
ftrace_start_in() {  # DIR (tracefs or one of its instances) EVENT...
	local dir=$1
	shift
	echo 0 > $dir/tracing_on
	echo nop > $dir/current_tracer
	echo 1 > $dir/options/record-tgid
	echo 4096 > $dir/buffer_size_kb
	echo > $dir/trace
	for event in "$@"; do echo 1 > "$dir/events/$event/enable" || log "ftrace ($dir): cannot enable $event"; done
	echo 1 > $dir/tracing_on
}
ftrace_stop_in() {  # DIR FILE
	echo 0 > $1/tracing_on
	cat $1/trace > "$2"
	echo 0 > $1/events/enable
}
ftrace_count() { ftrace_count_in "$W/ftrace.txt" "$@"; }
ftrace_count_in() {  # FILE EVENT [TGID]; lines look like "  memhog-187  (    187) [001] d..1.  12.3: EVENT: ..."
	awk -v event=" $2: " -v tgid="${3:-}" '
		index($0, event) && !/^#/ {
			if (tgid == "") { n++; next }
			if (match($0, /\( *[0-9]+\) \[/) && substr($0, RSTART + 1, RLENGTH - 4) + 0 == tgid) n++
		} END { print n + 0 }' "$1"
}
ftrace_lost() { ftrace_lost_in "$W/ftrace.txt"; }
ftrace_lost_in() {  # FILE
	awk '/entries-in-buffer\/entries-written:/ { split($3, a, "/"); print a[2] - a[1]; found = 1 }
		END { if (!found) print "unknown" }' "$1"
}

# A second, outer window in its own trace buffer (a tracefs instance), opened before the tracers
# start and closed after they stopped: it holds every firing a tracer can have counted, so it bounds
# from above what the tracers report over their whole lives (counts that also include what
# happened before or after the inner window, e.g. per-interval totals and histograms), where the
# inner window (ftrace_start/ftrace_stop) bounds them from below.
#   ftrace_outer_start EVENT...  ftrace_outer_stop (-> $W/ftrace-outer.txt)
#   ftrace_outer_count EVENT [TGID]  ftrace_outer_lost
FTRACE_OUTER=$FTRACE/instances/memscope-outer
ftrace_outer_start() {
	mkdir -p $FTRACE_OUTER || log "ftrace: cannot create the instance $FTRACE_OUTER"
	ftrace_start_in $FTRACE_OUTER "$@"
}
ftrace_outer_stop() { ftrace_stop_in $FTRACE_OUTER "$W/ftrace-outer.txt"; }
ftrace_outer_count() { ftrace_count_in "$W/ftrace-outer.txt" "$@"; }
ftrace_outer_lost() { ftrace_lost_in "$W/ftrace-outer.txt"; }
# expect_within_windows WHAT VALUE EVENT TRACER_PID: VALUE, a count over a tracer's whole life, lies
# between EVENT's firings in the inner and in the outer window, the tracer's own firings left out.
expect_within_windows() {
	local inner=$(( $(ftrace_count "$3") - $(ftrace_count "$3" "$4") ))
	local outer=$(( $(ftrace_outer_count "$3") - $(ftrace_outer_count "$3" "$4") ))
	expect_count "outer ftrace entries lost" "$(ftrace_outer_lost)" -eq 0
	expect_between "$1 (ftrace's $(ftrace_count "$3") $3 in the shell's window .. $(ftrace_outer_count "$3") around the tracers, less the tracer's own)" \
		"$2" "$inner" "$outer"
}

# OOM kills as the kernel counts and reports them (oomkill's oracles).
#   memcg_oom_kills CGDIR       oom_kill in CGDIR/memory.events (kills in that cgroup and below)
#   oom_totalpages [CGDIR]      oom_control->totalpages, the size of the OOM domain in pages: for a
#                               memcg mem_cgroup_get_max() = memory.max + min(memory.swap.max,
#                               swap); for the whole machine RAM + swap (constrained_alloc(), no
#                               cpuset or mempolicy here)
#   oom_killed_rss PID          the victim's RSS in pages (anon + file + shmem) from the kernel's
#                               "Killed process PID (...) ... anon-rss:..kB, file-rss:..kB,
#                               shmem-rss:..kB" line, read from the same counters right after
#                               mark_victim; empty if dmesg has no such line
#   oom_killed_by PID           the PID that invoked the OOM killer for the kill of PID (the
#                               "CPU: N PID: P Comm: ..." line of the report's dump_stack)
memcg_oom_kills() { awk '$1 == "oom_kill" { print $2 }' "$1/memory.events"; }
oom_totalpages() {
	local swap_pages swap_max
	swap_pages=$(awk '$1 == "SwapTotal:" { print int($2 / 4) }' /proc/meminfo)
	if [ -z "${1:-}" ]; then
		awk -v swap="$swap_pages" '$1 == "MemTotal:" { print int($2 / 4) + swap }' /proc/meminfo
		return
	fi
	swap_max=$(cat "$1/memory.swap.max" 2>/dev/null || echo max)
	[ "$swap_max" = max ] || [ $((swap_max / 4096)) -ge "$swap_pages" ] || swap_pages=$((swap_max / 4096))
	[ "$(cat /proc/sys/vm/swappiness)" -eq 0 ] && swap_pages=0
	echo $(( $(cat "$1/memory.max") / 4096 + swap_pages ))
}
oom_killed_rss() {  # PID
	dmesg | awk -v pid="$1" '
		index($0, "Killed process " pid " (") {
			n = 0
			for (i = 1; i <= NF; i++)
				if ($i ~ /^(anon|file|shmem)-rss:[0-9]+kB,?$/) { v = $i; sub(/^[a-z]+-rss:/, "", v); n += v + 0 }
			rss = n / 4
		} END { if (rss != "") print rss }'
}
oom_killed_by() {  # PID
	dmesg | awk -v pid="$1" '
		/ invoked oom-killer: / { want = 1; next }
		want && match($0, /CPU: [0-9]+ PID: [0-9]+ /) { split(substr($0, RSTART, RLENGTH), f, " "); by = f[4]; want = 0 }
		index($0, "Killed process " pid " (") { print by; exit }'
}

# Inside a check, oomkill's pages: oom_control->totalpages with fentry/kprobe (the OOM domain's
# size), the victim's RSS at mark_victim with the tracepoints, which the kernel's "Killed process"
# line reads from the same counters moments later: exact when nothing ran in the victim between the
# two (it was the task in the OOM killer: RSS_LOW = RSS_HIGH); otherwise within [RSS_LOW, RSS_HIGH].
expect_oom_pages() {  # MODE LINE TOTALPAGES RSS_LOW RSS_HIGH
	local pages source
	pages=$(json_value "$2" pages 2>/dev/null)
	source=$(json_value "$2" pages_source 2>/dev/null)
	case $1 in
	fentry | kprobe)
		expect_count "pages_source '$source' is totalpages" "$([ "$source" = totalpages ] && echo 1 || echo 0)" -eq 1
		expect_count "pages (the OOM domain's size)" "${pages:-0}" -eq "$3" ;;
	*)
		expect_count "pages_source '$source' is victim_rss" "$([ "$source" = victim_rss ] && echo 1 || echo 0)" -eq 1
		if [ -z "$4" ] || [ -z "$5" ]; then check_error "no 'Killed process' line with the victim's RSS in dmesg"; return; fi
		if [ "$4" = "$5" ]; then
			expect_count "pages (the victim's RSS in the kernel's report)" "${pages:-0}" -eq "$4"
		else
			expect_between "pages (the victim's RSS: the kernel's report .. before the OOM)" "${pages:-0}" "$4" "$5"
		fi ;;
	esac
}

# For each stack entry line on stdin, its frames' function names, innermost first, space-separated.
frame_functions() {
	awk '{
		out = ""; line = $0; k = "\"function\":\""
		while ((i = index(line, k)) > 0) {
			line = substr(line, i + length(k)); j = index(line, "\"")
			out = out (out == "" ? "" : " ") substr(line, 1, j - 1)
			line = substr(line, j + 1)
		}
		print out
	}'
}

# The entry lines (from json_split_stacks) whose innermost frame is FUNCTION.
entries_by_top() {  # FILE FUNCTION
	awk -v want="$2" '{
		k = "\"function\":\""; i = index($0, k)
		if (!i) next
		rest = substr($0, i + length(k)); j = index(rest, "\"")
		if (substr(rest, 1, j - 1) == want) print
	}' "$1"
}

# The last line of FILE whose event is EVENT (e.g. the final report).
json_last() { json_select "$1" "$2" | tail -n 1; }

# Sum of a histogram's bucket counts ({"event":"histogram","name":NAME,...,"buckets":[...]}).
histogram_total() {  # FILE NAME
	json_select "$1" histogram "name=$2" | awk '{
		line = $0; k = "\"count\":"
		while ((i = index(line, k)) > 0) { line = substr(line, i + length(k)); s += line + 0 }
	} END { printf "%.0f\n", s }'
}

hex_to_dec() { local v=${1#0x}; echo $((0x$v)); }
