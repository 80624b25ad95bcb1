// Segmentation (APM vol. 2 ch. 4): descriptor-table reads and the hidden state a selector load
// produces. Descriptor-table accesses are implicit supervisor accesses whatever the CPL
// (APM vol. 2 5.6: system-table accesses are supervisor accesses), which is why they bypass Cpu.read.

import { ATTR, SEG, type Segment } from './cpu/state.ts';
import { isCanonical, type Cpu } from './cpu/cpu.ts';
import { Fault } from './cpu/fault.ts';
import { VEC } from '../arch/x86.ts';
import { cpuidOf } from './profile.ts';

/** Selector fields (APM vol. 2 4.5.1). */
export const SELECTOR = { RPL_MASK: 3, TI: 4, INDEX_MASK: 0xfff8 } as const;

export interface Descriptor {
  /** Bytes 0–7 of the descriptor. */
  low: bigint;
  /** Bytes 8–15 for system descriptors in long mode (gates, TSS, LDT), else 0. */
  high: bigint;
}

/** The descriptor a selector names, or throw #GP(selector) when it lies beyond the table limit. */
export function readDescriptor(cpu: Cpu, selector: number, wide = false, errorVector: number = VEC.GP): Descriptor {
  const table = selector & SELECTOR.TI ? cpu.ldtr : undefined;
  const base = table ? table.base : cpu.gdtr.base;
  const limit = table ? table.limit : cpu.gdtr.limit;
  const offset = selector & SELECTOR.INDEX_MASK;
  const size = wide ? 16 : 8;
  // a TI = 1 selector while LDTR is null (unusable) is outside every table
  if (table && !(table.attrib & ATTR.P)) throw new Fault(errorVector, selector & 0xfffc);
  if (offset + size - 1 > limit) throw new Fault(errorVector, selector & 0xfffc);
  const lin = base + BigInt(offset);
  const low = cpu.readLinear(lin, 8, 0);
  const high = wide ? cpu.readLinear(lin + 8n, 8, 0) : 0n;
  return { low, high };
}

/** Attributes in the VMCB layout (descriptor bits 47:40 and 55:52) of a descriptor's low quadword. */
export function attribOf(low: bigint): number {
  return Number((low >> 40n) & 0xffn) | (Number((low >> 52n) & 0xfn) << 8);
}

/** Hidden state of a code/data descriptor: base, byte-granular limit, attributes (APM vol. 2 4.7). */
export function segmentFromDescriptor(selector: number, d: Descriptor): Segment {
  const low = d.low;
  const base = ((low >> 16n) & 0xff_ffffn) | (((low >> 56n) & 0xffn) << 24n);
  let limit = Number((low & 0xffffn) | (((low >> 48n) & 0xfn) << 16n));
  const attrib = attribOf(low);
  if (attrib & ATTR.G) limit = limit * 4096 + 0xfff;
  return { selector, base, limit: limit >>> 0, attrib };
}

/** 64-bit system descriptor base (TSS, LDT: APM vol. 2 4.8.3). */
export function systemBase(d: Descriptor): bigint {
  const low = d.low;
  return ((low >> 16n) & 0xff_ffffn) | (((low >> 56n) & 0xffn) << 24n) | ((d.high & 0xffff_ffffn) << 32n);
}

export function dplOf(attrib: number): number {
  return (attrib >> ATTR.DPL_SHIFT) & 3;
}

export function isCode(attrib: number): boolean {
  return (attrib & ATTR.S) !== 0 && (attrib & ATTR.TYPE_CODE) !== 0;
}

// ---- selector loads (APM vol. 2 4.5–4.11; vol. 3 MOV(Sreg), POP, LTR, LLDT) -----------------------
//
// Errors carry the selector with RPL cleared (bits 15:3 index, bit 2 TI; EXT = IDT = 0: APM vol. 2
// 8.4.1). Loads set the descriptor's accessed bit in its table (a supervisor write: it may #PF),
// as the processor does the first time a descriptor is loaded (APM vol. 2 4.7.2).

export function isNullSelector(selector: number): boolean {
  return (selector & 0xfffc) === 0;
}

export function isPresent(attrib: number): boolean {
  return (attrib & ATTR.P) !== 0;
}

export function isConforming(attrib: number): boolean {
  return isCode(attrib) && (attrib & ATTR.TYPE_DC) !== 0;
}

/** Writable data segment (S = 1, code = 0, W = 1). */
export function isWritableData(attrib: number): boolean {
  return (attrib & (ATTR.S | ATTR.TYPE_CODE | ATTR.TYPE_RW)) === (ATTR.S | ATTR.TYPE_RW);
}

/** Linear address of the descriptor a selector names (no limit check: readDescriptor did it). */
function descriptorLinear(cpu: Cpu, selector: number): bigint {
  const base = selector & SELECTOR.TI ? cpu.ldtr.base : cpu.gdtr.base;
  return base + BigInt(selector & SELECTOR.INDEX_MASK);
}

/** Set the accessed bit (type bit 0) of a code/data descriptor in its table if it is clear. */
export function setAccessed(cpu: Cpu, selector: number, d: Descriptor): void {
  const type = Number((d.low >> 40n) & 0xffn);
  if (type & ATTR.TYPE_ACCESSED) return;
  cpu.writeLinear(descriptorLinear(cpu, selector) + 5n, 1, BigInt(type | ATTR.TYPE_ACCESSED), 0);
  d.low |= 1n << 40n;
}

function install(cpu: Cpu, segIndex: number, s: Segment): void {
  const r = cpu.seg[segIndex]!;
  r.selector = s.selector;
  r.base = s.base;
  r.limit = s.limit;
  r.attrib = s.attrib;
}

/** Loading a null selector: the register becomes unusable (P = 0 in the hidden attributes). */
function installNull(cpu: Cpu, segIndex: number, selector: number): void {
  const r = cpu.seg[segIndex]!;
  r.selector = selector;
  r.attrib = 0;
  // With NullSelectClearsBase (CPUID Fn8000_0021 EAX[6]) the base and limit are cleared too; earlier
  // AMD processors keep them (visible only through FS/GS in 64-bit mode).
  if (cpuidOf(cpu.profile, 0x8000_0021, 0).eax & (1 << 6)) {
    r.base = 0n;
    r.limit = 0;
  }
}

/** Real mode (and the model has no virtual-8086 mode): base = selector × 16, the rest unchanged (APM vol. 2 1.2.4). */
export function loadRealModeSegment(cpu: Cpu, segIndex: number, selector: number): void {
  const r = cpu.seg[segIndex]!;
  r.selector = selector & 0xffff;
  r.base = BigInt((selector & 0xffff) << 4);
}

/**
 * MOV Sreg / POP Sreg in protected or long mode for DS, ES, FS, GS and SS (APM vol. 2 4.10.1,
 * vol. 3 "MOV (segment)", "POP"): #GP(selector) for a selector beyond its table, a system or
 * execute-only code descriptor, or a privilege violation; #NP(selector) for a not-present one.
 * SS goes through loadStackSegment. In real mode only the base changes.
 */
export function loadDataSegment(cpu: Cpu, segIndex: number, selector: number): void {
  if (segIndex === SEG.CS) throw new Fault(VEC.UD);
  if (!cpu.protectedMode) {
    loadRealModeSegment(cpu, segIndex, selector);
    return;
  }
  if (segIndex === SEG.SS) {
    loadStackSegment(cpu, selector, cpu.cpl);
    return;
  }
  if (isNullSelector(selector)) {
    installNull(cpu, segIndex, selector);
    return;
  }
  const err = selector & 0xfffc;
  const d = readDescriptor(cpu, selector);
  const attrib = attribOf(d.low);
  if (!(attrib & ATTR.S)) throw new Fault(VEC.GP, err);
  if (isCode(attrib) && !(attrib & ATTR.TYPE_RW)) throw new Fault(VEC.GP, err);
  if (!isConforming(attrib)) {
    const dpl = dplOf(attrib);
    if ((selector & 3) > dpl || cpu.cpl > dpl) throw new Fault(VEC.GP, err);
  }
  if (!isPresent(attrib)) throw new Fault(VEC.NP, err);
  setAccessed(cpu, selector, d);
  install(cpu, segIndex, segmentFromDescriptor(selector, d));
}

/**
 * Load SS for privilege level `cpl` (MOV SS, POP SS, and — with `errorVector` #TS for a stack
 * switch — far transfers and event delivery): APM vol. 2 4.10.2 "Stack-segment privilege checks".
 *   - null selector: allowed only where `nullAllowed` (64-bit mode at CPL < 3, RPL = CPL: APM vol. 3
 *     MOV (segment), IRET); else errorVector(0). The hidden part becomes DPL = cpl, not present.
 *   - RPL ≠ cpl, not a writable data segment, DPL ≠ cpl: errorVector(selector);
 *   - not present: #SS(selector).
 * Default nullAllowed: the CPU is in 64-bit mode and cpl < 3 (callers that change mode pass it).
 */
export function loadStackSegment(cpu: Cpu, selector: number, cpl: number, errorVector: number = VEC.GP, nullAllowed = cpu.mode64 && cpl < 3): void {
  if (isNullSelector(selector)) {
    if (!nullAllowed || cpl === 3 || (selector & 3) !== cpl) throw new Fault(errorVector, 0);
    const r = cpu.seg[SEG.SS]!;
    r.selector = selector;
    r.attrib = cpl << ATTR.DPL_SHIFT;
    return;
  }
  const err = selector & 0xfffc;
  if ((selector & 3) !== cpl) throw new Fault(errorVector, err);
  const d = readDescriptor(cpu, selector, false, errorVector);
  const attrib = attribOf(d.low);
  if (!isWritableData(attrib) || dplOf(attrib) !== cpl) throw new Fault(errorVector, err);
  if (!isPresent(attrib)) throw new Fault(VEC.SS, err);
  setAccessed(cpu, selector, d);
  install(cpu, SEG.SS, segmentFromDescriptor(selector, d));
}

// ---- code segments (for far JMP/CALL/RET, IRET and event delivery: isa/interrupts.ts) ------------------

/**
 * The descriptor must be a code segment (#GP(selector)) and, in long mode, not have L = 1 with
 * D = 1 (reserved, APM vol. 2 4.8.1). A null selector is #GP(0): check before reading the descriptor.
 */
function checkCode(cpu: Cpu, selector: number, attrib: number, errorVector: number): void {
  if (!isCode(attrib)) throw new Fault(errorVector, selector & 0xfffc);
  if (cpu.longMode && (attrib & ATTR.L) && (attrib & ATTR.DB)) throw new Fault(errorVector, selector & 0xfffc);
}

/**
 * Far JMP / CALL directly to a code segment (APM vol. 2 4.11.1, "Direct control transfers"):
 * conforming: DPL ≤ CPL; non-conforming: RPL ≤ CPL and DPL = CPL; else #GP(selector); not present
 * → #NP(selector). The CPL does not change: load with loadCodeSegment(cpu, selector, d, cpu.cpl).
 */
export function checkCodeForJump(cpu: Cpu, selector: number, d: Descriptor): void {
  const attrib = attribOf(d.low);
  const err = selector & 0xfffc;
  checkCode(cpu, selector, attrib, VEC.GP);
  const dpl = dplOf(attrib);
  if (isConforming(attrib) ? dpl > cpu.cpl : (selector & 3) > cpu.cpl || dpl !== cpu.cpl) throw new Fault(VEC.GP, err);
  if (!isPresent(attrib)) throw new Fault(VEC.NP, err);
}

/**
 * Far RET / IRET to a code segment (APM vol. 2 4.11.3 "Return control transfers", vol. 3 RET (far), IRET):
 * RPL < CPL, conforming with DPL > RPL, non-conforming with DPL ≠ RPL → #GP(selector); not present
 * → #NP(selector). Returns the new CPL (= RPL).
 */
export function checkCodeForReturn(cpu: Cpu, selector: number, d: Descriptor): number {
  const attrib = attribOf(d.low);
  const err = selector & 0xfffc;
  const rpl = selector & 3;
  checkCode(cpu, selector, attrib, VEC.GP);
  if (rpl < cpu.cpl) throw new Fault(VEC.GP, err);
  const dpl = dplOf(attrib);
  if (isConforming(attrib) ? dpl > rpl : dpl !== rpl) throw new Fault(VEC.GP, err);
  if (!isPresent(attrib)) throw new Fault(VEC.NP, err);
  return rpl;
}

/**
 * The code segment a gate (interrupt, trap, call gate) points to (APM vol. 2 4.11.2, 8.7 / 8.9 for interrupt gates):
 * code descriptor with DPL ≤ CPL, else errorVector(selector) (#GP; delivery passes its own rules);
 * not present → #NP(selector). Returns the new CPL: conforming keeps the CPL, non-conforming
 * runs at DPL. The RPL of the gate's selector is ignored.
 */
export function checkCodeForGate(cpu: Cpu, selector: number, d: Descriptor, errorVector: number = VEC.GP): number {
  const attrib = attribOf(d.low);
  const err = selector & 0xfffc;
  checkCode(cpu, selector, attrib, errorVector);
  // in long mode a gate leads to 64-bit code only (L = 1, D = 0: APM vol. 2 8.9.2, 4.8.2)
  if (cpu.longMode && (!(attrib & ATTR.L) || attrib & ATTR.DB)) throw new Fault(errorVector, err);
  const dpl = dplOf(attrib);
  if (dpl > cpu.cpl) throw new Fault(errorVector, err);
  if (!isPresent(attrib)) throw new Fault(VEC.NP, err);
  return isConforming(attrib) ? cpu.cpl : dpl;
}

/**
 * Install CS from a checked descriptor and make `cpl` current: CS.RPL = cpl, the accessed bit is
 * set, and the decode cache is dropped when the CPL changes (fetch permissions depend on it).
 * 64-bit vs compatibility mode follows from L (and EFER.LMA); the hidden base/limit are kept as
 * loaded (64-bit mode ignores them: Cpu.linear, Cpu.fetch).
 */
export function loadCodeSegment(cpu: Cpu, selector: number, d: Descriptor, cpl: number): void {
  setAccessed(cpu, selector, d);
  install(cpu, SEG.CS, segmentFromDescriptor((selector & 0xfffc) | cpl, d));
  if (cpu.cpl !== cpl) cpu.flushDecodeCache();
  cpu.cpl = cpl;
}

/**
 * After a return to an outer level (RET far, IRET): ES, DS, FS, GS holding a data or non-conforming
 * code segment with DPL < the new CPL are loaded with the null selector (APM vol. 2 4.11.3 and
 * vol. 3 RET/IRET pseudocode).
 */
export function nullifyDataSegmentsForCpl(cpu: Cpu, cpl: number): void {
  for (const i of [SEG.ES, SEG.DS, SEG.FS, SEG.GS]) {
    const s = cpu.seg[i]!;
    if (isNullSelector(s.selector) && !isPresent(s.attrib)) continue;
    if (!isConforming(s.attrib) && dplOf(s.attrib) < cpl) installNull(cpu, i, 0);
  }
}

// ---- TR and LDTR (APM vol. 2 4.8.3, 12.2.5; vol. 3 LTR, LLDT) --------------------------------------------

const TYPE_LDT = 0x2;
const TYPE_TSS16_AVAIL = 0x1;
const TYPE_TSS_AVAIL = 0x9;
const TYPE_BUSY = 0x2;

/** System descriptor in long mode: 16 bytes; bits 12:8 of the upper half's second dword must be 0. */
function readSystemDescriptor(cpu: Cpu, selector: number): Descriptor {
  const err = selector & 0xfffc;
  if (selector & SELECTOR.TI) throw new Fault(VEC.GP, err);
  const d = readDescriptor(cpu, selector, cpu.longMode);
  if (cpu.longMode && ((d.high >> 40n) & 0x1fn) !== 0n) throw new Fault(VEC.GP, err);
  return d;
}

function systemSegment(cpu: Cpu, selector: number, d: Descriptor): Segment {
  const s = segmentFromDescriptor(selector, d);
  if (cpu.longMode) {
    s.base = systemBase(d);
    if (!isCanonical(s.base)) throw new Fault(VEC.GP, selector & 0xfffc);
  }
  return s;
}

/**
 * LTR: null → #GP(0); TI = 1, not an available TSS (long mode: 64-bit TSS, type 9; legacy: type 1
 * or 9), non-canonical base → #GP(selector); not present → #NP(selector). The descriptor is marked
 * busy in the GDT and TR gets its hidden state (with the busy type).
 */
export function loadTaskRegister(cpu: Cpu, selector: number): void {
  if (isNullSelector(selector)) throw new Fault(VEC.GP, 0);
  const err = selector & 0xfffc;
  const d = readSystemDescriptor(cpu, selector);
  const attrib = attribOf(d.low);
  const type = attrib & ATTR.TYPE_MASK;
  const ok = !(attrib & ATTR.S) && (type === TYPE_TSS_AVAIL || (!cpu.longMode && type === TYPE_TSS16_AVAIL));
  if (!ok) throw new Fault(VEC.GP, err);
  if (!isPresent(attrib)) throw new Fault(VEC.NP, err);
  const s = systemSegment(cpu, selector, d);
  cpu.writeLinear(descriptorLinear(cpu, selector) + 5n, 1, BigInt((Number(d.low >> 40n) & 0xff) | TYPE_BUSY), 0);
  s.attrib |= TYPE_BUSY;
  cpu.tr = s;
}

/**
 * LLDT: a null selector makes LDTR unusable (later TI = 1 references #GP); TI = 1 or not an LDT
 * descriptor (type 2) → #GP(selector); not present → #NP(selector).
 */
export function loadLdtr(cpu: Cpu, selector: number): void {
  if (isNullSelector(selector)) {
    cpu.ldtr = { selector, base: 0n, limit: 0, attrib: 0 };
    return;
  }
  const err = selector & 0xfffc;
  const d = readSystemDescriptor(cpu, selector);
  const attrib = attribOf(d.low);
  if (attrib & ATTR.S || (attrib & ATTR.TYPE_MASK) !== TYPE_LDT) throw new Fault(VEC.GP, err);
  if (!isPresent(attrib)) throw new Fault(VEC.NP, err);
  cpu.ldtr = systemSegment(cpu, selector, d);
}
