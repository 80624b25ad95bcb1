#!/usr/bin/env bash
# A serial console for the console backend: Bochs boots the suite image from a CD-ROM and this
# script's output is its COM1 (Bochs writes COM1 to a file; tail follows it until Bochs exits).
#   usage: scripts/bochs-console.sh <image.iso> [bochs cpu model, default phenom_8650_toliman]
# Headless as docs/tools.md "Bochs" describes: the rfb display inside a private network
# namespace (unshare -rn: the rfb port listens nowhere), the debugger told to continue and quit.
# phenom_8650_toliman is family 10h: SVM and NPT without NRIPS, like QEMU 7.2's TCG; `ryzen` has NRIPS.
set -euo pipefail
iso=$(realpath "$1")
cpu=${2:-phenom_8650_toliman}
command -v bochs >/dev/null || { echo "bochs not found: apt-get install bochs bochsbios vgabios seabios (or make setup)" >&2; exit 127; }
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
cat > "$dir/bochsrc" <<RC
megs: 128
cpu: model=$cpu
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/seabios/vgabios-isavga.bin
display_library: rfb, options="timeout=0"
ata0-master: type=cdrom, path=$iso, status=inserted
boot: cdrom
com1: enabled=1, mode=file, dev=$dir/com1.out
log: $dir/bochs.log
panic: action=fatal
sound: driver=dummy
speaker: enabled=0
RC
printf 'c\nq\n' > "$dir/dbg.rc"
: > "$dir/com1.out"
(cd "$dir" && exec unshare -rn bochs -q -f bochsrc -rc dbg.rc </dev/null >"$dir/bochs.stdout" 2>&1) &
pid=$!
tail -n +1 -F --pid="$pid" "$dir/com1.out" 2>/dev/null
