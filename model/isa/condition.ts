// The condition codes of Jcc, SETcc and CMOVcc (APM vol. 3 table "Condition codes" under Jcc; the
// tttn encoding): one evaluation the instruction groups (control.ts, data.ts, logic.ts) and the
// compiled forms (fast.ts) share. It imports no instruction group, so fast.ts can use it without
// a cycle through the registry.

import type { Cpu } from '../cpu/cpu.ts';
import { F } from '../cpu/flags.ts';

/** Condition-code suffixes in encoding order 0–15, as iced spells them after J/CMOV/SET. */
export const CONDITION_SUFFIXES = ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g'] as const;

/** Is condition `cc` (0–15, the low nibble of the Jcc/SETcc/CMOVcc opcode) true in RFLAGS? */
export function condition(cpu: Cpu, cc: number): boolean {
  const f = cpu.rflags;
  let t: boolean;
  switch (cc >> 1) {
    case 0: t = (f & F.OF) !== 0; break; // O
    case 1: t = (f & F.CF) !== 0; break; // B, C, NAE
    case 2: t = (f & F.ZF) !== 0; break; // E, Z
    case 3: t = (f & (F.CF | F.ZF)) !== 0; break; // BE, NA
    case 4: t = (f & F.SF) !== 0; break; // S
    case 5: t = (f & F.PF) !== 0; break; // P, PE
    case 6: t = ((f & F.SF) !== 0) !== ((f & F.OF) !== 0); break; // L: SF ≠ OF
    default: t = (f & F.ZF) !== 0 || ((f & F.SF) !== 0) !== ((f & F.OF) !== 0); // LE: ZF = 1 or SF ≠ OF
  }
  // odd codes are the negations (NO, AE, NE, A, NS, NP, GE, G)
  return (cc & 1) === 0 ? t : !t;
}
