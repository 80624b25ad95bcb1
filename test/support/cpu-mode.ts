// Put a bare Cpu of a spec into a code mode the way the runtime's boot leaves it: protected mode
// (CR0.PE, ET) and either 64-bit mode (EFER.LME|LMA, CR0.PG, CS.L = 1: APM vol. 2 14.6) or 32-bit
// protected mode (CS.D = 1, 4 GiB granularity). Only CS changes; other segments are the caller's.

import { CR0_PE, CR0_PG, EFER_LMA, EFER_LME, type Cpu } from '../../model/cpu/cpu.ts';
import { ATTR, SEG } from '../../model/cpu/state.ts';

/** An accessed, readable, present code segment's attributes (APM vol. 2 4.7.2). */
export const CODE_SEGMENT = ATTR.P | ATTR.S | ATTR.TYPE_CODE | ATTR.TYPE_RW | ATTR.TYPE_ACCESSED;

export function setCodeMode(cpu: Cpu, bits: 32 | 64): void {
  cpu.cr0 = CR0_PE | 0x10n;
  if (bits === 64) {
    cpu.efer = EFER_LME | EFER_LMA;
    cpu.cr0 |= CR0_PG;
    cpu.seg[SEG.CS]!.attrib = CODE_SEGMENT | ATTR.L;
  } else {
    cpu.seg[SEG.CS]!.attrib = CODE_SEGMENT | ATTR.DB | ATTR.G;
  }
}
