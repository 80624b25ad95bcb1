#!/bin/busybox sh
# /init of the TCG host: a Linux guest of QEMU TCG whose kvm_amd (nested=1) runs on QEMU's SVM
# emulation, so that the native KVM runner (native/kvm/) can be run against real KVM code on a
# machine without SVM hardware (docs/backends/kvm-tcg.md). runner/tcghost/image.ts packs this
# file, busybox, the static helper and the kernel modules into the initramfs; runner/tcghost/host.ts
# boots it and talks to the agent below through a 9p share, the spool.
#
#   init.sh            as /init: bring the guest up, publish the facts, serve the spool
#   init.sh serve      only the agent loop (the specs run it on the build machine with a stand-in
#                      helper: SVMCONF_SPOOL and SVMCONF_HELPER name the spool and the helper)
#   init.sh facts      only the facts, alive and ready (the specs check the markers the same way)
#
# The spool protocol (host.ts is the other end):
#   <id>.req/          a request, renamed into place by the host once args, stdin and kernel.elf
#                      are written: args holds one argument per line
#   <id>.req/claimed/  made by the agent (mkdir is atomic: one claim per request)
#   <id>.req/out, err  the helper's stdout (COM1's bytes, read by the host as they grow) and stderr
#   <id>.req/cancel    made by the host: kill the helper
#   <id>.req/rc        the helper's exit status (128+N: killed by signal N), written last
#   facts/, ready      what /proc and /sys say about KVM here, then the sign that requests are served
#   alive              touched before ready, then about once a second while the agent loops (the
#                      host's watchdog)
#   stop               made by the host: the agent leaves its loop and the guest powers off

spool=${SVMCONF_SPOOL:-/spool}
helper=${SVMCONF_HELPER:-/bin/svmconf-kvm}
poll_us=20000

# busybox has usleep; the specs' /bin/sh may not
nap() { usleep "$poll_us" 2>/dev/null || sleep 0.02; }

# --- bring-up: busybox applets, pseudo file systems, modules in dependency order, the spool ---
bring_up() {
  /bin/busybox --install -s /bin
  mount -t proc proc /proc
  mount -t sysfs sys /sys
  mount -t devtmpfs dev /dev
  # /mods/order: "<file> [parameters]" per line, dependencies first (image.ts sorts them)
  while read -r ko params; do
    # shellcheck disable=SC2086 # parameters are words
    insmod "/mods/$ko" $params || echo "svmconf-tcghost: insmod $ko $params failed" >&2
  done < /mods/order
  mkdir -p "$spool"
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 spool "$spool" ||
    { echo "svmconf-tcghost: cannot mount the spool" >&2; poweroff -f; }
}

# --- facts: what runner/probe.ts's readHostFacts reads on a host, copied into the spool ---
publish_facts() {
  f="$spool/facts"
  mkdir -p "$f"
  cat /proc/cpuinfo > "$f/cpuinfo"
  cat /proc/sys/kernel/osrelease > "$f/osrelease"
  ls /sys/module > "$f/modules"
  for p in nested npt nrips; do
    [ -r "/sys/module/kvm_amd/parameters/$p" ] && cat "/sys/module/kvm_amd/parameters/$p" > "$f/kvm_amd.$p"
  done
  if [ ! -e /dev/kvm ]; then echo ENOENT; elif (exec 3<>/dev/kvm) 2>/dev/null; then echo ok; else echo EACCES; fi > "$f/dev-kvm"
  busybox 2>&1 | head -n 1 > "$f/busybox"
  # alive before ready: the host starts sending requests when it sees ready, and refuses each one
  # while alive is missing (spool.ts heartbeatProblem), so a first beat only from serve's loop
  # left a window where the first request (the probe) failed with "never reported alive"
  : > "$spool/alive"
  : > "$spool/ready"
}

# --- one request: the helper with the request's arguments; a watcher kills it on cancel ---
handle() {
  d=$1
  set --
  while IFS= read -r a; do set -- "$@" "$a"; done < "$d/args"
  "$helper" "$@" < "$d/stdin" > "$d/out" 2> "$d/err" &
  pid=$!
  # the watcher also ends when the request is gone: the host removes it as soon as it sees rc,
  # often before the watcher's next look, which then would loop for ever
  (
    while [ -d "$d" ] && [ ! -e "$d/rc" ]; do
      if [ -e "$d/cancel" ]; then kill -9 "$pid" 2>/dev/null; break; fi
      nap
    done
  ) &
  wait "$pid"
  echo "$?" > "$d/rc.tmp"
  mv "$d/rc.tmp" "$d/rc"
}

# --- the agent: claim each new request, run it in the background, until told to stop ---
serve() {
  n=0
  while [ ! -e "$spool/stop" ]; do
    n=$((n + 1))
    [ $((n % 50)) = 1 ] && : > "$spool/alive"
    for r in "$spool"/*.req; do
      [ -d "$r" ] || continue
      mkdir "$r/claimed" 2>/dev/null || continue
      handle "$r" &
    done
    nap
  done
}

case "${1:-init}" in
  serve)
    serve
    ;;
  facts)
    publish_facts
    ;;
  init)
    bring_up
    publish_facts
    serve
    sync
    poweroff -f
    ;;
  *)
    echo "usage: init.sh [serve|facts]" >&2
    exit 2
    ;;
esac
