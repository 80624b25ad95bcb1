# svmconf — see README.md. Every target that needs tools runs `setup` first (quick when done).
SVMCONF := node bin/svmconf.js
ARGS ?=

.PHONY: all setup conformance test typecheck unit list build clean bench expected mutants iso publish

all: conformance

setup:
	@bash scripts/setup.sh

## conformance: build every kernel, run it on every backend available here, print the matrix
conformance: setup
	$(SVMCONF) run $(ARGS)

## test: type check and the mocha specs (unit and end to end on qemu-tcg)
test: setup
	npx tsc --noEmit -p .
	npx mocha

## expected: the model's records for every case under every CPU profile -> expected/<profile>/ (review with git diff)
expected: setup
	$(SVMCONF) expected $(ARGS)

## mutants: the kill table — every case on the model under each mutant of model/mutants.ts (exit 1 if one survives)
mutants: setup
	$(SVMCONF) mutants $(ARGS)

## iso: the bootable suite image out/svmconf.iso (GRUB, BIOS and UEFI; README "Bootable image")
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

## bench: the model's MIPS and the L1 suite's wall time under the model and qemu-tcg (one run)
bench: setup
	node --import tsx bench/bench.ts
