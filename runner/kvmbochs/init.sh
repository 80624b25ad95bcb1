#!/bin/busybox sh
# /init of the experimental kvm-bochs host (docs/backends/kvm-bochs.md): Linux booted by GRUB in
# Bochs 3.1 `cpu: model=ryzen`, kvm_amd loaded with nested=1 on Bochs' SVM (which has NRIPS, unlike
# QEMU TCG's), then the native helper run once per suite kernel of /kernels. Everything goes to the
# console (COM1); runner/kvmbochs/run.ts reads it from Bochs' com1 file and timestamps each line.
# Markers are lines starting "KVMBOCHS "; each kernel's COM1 bytes come between
# "KVMBOCHS helper-begin <name>" and "KVMBOCHS helper-end <name> rc=<n>".

/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "KVMBOCHS init uptime=$(cut -d' ' -f1 /proc/uptime)"

while read -r ko params; do
  echo "KVMBOCHS insmod $ko $params uptime=$(cut -d' ' -f1 /proc/uptime)"
  # shellcheck disable=SC2086 # parameters are words
  insmod "/mods/$ko" $params || echo "KVMBOCHS insmod-failed $ko $params"
done < /mods/order
echo "KVMBOCHS modules-done uptime=$(cut -d' ' -f1 /proc/uptime)"
lsmod
dmesg | grep -i -e kvm -e svm
for p in nested npt nrips vls vgif avic lbrv; do
  [ -r "/sys/module/kvm_amd/parameters/$p" ] && echo "KVMBOCHS kvm_amd.$p=$(cat "/sys/module/kvm_amd/parameters/$p")"
done
echo "KVMBOCHS cpuinfo-flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -x -e svm -e npt -e nrip_save -e lbrv -e flushbyasid -e pausefilter -e pfthreshold | tr '\n' ' ')"
echo "KVMBOCHS cpuinfo-model: $(grep -m1 '^model name' /proc/cpuinfo)"
if [ -e /dev/kvm ]; then echo "KVMBOCHS dev-kvm present"; else echo "KVMBOCHS dev-kvm missing"; fi

# the supported CPUID, as `svmconf-kvm --cpuid` reads it (native/kvm/cpuid.c: hex words
# `function index flags eax ebx ecx edx`); NRIPS (8000_000A EDX bit 3) cleared for a kernel whose
# cpu config says nrips=false, as runner/kvm-cpuid.ts guestCpuid does
cpuid_table() { # $1: 1 = clear NRIPS
  awk -v clear="$1" '
    function hex(v,  s, d) { s = ""; if (v == 0) return "0x0"; while (v > 0) { d = v % 16; s = substr("0123456789abcdef", d + 1, 1) s; v = (v - d) / 16 } return "0x" s }
    function field(k,  m) { if (match($0, "\"" k "\":[0-9]+")) { m = substr($0, RSTART, RLENGTH); sub(/.*:/, "", m); return m + 0 } return 0 }
    /"function":/ {
      f = field("function"); edx = field("edx")
      if (clear == 1 && f == 2147483658 && int(edx / 8) % 2 == 1) edx -= 8
      print hex(f), hex(field("index")), hex(field("flags")), hex(field("eax")), hex(field("ebx")), hex(field("ecx")), hex(edx)
    }' /tmp/probe.json
}

echo "KVMBOCHS probe-begin uptime=$(cut -d' ' -f1 /proc/uptime)"
/bin/svmconf-kvm --probe > /tmp/probe.json 2> /tmp/probe.err
echo "KVMBOCHS probe-end rc=$? uptime=$(cut -d' ' -f1 /proc/uptime)"
head -c 400 /tmp/probe.json; echo
grep -e '"function":2147483658' -e '"function":2147483649,' /tmp/probe.json
cat /tmp/probe.err

# /kernels/<name>.elf with /kernels/<name>.args: line 1 the command line, line 2 nrips 0, 1 or "any", line 3 --mem-mib
for elf in /kernels/*.elf; do
  [ -e "$elf" ] || continue
  name=$(basename "$elf" .elf)
  cmdline=$(sed -n 1p "/kernels/$name.args")
  nrips=$(sed -n 2p "/kernels/$name.args")
  if [ "$nrips" = 0 ]; then cpuid_table 1; else cpuid_table 0; fi > "/tmp/$name.cpuid"
  echo "KVMBOCHS helper-begin $name uptime=$(cut -d' ' -f1 /proc/uptime)"
  mem=$(sed -n 3p "/kernels/$name.args")
  /bin/svmconf-kvm --kernel "$elf" --cmdline "$cmdline" --mem-mib "$mem" --cpuid "/tmp/$name.cpuid" 2> "/tmp/$name.err"
  rc=$?
  echo
  echo "KVMBOCHS helper-end $name rc=$rc uptime=$(cut -d' ' -f1 /proc/uptime)"
  cat "/tmp/$name.err"
done
dmesg | tail -n 20
echo "KVMBOCHS done uptime=$(cut -d' ' -f1 /proc/uptime)"
sync
poweroff -f
