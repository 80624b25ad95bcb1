// Architectural state of one x86-64 logical processor (APM vol. 2 ch. 1–3).
//
// 64-bit values are bigint (V8 keeps BigInt.asUintN(64, …) on BigUint64Array fast); RFLAGS and
// segment attributes fit a number. Segment registers keep the hidden part loaded with them
// (base, limit, attributes in the VMCB's attribute format, APM vol. 2 15.5.1), because that is
// what every later use of the register sees.

import { SEG_ATTRIB } from '../../arch/svm.ts';

export const GPR = { RAX: 0, RCX: 1, RDX: 2, RBX: 3, RSP: 4, RBP: 5, RSI: 6, RDI: 7, R8: 8, R9: 9, R10: 10, R11: 11, R12: 12, R13: 13, R14: 14, R15: 15 } as const;
export const SEG = { ES: 0, CS: 1, SS: 2, DS: 3, FS: 4, GS: 5 } as const;
export const SEG_NAMES = ['ES', 'CS', 'SS', 'DS', 'FS', 'GS'] as const;

/**
 * Segment attribute bits in the VMCB layout (descriptor bits 47:40 then 55:52): arch/svm.ts
 * SEG_ATTRIB, plus the code/data type bits of S=1 descriptors (APM vol. 2 4.7.2, 4.7.3).
 */
export const ATTR = {
  ...SEG_ATTRIB,
  /** Type bit 3: code; bit 1: writable (data) / readable (code); bit 2: expand-down / conforming; bit 0: accessed. */
  TYPE_CODE: 0x8,
  TYPE_RW: 0x2,
  TYPE_DC: 0x4,
  TYPE_ACCESSED: 0x1,
} as const;

export interface Segment {
  selector: number;
  base: bigint;
  /** Effective limit in bytes (granularity applied). */
  limit: number;
  attrib: number;
}

export interface TableRegister {
  base: bigint;
  limit: number;
}

export const M64 = 0xffff_ffff_ffff_ffffn;

export function flatSegment(selector: number, attrib: number): Segment {
  return { selector, base: 0n, limit: 0xffff_ffff, attrib };
}

export class CpuState {
  readonly gpr = new BigUint64Array(16);
  /** The same registers as 32-bit halves, low half first (little-endian host): the fast forms' view (isa/fast.ts). */
  readonly gpr32 = new Uint32Array(this.gpr.buffer);
  rip = 0n;
  /** RFLAGS as a number (bits 63:22 are reserved zero). Bit 1 always reads 1. */
  rflags = 0x2;
  readonly seg: Segment[] = SEG_NAMES.map(() => flatSegment(0, ATTR.P | ATTR.S | 0x3));
  gdtr: TableRegister = { base: 0n, limit: 0xffff };
  idtr: TableRegister = { base: 0n, limit: 0x3ff };
  ldtr: Segment = flatSegment(0, 0);
  tr: Segment = flatSegment(0, 0x8b | ATTR.P);
  cr0 = 0x10n;
  cr2 = 0n;
  cr3 = 0n;
  cr4 = 0n;
  efer = 0n;
  /** CR8, the task-priority register (APM vol. 2 3.1.5): bits 3:0. */
  cr8 = 0n;
  readonly dr = new BigUint64Array(8);
  /** The same debug registers as 32-bit halves (see gpr32): the breakpoint test before every instruction reads DR7's low half without making a bigint. */
  readonly dr32 = new Uint32Array(this.dr.buffer);
  /** Current privilege level (CS.DPL once loaded; kept apart as the manual keeps it apart). */
  cpl = 0;
  /** Model-specific registers that are plain storage (the behaviour-bearing ones are in system.ts). */
  readonly msr = new Map<number, bigint>();
  /** Interrupt shadow after MOV SS/POP SS/STI: events are held for one instruction. */
  interruptShadow = false;
  /** Global interrupt flag (APM vol. 2 15.17); 1 outside SVM. */
  gif = true;
  halted = false;
}
