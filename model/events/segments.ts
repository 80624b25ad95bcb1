// Descriptor checks shared by event delivery and the far control transfers (INT, IRET, far
// JMP/CALL/RET): code-segment targets, stack segments, TSS stack pointers (APM vol. 2 4.8–4.11,
// 8.8–8.9, 12.2.5). Every error code can carry the EXT bit (8.4.1).
//
// Private to model/events and model/isa/interrupts.ts for now: segmentation.ts is being extended
// with loadCodeSegment/loadStackSegment helpers; when they land, these should be reconciled with
// them (the checks here are the ones the far transfers need, with EXT). Descriptor accessed bits
// are not written back (no svmconf case observes them).

import type { Cpu } from '../cpu/cpu.ts';
import { ATTR, type Segment } from '../cpu/state.ts';
import { Fault, ModelStop } from '../cpu/fault.ts';
import { segmentFromDescriptor, dplOf, isCode, SELECTOR, type Descriptor } from '../segmentation.ts';
import { VEC } from '../../arch/x86.ts';

export const isNullSelector = (sel: number): boolean => (sel & 0xfffc) === 0;

/**
 * The descriptor `sel` names (GDT or LDT), read with implicit supervisor accesses; beyond the
 * table limit: #GP(selector | ext) or the given vector (APM vol. 2 4.5.2).
 */
export function descriptorAt(cpu: Cpu, sel: number, ext: number, vector: number = VEC.GP, wide = false): Descriptor {
  const ldt = (sel & SELECTOR.TI) !== 0;
  const base = ldt ? cpu.ldtr.base : cpu.gdtr.base;
  const limit = ldt ? cpu.ldtr.limit : cpu.gdtr.limit;
  const offset = sel & SELECTOR.INDEX_MASK;
  if (offset + (wide ? 15 : 7) > limit) throw new Fault(vector, (sel & 0xfffc) | ext);
  const lin = base + BigInt(offset);
  return { low: cpu.readLinear(lin, 8, 0), high: wide ? cpu.readLinear(lin + 8n, 8, 0) : 0n };
}

export const isConforming = (attrib: number): boolean => (attrib & ATTR.TYPE_DC) !== 0;
export const isSystem = (attrib: number): boolean => (attrib & ATTR.S) === 0;

/** Segment checks of a code segment reached by an interrupt or exception gate (APM vol. 2 8.8.2, 8.9.2; vol. 3 INT). */
export function handlerCodeSegment(cpu: Cpu, sel: number, ext: number): { cs: Segment; cpl: number } {
  if (isNullSelector(sel)) throw new Fault(VEC.GP, ext);
  const err = (sel & 0xfffc) | ext;
  const cs = segmentFromDescriptor(sel, descriptorAt(cpu, sel, ext));
  if (!isCode(cs.attrib)) throw new Fault(VEC.GP, err);
  const dpl = dplOf(cs.attrib);
  if (dpl > cpu.cpl) throw new Fault(VEC.GP, err);
  // in long mode the handler must be 64-bit code (L=1, D=0: APM vol. 2 8.9.2, 4.8.2)
  if (cpu.longMode && (!(cs.attrib & ATTR.L) || cs.attrib & ATTR.DB)) throw new Fault(VEC.GP, err);
  if (!(cs.attrib & ATTR.P)) throw new Fault(VEC.NP, err);
  const cpl = isConforming(cs.attrib) ? cpu.cpl : dpl;
  cs.selector = (sel & 0xfffc) | cpl;
  return { cs, cpl };
}

/**
 * Checks of a code segment a far JMP or CALL goes to directly (no gate): APM vol. 2 4.10.1, 4.11.1.
 * System descriptors (call gates, TSS, task gates) are not modelled: ModelStop.
 */
export function directCodeSegment(cpu: Cpu, sel: number): Segment {
  if (isNullSelector(sel)) throw new Fault(VEC.GP, 0);
  const err = sel & 0xfffc;
  const cs = segmentFromDescriptor(sel, descriptorAt(cpu, sel, 0));
  if (isSystem(cs.attrib)) {
    const type = cs.attrib & ATTR.TYPE_MASK;
    if ([0x4, 0xc, 0x5, 0x1, 0x9, 0x3, 0xb].includes(type)) {
      throw new ModelStop(`far transfer through a ${type === 0x5 ? 'task gate' : type === 0x4 || type === 0xc ? 'call gate' : 'TSS'} (selector 0x${sel.toString(16)}) is not modelled`);
    }
    throw new Fault(VEC.GP, err);
  }
  if (!isCode(cs.attrib)) throw new Fault(VEC.GP, err);
  const dpl = dplOf(cs.attrib);
  if (isConforming(cs.attrib)) {
    if (dpl > cpu.cpl) throw new Fault(VEC.GP, err);
  } else if ((sel & 3) > cpu.cpl || dpl !== cpu.cpl) {
    throw new Fault(VEC.GP, err);
  }
  if (cpu.longMode && cs.attrib & ATTR.L && cs.attrib & ATTR.DB) throw new Fault(VEC.GP, err);
  if (!(cs.attrib & ATTR.P)) throw new Fault(VEC.NP, err);
  cs.selector = (sel & 0xfffc) | cpu.cpl;
  return cs;
}

/** Checks of the code segment a far RET or IRET returns to (APM vol. 2 4.11.3 / vol. 3 RET far, IRET). */
export function returnCodeSegment(cpu: Cpu, sel: number): Segment {
  if (isNullSelector(sel)) throw new Fault(VEC.GP, 0);
  const err = sel & 0xfffc;
  const cs = segmentFromDescriptor(sel, descriptorAt(cpu, sel, 0));
  const rpl = sel & 3;
  if (!isCode(cs.attrib)) throw new Fault(VEC.GP, err);
  if (rpl < cpu.cpl) throw new Fault(VEC.GP, err);
  const dpl = dplOf(cs.attrib);
  if (isConforming(cs.attrib) ? dpl > rpl : dpl !== rpl) throw new Fault(VEC.GP, err);
  if (cpu.longMode && cs.attrib & ATTR.L && cs.attrib & ATTR.DB) throw new Fault(VEC.GP, err);
  if (!(cs.attrib & ATTR.P)) throw new Fault(VEC.NP, err);
  return cs;
}

/**
 * Checks of the SS popped by a return to `cpl` (IRET, RET far), with the 64-bit exception: a null
 * SS is allowed when the return goes to 64-bit code at CPL < 3 (APM vol. 3 IRET, RET far).
 */
export function returnStackSegment(cpu: Cpu, sel: number, cpl: number, to64: boolean): Segment {
  if (isNullSelector(sel)) {
    if (to64 && cpl < 3) return nullStack(cpu, sel, cpl);
    throw new Fault(VEC.GP, 0);
  }
  const err = sel & 0xfffc;
  if ((sel & 3) !== cpl) throw new Fault(VEC.GP, err);
  const ss = segmentFromDescriptor(sel, descriptorAt(cpu, sel, 0));
  if (isSystem(ss.attrib) || isCode(ss.attrib) || !(ss.attrib & ATTR.TYPE_RW) || dplOf(ss.attrib) !== cpl) throw new Fault(VEC.GP, err);
  if (!(ss.attrib & ATTR.P)) throw new Fault(VEC.SS, err);
  return ss;
}

/**
 * A null SS with RPL = `cpl`, as long mode loads it on a privilege change (APM vol. 2 8.9.3) and
 * as IRET/RET may load it. 64-bit mode ignores SS's hidden attributes except DPL; the model
 * keeps the old hidden part with DPL = cpl, so a later 64-bit push still works.
 */
export function nullStack(cpu: Cpu, sel: number, cpl: number): Segment {
  const old = cpu.seg[2]!;
  return { selector: (sel & 0xfffc) | cpl, base: 0n, limit: old.limit, attrib: (old.attrib & ~(3 << ATTR.DPL_SHIFT)) | (cpl << ATTR.DPL_SHIFT) };
}

/** The stack segment of a legacy-mode privilege change, read from a 32-bit TSS (APM vol. 2 12.2.5, 8.8.3). */
export function tssStack32(cpu: Cpu, cpl: number, ext: number): { ss: Segment; esp: bigint } {
  const type = cpu.tr.attrib & ATTR.TYPE_MASK;
  if (type !== 0x9 && type !== 0xb) throw new ModelStop(`stack switch through a 16-bit TSS (TR type ${type}) is not modelled`);
  const trErr = (cpu.tr.selector & 0xfffc) | ext;
  const espOff = 4 + 8 * cpl;
  if (espOff + 5 > cpu.tr.limit) throw new Fault(VEC.TS, trErr);
  const esp = cpu.readLinear(cpu.tr.base + BigInt(espOff), 4, 0);
  const sel = Number(cpu.readLinear(cpu.tr.base + BigInt(espOff + 4), 2, 0));
  if (isNullSelector(sel)) throw new Fault(VEC.TS, ext);
  const err = (sel & 0xfffc) | ext;
  if ((sel & 3) !== cpl) throw new Fault(VEC.TS, err);
  const ss = segmentFromDescriptor(sel, descriptorAt(cpu, sel, ext, VEC.TS));
  if (isSystem(ss.attrib) || isCode(ss.attrib) || !(ss.attrib & ATTR.TYPE_RW) || dplOf(ss.attrib) !== cpl) throw new Fault(VEC.TS, err);
  if (!(ss.attrib & ATTR.P)) throw new Fault(VEC.SS, err);
  return { ss, esp };
}

/** RSPn (n = 0–2) or ISTn (n = 1–7) of the 64-bit TSS (APM vol. 2 12.2.5, figure 12-8). */
export function tssStack64(cpu: Cpu, which: { rsp: number } | { ist: number }, ext: number): bigint {
  const off = 'rsp' in which ? 4 + 8 * which.rsp : 0x24 + 8 * (which.ist - 1);
  if (off + 7 > cpu.tr.limit) throw new Fault(VEC.TS, (cpu.tr.selector & 0xfffc) | ext);
  return cpu.readLinear(cpu.tr.base + BigInt(off), 8, 0);
}

/**
 * After a return to an outer (less privileged) level, data segment registers the new level may
 * not use are loaded with null (APM vol. 3 RET (far) and IRET: ES, DS, FS, GS whose descriptor
 * DPL < the new CPL, unless conforming code, become null).
 */
export function nullInaccessibleDataSegments(cpu: Cpu, cpl: number): void {
  for (const i of [0, 3, 4, 5]) {
    const s = cpu.seg[i]!;
    if (isNullSelector(s.selector)) continue;
    const conformingCode = isCode(s.attrib) && isConforming(s.attrib);
    if (!conformingCode && dplOf(s.attrib) < cpl) {
      cpu.seg[i] = { selector: 0, base: 0n, limit: 0, attrib: 0 };
    }
  }
}
