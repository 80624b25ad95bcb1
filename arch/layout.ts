// The guest's world: the kernel runtime's memory map, descriptor layout and the machine state every
// case starts from, where the loaders put the multiboot information, and the ports the kernels talk
// to. The one place these numbers live: emitted into every kernel source as `.set` lines (asmLayout),
// read by the loaders and devices in TypeScript (generator/, runner/, model/), and written into the
// native helper's header by arch/c-header.ts.

import { CR0, CR4, RFLAGS } from './x86.ts';

/** Where the kernel is linked and loaded (multiboot, the Bochs boot sector, the model). */
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

/**
 * Where the loaders put what the Multiboot Specification (0.6.96, 3.3) hands the kernel, below the
 * kernel: the information block and its command line (the model, model/machine.ts, and the native
 * helper use the same addresses), and the flat GDT the native helper writes so GDTR points at real
 * descriptors matching the hidden segment state (the model keeps only the hidden state).
 */
export const LOADER = {
  GDT_ADDR: 0x8000,
  MBI_ADDR: 0x9000,
  MBI_CMDLINE_ADDR: 0x9100,
  /** Bytes the loaders keep of a command line (up to the end of the low block). */
  MBI_CMDLINE_MAX: 0x0f00,
  /** Nothing of a kernel may be loaded below this. */
  LOW_RESERVED_END: 0xa000,
} as const;

/** Selectors of the flat 32-bit code and data segments of the multiboot entry state (0.6.96, 3.2). */
export const LOADER_SELECTORS = {
  CODE32: 0x08,
  DATA32: 0x10,
} as const;

/** Multiboot Specification 0.6.96: header magic (3.1.2), the magic EAX holds at entry (3.2), the information block's flags (3.3). */
export const MULTIBOOT = {
  HEADER_MAGIC: 0x1badb002,
  /** The header lies in the first 8192 bytes of the image, 4-aligned (3.1.1). */
  HEADER_SEARCH: 8192,
  BOOT_MAGIC: 0x2badb002,
  INFO_MEMORY: 1 << 0,
  INFO_CMDLINE: 1 << 2,
} as const;

/** The ports the kernels use (docs/protocol.md): COM1, QEMU's isa-debug-exit, Bochs' shutdown port. */
export const PORTS = {
  COM1_BASE: 0x3f8,
  /** isa-debug-exit (iobase 0xf4, iosize 4): the value written ends the run with status (value << 1) | 1. */
  DEBUG_EXIT: 0xf4,
  /** Bochs: the bytes of "Shutdown" written in sequence end the run. */
  BOCHS_SHUTDOWN: 0x8900,
} as const;

/** 16550 UART register bits the runtime and the devices use (line status and line control). */
export const UART = {
  /** LSR: transmitter holding register empty. */
  LSR_THRE: 0x20,
  /** LSR: transmitter empty. */
  LSR_TEMT: 0x40,
  /** LCR: divisor latch access. */
  LCR_DLAB: 0x80,
} as const;

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
