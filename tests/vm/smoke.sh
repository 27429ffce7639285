# vm_smoke: checks that the VM tier itself works (runs inside the VM under busybox sh, cwd /memscope).
# Expects to be run with swap and hugepages on (see memscope_vm_test(vm_smoke ...) in vm.cmake).
set -u
failures=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*"; failures=$((failures + 1)); }
check() { desc=$1; shift; if "$@"; then ok "$desc"; else bad "$desc"; fi; }
meminfo() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }
vmstat() { awk -v k="$1" '$1 == k { print $2 }' /proc/vmstat; }

# Kernel and the interfaces memscope needs.
kr=$(uname -r)
case $kr in 6.1.*) ok "kernel $kr" ;; *) bad "kernel is $kr, want 6.1.*" ;; esac
check "BTF at /sys/kernel/btf/vmlinux" [ -f /sys/kernel/btf/vmlinux ]
check "kprobe PMU (/sys/bus/event_source/devices/kprobe)" [ -d /sys/bus/event_source/devices/kprobe ]
check "tracefs mounted" [ -f /sys/kernel/tracing/available_events ]
check "cgroup2 mounted" [ -f /sys/fs/cgroup/cgroup.controllers ]
check "running as root" [ "$(id -u)" = 0 ]

# Swap and hugepages as requested on the vm-run command line.
if grep -q '^/dev/vda ' /proc/swaps; then ok "swap on /dev/vda"; else bad "swap is not on: $(cat /proc/swaps)"; fi
hp=$(meminfo HugePages_Total)
if [ "${VM_HUGEPAGES:-0}" -gt 0 ] && [ "$hp" = "$VM_HUGEPAGES" ]; then
  ok "HugePages_Total $hp"
else
  bad "HugePages_Total is $hp, asked for ${VM_HUGEPAGES:-0}"
fi

# Every ELF file from the binary dir must find its libraries in the VM.
for f in /memscope/*; do
  [ -f "$f" ] || continue
  [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = 177ELF ] || continue
  if out=$(/lib64/ld-linux-x86-64.so.2 --list "$f" 2>&1); then
    case $out in *"not found"*) bad "$f: missing libraries: $out" ;; *) ok "$(basename "$f"): libraries resolve" ;; esac
  else
    case $out in *"not a dynamic"*|*statically*) ok "$(basename "$f"): static" ;; *) bad "$f: $out" ;; esac
  fi
done

# Swap pressure: allocate more than RAM, read back the first part (written first, so swapped out),
# and see swap-ins happen. Reading all of it would swap in every page (sequential scan over more
# than RAM defeats LRU) and take minutes on a loaded host.
total_mb=$(( $(meminfo MemTotal) / 1024 ))
avail_mb=$(( ($(meminfo MemAvailable) + $(meminfo SwapFree)) / 1024 ))
hog_mb=$((total_mb + 32))
if [ $hog_mb -gt $((avail_mb - 48)) ]; then
  bad "not enough RAM+swap for a ${hog_mb} MiB hog (available ${avail_mb} MiB); give the VM more swap"
else
  in0=$(vmstat pswpin); out0=$(vmstat pswpout)
  if memhog $hog_mb 1 64; then ok "memhog $hog_mb MiB (MemTotal $total_mb MiB) read back intact"; else bad "memhog failed"; fi
  in1=$(vmstat pswpin); out1=$(vmstat pswpout)
  echo "     pswpout $out0 -> $out1, pswpin $in0 -> $in1"
  check "swap-ins happened (pswpin $in0 -> $in1)" [ "$in1" -gt "$in0" ]
fi

# File transfer back to the host (vm-run --expect-file checks they arrive intact).
vm-send-file /proc/vmstat vmstat.txt
head -c 100000 /dev/urandom > /tmp/random.bin
vm-send-file /tmp/random.bin random.bin
sha256sum /tmp/random.bin

echo "$failures failure(s)"
[ "$failures" -eq 0 ]
