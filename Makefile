# svmconf — see README.md. Every target that needs tools runs `setup` first (quick when done).
SVMCONF := node bin/svmconf.js
ARGS ?=

.PHONY: all setup conformance test typecheck unit list build clean bench expected mutants iso native native-fake publish tcghost peers

all: conformance

setup:
	@bash scripts/setup.sh

## conformance: install the pinned peers (runner/peers/pins.yaml, cached under build/peers/), build every kernel, run it on every backend available here and on the newest pinned version of each peer, print the matrix
conformance: setup
	@$(MAKE) -s native || echo "make native failed: the kvm backend will say it is unavailable"
	@$(SVMCONF) peers || echo "svmconf peers failed: the pinned peers' columns will say why they are unavailable"
	$(SVMCONF) run $(ARGS)

## test: type check and the mocha specs (unit, end to end on qemu-tcg, on KVM inside QEMU TCG and on the pinned peers: builds the TCG host and the peers first, both cached under build/)
test: setup native native-fake
	@$(SVMCONF) tcghost >/dev/null || echo "svmconf tcghost failed: test/kvm-tcg.spec.ts will be skipped with the reason"
	@$(SVMCONF) peers >/dev/null || echo "svmconf peers failed: the specs of the pinned peers will be skipped with the reason"
	npx tsc --noEmit -p .
	npx mocha

## expected: the model's records for every case under every CPU profile -> expected/<profile>/ (review with git diff)
expected: setup
	$(SVMCONF) expected $(ARGS)

## mutants: the kill table — every case on the model under each mutant of model/mutants.ts (exit 1 if one survives)
mutants: setup
	$(SVMCONF) mutants $(ARGS)

## iso: the bootable suite image out/svmconf.iso (GRUB, BIOS and UEFI; docs/backends/console.md "The image")
iso: setup
	$(SVMCONF) iso $(ARGS)

## publish: one matrix per CPU family from results files: make publish ARGS='a/results.json b/results.json [--out dir]'
publish: setup
	$(SVMCONF) publish $(ARGS)

list: setup
	$(SVMCONF) list $(ARGS)

build: setup
	$(SVMCONF) build $(ARGS)

clean:
	rm -rf build out

## bench: the model's MIPS and the L1 suite's wall time under the model, qemu-tcg, the native kvm runner and qemu-kvm (one run)
bench: setup
	@$(MAKE) -s native || echo "make native failed: kvm will be reported unavailable"
	node --import tsx bench/bench.ts

## tcghost: the kvm-tcg backend's guest (Linux + kvm_amd nested=1 under QEMU TCG): downloads Debian's linux-image-amd64 and busybox-static (about 72 MB) -> build/tcghost/
tcghost: setup
	$(SVMCONF) tcghost $(ARGS)

## peers: the pinned peer versions of runner/peers/pins.yaml (QEMU 11.1, Bochs 3.1 in a sid root by mmdebstrap, about 460 MB; Linux 6.1, 6.12, 7.3 for the TCG host, about 300 MB of .debs) -> build/peers/; the host's packages untouched (docs/peers.md)
peers: setup
	$(SVMCONF) peers $(ARGS)

## native: the native KVM runner's helper (native/kvm/*.c) -> build/native/svmconf-kvm; needs a C compiler and linux/kvm.h
NATIVE_CC ?= cc
NATIVE_CFLAGS ?= -O2 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wformat=2
NATIVE_SRC := $(wildcard native/kvm/*.c)
NATIVE_BIN := build/native/svmconf-kvm
# the helper's constants, generated from arch/ (arch/c-header.ts; needs node_modules for tsx)
NATIVE_ARCH_H := build/native/svmconf-arch.h
native: $(NATIVE_BIN)
$(NATIVE_ARCH_H): arch/c-header.ts arch/layout.ts arch/x86.ts
	@mkdir -p $(dir $@)
	node --import tsx arch/c-header.ts $@
$(NATIVE_BIN): $(NATIVE_SRC) $(wildcard native/kvm/*.h) $(NATIVE_ARCH_H)
	@mkdir -p $(dir $@)
	$(NATIVE_CC) $(NATIVE_CFLAGS) -I $(dir $(NATIVE_ARCH_H)) -o $@ $(NATIVE_SRC)

## native-fake: fakekvm.so, a scripted stand-in for /dev/kvm the specs LD_PRELOAD into the helper where there is no KVM (not a model of KVM)
NATIVE_FAKE := build/native/fakekvm.so
native-fake: $(NATIVE_FAKE)
$(NATIVE_FAKE): native/kvm/test/fakekvm.c
	@mkdir -p $(dir $@)
	$(NATIVE_CC) $(NATIVE_CFLAGS) -fPIC -shared -o $@ $< -ldl
