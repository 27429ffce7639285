# kprobe-stress.sh: reproduces the guest kernel's kprobe-site fault (docs/vm-tier.md) without
# memscope and without BPF. A tracefs kprobe on $KPROBE_FUNC (default handle_mm_fault, an ftrace
# site) is created, enabled, disabled and deleted $ROUNDS times (default 300) while a shell loop
# forks and faults. Run by hand, not by ctest (it is meant to crash the guest):
#
#   tests/vm/vm-run --binary-dir build/vm-bin --out /tmp/kprobe-stress -- tests/vm/kprobe-stress.sh
#
# Exit 0 and "survived" when no fault came; a fault panics the guest (vm-run reports it).
set -u
func=${KPROBE_FUNC:-handle_mm_fault}
rounds=${ROUNDS:-300}
T=/sys/kernel/tracing
[ -e $T/kprobe_events ] || mount -t tracefs nodev $T || exit 1
( while :; do sh -c 'x=$(seq 1 200); true'; done ) > /dev/null 2>&1 &
churn=$!
r=1
while [ $r -le "$rounds" ]; do
	echo "p:stress_probe $func" >> $T/kprobe_events || { echo "cannot create a kprobe on $func"; kill $churn; exit 1; }
	echo 1 > $T/events/kprobes/stress_probe/enable
	sleep 0.2
	echo 0 > $T/events/kprobes/stress_probe/enable
	echo "-:stress_probe" >> $T/kprobe_events
	[ $((r % 20)) = 0 ] && echo "round $r"
	r=$((r + 1))
done
kill $churn
echo "survived $rounds rounds of a tracefs kprobe on $func"
