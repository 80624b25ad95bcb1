// The kernel runtime's memory map, descriptor layout and the machine state every case starts
// from: the one place these numbers live. Emitted into every kernel source as `.set` lines (see
// asmLayout), read by the loaders in TS.

import { CR0, CR4, RFLAGS } from '../arch/x86.ts';

/** Where the kernel is linked and loaded (multiboot, Bochs optramimage, the model). */
export const KERNEL_LOAD_ADDR = 0x100000;

/**
 * Per-case page arena: `alloc_page` hands out zeroed 4 KiB pages from here and is reset before
 * every case, so cases never see each other's page tables, VMCBs or guest memory.
 */
export const ARENA_BASE = 0x800000;
export const ARENA_SIZE = 0x800000;

/**
 * The suite loader of the bootable image (templates/partials/suite_loader.S.hbs): linked above the
 * page arena so that no batch kernel, case or arena page touches it; the batch kernels it carries
 * are copied to their own link address, KERNEL_LOAD_ADDR, one after the other. A batch kernel
 * returns to SUITE_RETURN_ADDR (its command line says `return=<decimal address>`).
 */
export const SUITE_LOADER_ADDR = 0x1000000;
export const SUITE_RETURN_ADDR = SUITE_LOADER_ADDR + 0x10;

/** Guest RAM the runners give a kernel (MiB); the arena must fit below it. */
export const GUEST_RAM_MIB = 128;

/** Largest record a template may declare (bytes); the runtime's record buffer has this size. */
export const RECORD_MAX = 256;

/** GDT selectors of the runtime (boot.S.hbs builds the descriptors in this order). */
export const SELECTORS = {
  KERNEL_CS64: 0x08,
  KERNEL_DS: 0x10,
  KERNEL_CS32: 0x18,
  USER_CS32: 0x23,
  USER_DS: 0x2b,
  USER_CS64: 0x33,
  TSS: 0x38,
} as const;

/** Control registers, debug registers and RFLAGS at the start of every case (rt_reset_machine). */
export const CASE_START_STATE = {
  RT_CR0: CR0.PE | CR0.MP | CR0.ET | CR0.NE | CR0.WP | CR0.PG,
  RT_CR4: CR4.PAE,
  RT_RFLAGS: RFLAGS.FIXED1,
  /** DR6 and DR7 after reset (APM vol. 2 13.1.1.3, 13.1.1.4): no breakpoint enabled. */
  DR6_INIT: 0xffff0ff0n,
  DR7_INIT: 0x400n,
} as const;

/**
 * The scenario templates' L2 alias window (templates/partials/scenario.S.hbs): L2 runs on a copy
 * of L1's page tables plus one 4 KiB-mapped window at PML4 slot 1, holding the three pages event
 * delivery needs — L2's IDT, L2's stack and the handler page (the first code a gate enters). A
 * case makes one of them not present (a #PF during delivery) by clearing its PTE. Fixed virtual
 * addresses keep the recorded #PF addresses identical whatever the kernel's layout.
 */
export const SCENARIO_WINDOW = {
  SCEN_VA_BASE: 0x8000000000n,
  SCEN_SLOT_IDT: 0n,
  SCEN_SLOT_STACK: 1n,
  SCEN_SLOT_HANDLER: 2n,
  /** Bytes per handler-page slot: a `jmp *0(%rip)` (6 bytes) and its 8-byte target. */
  SCEN_STUB_SIZE: 16n,
  /** The handler-page slot a warm case calls (a lone `ret`): no vector uses it. */
  SCEN_WARM_SLOT: 255n,
} as const;

/** Bytes of the multiboot command line the runtime keeps. */
export const CMDLINE_MAX = 256;

/** Case entry return values (EAX), see templates/partials/batch.S.hbs. */
export const CASE_RESULT = { OK: 0, SKIP: 1 } as const;

/** Size of the crash record the catch-all IDT emits (docs/protocol.md). */
export const CRASH_RECORD_SIZE = 48;

export function asmLayout(): string {
  const lines: Array<readonly [string, number | bigint]> = [
    ['KERNEL_LOAD_ADDR', KERNEL_LOAD_ADDR],
    ['CMDLINE_MAX', CMDLINE_MAX],
    ...Object.entries(CASE_START_STATE),
    ['ARENA_BASE', ARENA_BASE],
    ['ARENA_SIZE', ARENA_SIZE],
    ['RECORD_MAX', RECORD_MAX],
    ['CASE_OK', CASE_RESULT.OK],
    ['CASE_SKIP', CASE_RESULT.SKIP],
    ['CRASH_RECORD_SIZE', CRASH_RECORD_SIZE],
    ['SUITE_LOADER_ADDR', SUITE_LOADER_ADDR],
    ['SUITE_RETURN_ADDR', SUITE_RETURN_ADDR],
    ...Object.entries(SELECTORS),
    ...Object.entries(SCENARIO_WINDOW),
  ];
  return lines.map(([name, value]) => `.set ${name}, 0x${value.toString(16)}`).join('\n') + '\n';
}
