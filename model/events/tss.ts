// The stacks an interrupt or exception switches to, read from the TSS (APM vol. 2 12.2.5, 8.7.3
// "Interrupt Control Transfers" for legacy mode, 8.9.3/8.9.4 for RSPn and ISTn in long mode).
// Only the parts specific to event delivery live here: where in the TSS the stack pointer and SS
// are, and the #TS errors of that lookup. The SS found there goes through segmentation.ts like
// every other segment load (checkStackSegment with #TS; loadDescriptor, loadNullStack when the
// delivery commits). Every error code carries EXT (APM vol. 2 8.4.1: events/classes.ts extBit).

import type { Cpu } from '../cpu/cpu.ts';
import { ATTR } from '../cpu/state.ts';
import { Fault, ModelStop } from '../cpu/fault.ts';
import { checkStackSegment, isNullSelector, selectorError, type Descriptor } from '../segmentation.ts';
import { DESC_TYPE, TSS32, TSS64, VEC } from '../../arch/x86.ts';

/** The stack of a legacy-mode interrupt to an inner level: SSn:ESPn of the TSS and SSn's checked descriptor. */
export interface TssStack32 {
  selector: number;
  descriptor: Descriptor;
  esp: bigint;
}

/**
 * SSn:ESPn for privilege level `cpl` from a 32-bit TSS (APM vol. 2 12.2.5; 8.7.3):
 * ESPn at 4 + 8n, SSn at 8 + 8n. The fields beyond TR's limit: #TS(TR selector); a null SSn:
 * #TS(0); SSn fails the stack-segment checks: #TS(SSn) (#SS(SSn) if not present) — all with EXT.
 * 16-bit TSSs (stack pointers at 2 + 4n) are not modelled.
 */
export function tssStack32(cpu: Cpu, cpl: number, ext: number): TssStack32 {
  const type = cpu.tr.attrib & ATTR.TYPE_MASK;
  if (type !== DESC_TYPE.TSS_AVAILABLE && type !== DESC_TYPE.TSS_BUSY) throw new ModelStop(`stack switch through a 16-bit TSS (TR type ${type}) is not modelled`);
  const espOff = TSS32.ESP0 + TSS32.STACK_STRIDE * cpl;
  if (espOff + 5 > cpu.tr.limit) throw new Fault(VEC.TS, selectorError(cpu.tr.selector, ext));
  const esp = cpu.readLinear(cpu.tr.base + BigInt(espOff), 4, 0);
  const selector = Number(cpu.readLinear(cpu.tr.base + BigInt(espOff + 4), 2, 0));
  if (isNullSelector(selector)) throw new Fault(VEC.TS, ext);
  return { selector, descriptor: checkStackSegment(cpu, selector, cpl, VEC.TS, ext), esp };
}

/** RSPn (n = 0–2) or ISTn (n = 1–7) of the 64-bit TSS (APM vol. 2 12.2.5, figure 12-8): beyond TR's limit, #TS(TR selector | EXT). */
export function tssStack64(cpu: Cpu, which: { rsp: number } | { ist: number }, ext: number): bigint {
  const off = 'rsp' in which ? TSS64.RSP0 + 8 * which.rsp : TSS64.IST1 + 8 * (which.ist - 1);
  if (off + 7 > cpu.tr.limit) throw new Fault(VEC.TS, selectorError(cpu.tr.selector, ext));
  return cpu.readLinear(cpu.tr.base + BigInt(off), 8, 0);
}
