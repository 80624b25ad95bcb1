#!/usr/bin/env bash
# make setup: install what svmconf needs and is missing, and say what was done.
#   Debian packages: binutils (as/ld/objcopy build the kernels), gcc, libc6-dev and linux-libc-dev
#   (the native kvm backend's helper, `make native`: a C compiler and linux/kvm.h), qemu-system-x86
#   (qemu-tcg and qemu-kvm backends), and for the Bochs, ISO and UEFI work: bochs, bochsbios, vgabios, seabios,
#   grub-pc-bin, grub-efi-amd64-bin, grub-common, xorriso, mtools, ovmf; chromium (headless, for the
#   spec that checks the published matrix.html in a real browser: test/publish-browser.spec.ts);
#   mmdebstrap (builds the pinned peers' private roots under build/peers/, docs/peers.md).
#   npm packages: `npm ci` when node_modules is missing or older than package-lock.json.
# Idempotent and quick when nothing is missing, so `make conformance` and `make test` run it first.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(binutils gcc libc6-dev linux-libc-dev qemu-system-x86 bochs bochsbios vgabios seabios grub-pc-bin grub-efi-amd64-bin grub-common xorriso mtools ovmf chromium mmdebstrap)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    SUDO=sudo
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "setup: installed ${#missing[@]} Debian package(s)"
else
  echo "setup: Debian packages present (${#PACKAGES[@]} checked)"
fi

command -v node >/dev/null || { echo "setup: Node.js 20 or later is required (apt-get install nodejs npm)" >&2; exit 1; }
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then echo "setup: Node.js $node_major is too old: svmconf needs 20 or later" >&2; exit 1; fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "setup: npm packages installed"
else
  echo "setup: npm packages up to date"
fi
