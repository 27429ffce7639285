#!/usr/bin/env bash
# kernel-matrix.sh: writes the tool × kernel × attach mode table (docs/kernel-matrix.md) from
#   * `memscope doctor --all-modes --json` of the 6.1 VM (saved by the vm_tools test as
#     VM_OUT_DIR/*/files/doctor-6.1.json),
#   * the same on this host (run here, or --host-doctor FILE),
#   * the VM checks' result lines "ok   - TOOL/MODE: what" / "FAIL - TOOL/MODE: what" in
#     VM_OUT_DIR/TEST/output.log (tests/vm/lib.sh prints them), and their timing.txt.
#
#   tests/vm/kernel-matrix.sh --vm-out BUILD/vm-out --memscope BUILD/memscope --out BUILD/kernel-matrix.md
#
# Options: --host-doctor FILE (instead of running memscope), --vm-doctor FILE (instead of searching
# VM_OUT_DIR), --test NAME (repeatable: read only these tests' directories, e.g. every registered VM
# test, so that output left by a test that no longer exists is ignored; default: every directory).
# Exits 1 when an input is missing (never writes a table from nothing); a failed VM check or a
# listed test without output does not fail this script: the table says so, and the VM test itself
# fails the suite.
set -euo pipefail

vm_out="" memscope="" out="" host_doctor="" vm_doctor="" tests=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --vm-out) vm_out=$2; shift 2 ;;
    --memscope) memscope=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --host-doctor) host_doctor=$2; shift 2 ;;
    --vm-doctor) vm_doctor=$2; shift 2 ;;
    --test) tests+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "kernel-matrix: unknown argument $1" >&2; exit 2 ;;
  esac
done
die() { echo "kernel-matrix: error: $*" >&2; exit 1; }
[[ -n $out && -n $vm_out ]] || die "--out and --vm-out are required"
[[ -d $vm_out ]] || die "no VM output directory $vm_out (run the VM tier first: ctest -L vm)"

work=$(mktemp -d "${TMPDIR:-/tmp}/kernel-matrix.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [[ -z $vm_doctor ]]; then
  vm_doctor=$(ls -1 "$vm_out"/*/files/doctor-6.1.json 2>/dev/null | head -n 1 || true)
fi
[[ -n $vm_doctor && -s $vm_doctor ]] || die "no doctor output of the 6.1 VM (expected $vm_out/vm_tools/files/doctor-6.1.json: did vm_tools run?)"
if [[ -z $host_doctor ]]; then
  [[ -n $memscope && -x $memscope ]] || die "--memscope BIN (or --host-doctor FILE) is required"
  host_doctor=$work/doctor-host.json
  "$memscope" doctor --all-modes --json > "$host_doctor" 2> "$work/doctor-host.err" ||
    die "memscope doctor --all-modes --json failed on this host: $(cat "$work/doctor-host.err")"
  cp "$host_doctor" "$(dirname "$out")/doctor-host.json" 2>/dev/null || true
fi
[[ -s $host_doctor ]] || die "empty host doctor output $host_doctor"
grep -q '"event":"tool_probe_mode"' "$vm_doctor" || die "$vm_doctor has no tool_probe_mode records (doctor without --all-modes?)"
grep -q '"event":"tool_probe_mode"' "$host_doctor" || die "$host_doctor has no tool_probe_mode records"

# The VM tests whose output counts: those named with --test, else every directory in VM_OUT_DIR.
test_dirs=()
if (( ${#tests[@]} > 0 )); then
  for t in "${tests[@]}"; do test_dirs+=("$vm_out/$t"); done
else
  for d in "$vm_out"/*/; do [[ -d $d ]] && test_dirs+=("${d%/}"); done
fi
missing_tests=()

# Results: "TOOL MODE STATUS TEST WHAT" per check line, from every VM test's output.log.
results=$work/results
: > "$results"
logs=0
for dir in "${test_dirs[@]}"; do
  log=$dir/output.log
  test_name=$(basename "$dir")
  if [[ ! -f $log ]]; then
    missing_tests+=("$test_name")
    echo "kernel-matrix: warning: no $log (did $test_name run?)" >&2
    continue
  fi
  logs=$((logs + 1))
  awk -v test="$test_name" '
    /^(ok  |FAIL|skip) - [a-z0-9_]+\/[a-z0-9_-]+: / {
      status = ($1 == "ok") ? "pass" : ($1 == "skip") ? "excluded" : "FAIL"
      rest = $0; sub(/^(ok  |FAIL|skip) - /, "", rest)
      slash = index(rest, "/"); colon = index(rest, ": ")
      tool = substr(rest, 1, slash - 1); mode = substr(rest, slash + 1, colon - slash - 1)
      print tool "\t" mode "\t" status "\t" test "\t" substr(rest, colon + 2)
    }' "$log" >> "$results"
done
(( logs > 0 )) || die "no VM test output in $vm_out/*/output.log"
[[ -s $results ]] || die "no check results (ok/FAIL - TOOL/MODE lines) in $vm_out/*/output.log"

# The awk that reads memscope's flat JSON lines (string values may hold escaped characters).
read -r -d '' JSON_AWK <<'EOF' || true
function json_value(line, key,    k, i, rest, out, c) {
	k = "\"" key "\":"
	i = index(line, k)
	if (!i) return ""
	rest = substr(line, i + length(k))
	if (substr(rest, 1, 1) != "\"") { match(rest, /^[^],}]*/); return substr(rest, 1, RLENGTH) }
	out = ""
	for (i = 2; i <= length(rest); i++) {
		c = substr(rest, i, 1)
		if (c == "\\") { i++; out = out substr(rest, i, 1); continue }
		if (c == "\"") break
		out = out c
	}
	return out
}
EOF

# "TOOL\tEVENT\tMODE\tSTATUS\tHOOK" per tool_probe_mode record.
modes_of() {
  awk "$JSON_AWK"'
    json_value($0, "event") == "tool_probe_mode" {
      print json_value($0, "tool") "\t" json_value($0, "traced_event") "\t" json_value($0, "mode") "\t" \
            json_value($0, "status") "\t" json_value($0, "hook")
    }' "$1"
}
kernel_of() {
  awk "$JSON_AWK"'json_value($0, "event") == "message" && json_value($0, "text") ~ /^Kernel / {
    print substr(json_value($0, "text"), 8); exit }' "$1"
}
modes_of "$vm_doctor" > "$work/vm.tsv"
modes_of "$host_doctor" > "$work/host.tsv"
vm_kernel=$(kernel_of "$vm_doctor")
host_kernel=$(kernel_of "$host_doctor")

# Timings of the VM tests (timing.txt: boot_to_script_s, script_s, total_wall_s).
timings=$work/timings
: > "$timings"
for dir in "${test_dirs[@]}"; do
  t=$dir/timing.txt
  [[ -f $t ]] || continue
  awk -v name="$(basename "$dir")" '{ v[$1] = $2 } END { printf "%s\t%s\t%s\t%s\n", name, v["boot_to_script_s"], v["script_s"], v["total_wall_s"] }' "$t" >> "$timings"
done

awk -F'\t' -v vm_kernel="${vm_kernel:-6.1 (VM)}" -v host_kernel="${host_kernel:-host}" \
    -v generated="$(date -u '+%Y-%m-%d %H:%M UTC')" -v timings="$timings" \
    -v missing="${missing_tests[*]:-}" '
  function md(s) { gsub(/\|/, "\\|", s); return s }
  function short(status, hook) { return status == "works" ? "works" : "no" }
  FILENAME == ARGV[1] { vm[$1 SUBSEP $2 SUBSEP $3] = $4; vmhook[$1 SUBSEP $2 SUBSEP $3] = $5
                        add_row($1, $2, $3); next }
  FILENAME == ARGV[2] { host[$1 SUBSEP $2 SUBSEP $3] = $4; hosthook[$1 SUBSEP $2 SUBSEP $3] = $5
                        add_row($1, $2, $3); next }
  FILENAME == ARGV[3] {
    key = $1 SUBSEP $2
    # One tool/mode may have several checks (oomkill: memcg OOM and global OOM).
    n[key, $3]++
    tested[key] = n[key, "FAIL"] ? "FAIL" : n[key, "pass"] && n[key, "excluded"] ? "mixed" : n[key, "pass"] ? "pass" : "excluded"
    if (!(key in tool_mode_seen)) { tool_mode_seen[key] = 1; tm_order[++ntm] = key }
    next
  }
  function add_row(tool, ev, mode,   k) {
    k = tool SUBSEP ev SUBSEP mode
    if (k in row_seen) return
    row_seen[k] = 1; rows[++nrows] = k
    if (!(tool in tool_seen)) { tool_seen[tool] = 1; tools[++ntools] = tool }
    tm = tool SUBSEP mode
    if (!(tm in doctor_tm)) doctor_tm[tm] = 1
  }
  function cell_vm(tool, mode,   k, works, total, r, parts, status) {
    # Over every event of the tool: works everywhere / partly / nowhere on the 6.1 VM.
    works = 0; total = 0
    for (r = 1; r <= nrows; r++) {
      split(rows[r], parts, SUBSEP)
      if (parts[1] != tool || parts[3] != mode) continue
      total++; if (vm[rows[r]] == "works") works++
    }
    k = tool SUBSEP mode
    # A passing check of a mode doctor calls unavailable asserts the refusal (llcstat without a PMU).
    if (k in tested && tested[k] == "pass" && total > 0 && works == 0) status = "not available (its refusal **tested, passes**)"
    else if (k in tested) status = tested_text(k)
    else if (total == 0) return "—"
    else if (works == total) status = "works (not exercised)"
    else if (works > 0) status = "partly (" works "/" total " events)"
    else status = "not available"
    return status
  }
  function tested_text(k) {
    if (tested[k] == "pass") return "**tested, passes**"
    if (tested[k] == "FAIL") return "**tested, FAILS**"
    if (tested[k] == "mixed") return "**tested, passes** " n[k, "pass"] " check(s); " n[k, "excluded"] " known failure(s) excluded"
    return "**known failure** (excluded)"
  }
  function cell_host(tool, mode,   works, total, r, parts) {
    works = 0; total = 0
    for (r = 1; r <= nrows; r++) {
      split(rows[r], parts, SUBSEP)
      if (parts[1] != tool || parts[3] != mode) continue
      if (!(rows[r] in host)) continue
      total++; if (host[rows[r]] == "works") works++
    }
    if (total == 0) return "—"
    if (works == total) return "works"
    if (works > 0) return "partly (" works "/" total " events)"
    return "not available"
  }
  END {
    nm = split("fentry kprobe tp_btf raw_tp tracepoint perf_event uprobe", modes, " ")
    # Tools that only show up in the VM results (e.g. memleak user mode: uprobes, not in doctor
    # because doctor asks each tool with its default options).
    for (i = 1; i <= ntm; i++) { split(tm_order[i], p, SUBSEP); if (!(p[1] in tool_seen) && p[1] != "doctor") { tool_seen[p[1]] = 1; tools[++ntools] = p[1] } }
    print "# Kernel matrix: every tool × kernel × attach mode"
    print ""
    print "Generated by `tests/vm/kernel-matrix.sh` (CTest `vm_kernel_matrix`, label vm) on " generated " from"
    print "`memscope doctor --all-modes --json` on both kernels and the VM tier'"'"'s checks. Do not edit: the"
    print "suite regenerates it as `build/kernel-matrix.md`; this copy is from a real run on the project'"'"'s"
    print "machines. How the VM tier works: [vm-tier.md](vm-tier.md)."
    print ""
    print "- **6.1 VM**: `" vm_kernel "`, Debian 12'"'"'s distro kernel under qemu TCG (kprobes and fentry available)."
    print "- **host**: `" host_kernel "` (no kprobes, fentry refused: tracepoints, tp_btf, raw_tp, uprobes)."
    print "- **tested, passes**: the VM ran the host integration test'"'"'s assertions with that mode forced"
    print "  (`--probe MODE`, and memscope said it used it) and they held. **works (not exercised)**: doctor"
    print "  resolves every event of the tool in that mode, but no VM check forces it. **partly**: some"
    print "  events (optional ones) resolve. **not available**: see the reasons below. **—**: the tool has no"
    print "  hook of that kind."
    print ""
    print "## Summary"
    print ""
    hdr = "| tool | kernel |"; sep = "|---|---|"
    for (m = 1; m <= nm; m++) { hdr = hdr " " modes[m] " |"; sep = sep "---|" }
    print hdr; print sep
    for (t = 1; t <= ntools; t++) {
      line = "| " tools[t] " | 6.1 VM |"
      for (m = 1; m <= nm; m++) line = line " " cell_vm(tools[t], modes[m]) " |"
      print line
      line = "| | host |"
      for (m = 1; m <= nm; m++) line = line " " cell_host(tools[t], modes[m]) " |"
      print line
    }
    print ""
    print "## Per event: the hook each mode resolves to, or why it cannot"
    print ""
    print "6.1 VM and host: what doctor resolves. VM check: the tool'"'"'s check in that mode (one check per"
    print "tool and mode, not per event: what it asserts is in the next table; e.g. vmscan'"'"'s check covers"
    print "direct reclaim, kswapd wake-ups, pageout writes and slab shrinks, not memcg reclaim)."
    print ""
    print "| tool | event | mode | 6.1 VM | VM check | host |"
    print "|---|---|---|---|---|---|"
    for (r = 1; r <= nrows; r++) {
      split(rows[r], p, SUBSEP)
      k = p[1] SUBSEP p[3]
      vmc = (rows[r] in vm) ? (vm[rows[r]] == "works" ? "works: " : "not available: ") vmhook[rows[r]] : "(not listed)"
      hc = (rows[r] in host) ? (host[rows[r]] == "works" ? "works: " : "not available: ") hosthook[rows[r]] : "(not listed)"
      chk = (k in tested) ? (tested[k] == "pass" ? "pass" : tested[k] == "excluded" ? "known failure" : tested[k] == "mixed" ? "pass (" n[k, "excluded"] " check excluded)" : "**FAIL**") : "—"
      printf "| %s | %s | %s | %s | %s | %s |\n", p[1], md(p[2]), p[3], md(vmc), chk, md(hc)
    }
    print ""
    print "## VM checks"
    print ""
    print "Each line is one `ok/FAIL - TOOL/MODE` check of the VM tier (`tests/vm/*.sh`)."
    print ""
    print "| tool | mode | result | VM test | what is asserted |"
    print "|---|---|---|---|---|"
    while ((getline line < ARGV[3]) > 0) {
      split(line, f, "\t")
      printf "| %s | %s | %s | %s | %s |\n", f[1], f[2], f[3] == "pass" ? "pass" : f[3] == "excluded" ? "known failure, excluded" : "**FAIL**", f[4], md(f[5])
    }
    print ""
    print "## VM tier timing (this run)"
    print ""
    print "The VM tests run one after the other (each boot takes both cores); the tier'"'"'s wall time is"
    print "their sum. On these shared 2-core machines it varies 2-3x with the load."
    print ""
    print "| VM test | boot until the script started (s, guest) | script (s, guest) | total wall (s) |"
    print "|---|---|---|---|"
    total = 0
    while ((getline line < timings) > 0) {
      split(line, f, "\t"); total += f[4]
      printf "| %s | %s | %s | %s |\n", f[1], f[2], f[3], f[4]
    }
    printf "| **all VM tests** | | | **%.1f** (%d min %02d s) |\n", total, int(total / 60), int(total) % 60
    if (missing != "") { print ""; print "No output (the test did not run or its VM failed): " missing "." }
  }
' "$work/vm.tsv" "$work/host.tsv" "$results" > "$out.tmp"
mv -f "$out.tmp" "$out"

passes=$(awk -F'\t' '$3 == "pass"' "$results" | wc -l)
fails=$(awk -F'\t' '$3 == "FAIL"' "$results" | wc -l)
excluded=$(awk -F'\t' '$3 == "excluded"' "$results" | wc -l)
echo "kernel-matrix: wrote $out ($(wc -l < "$work/vm.tsv") VM and $(wc -l < "$work/host.tsv") host doctor records; VM checks: $passes passed, $fails failed, $excluded excluded as known failures)"
