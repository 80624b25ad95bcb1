// Segmentation (APM vol. 2 ch. 4): descriptor-table reads and the hidden state a selector load
// produces. Descriptor-table accesses are implicit supervisor accesses whatever the CPL
// (APM vol. 2 5.6: system-table accesses are supervisor accesses), which is why they bypass Cpu.read.

import { ATTR, SEG, type Segment } from './cpu/state.ts';
import { isCanonical, type Cpu } from './cpu/cpu.ts';
import { Fault } from './cpu/fault.ts';
import { VEC } from '../arch/x86.ts';
import { CPUID_EXT21_EAX, CPUID_LEAF } from '../arch/cpuid.ts';
import { cpuidOf } from './profile.ts';

/** Selector fields (APM vol. 2 4.5.1). */
export const SELECTOR = { RPL_MASK: 3, TI: 4, INDEX_MASK: 0xfff8 } as const;

export interface Descriptor {
  /** Bytes 0–7 of the descriptor. */
  low: bigint;
  /** Bytes 8–15 for system descriptors in long mode (gates, TSS, LDT), else 0. */
  high: bigint;
}

/** Options of readDescriptor: the descriptor size, and the error a selector outside its table raises. */
export interface DescriptorRead {
  /** 16 bytes: a long-mode system descriptor (gates, TSS, LDT: APM vol. 2 4.8.3). Default 8. */
  wide?: boolean;
  /** The exception for a selector outside its table: #GP (default), #TS for a stack switch's SS. */
  vector?: number;
  /** EXT bit of the error code: 1 while delivering an external event or exception (APM vol. 2 8.4.1). */
  ext?: number;
}

/**
 * Selector error code (APM vol. 2 8.4.1): index and TI from the selector, IDT = 0, EXT = `ext`
 * (0 for an instruction's own checks, 1 when the error arises while delivering an event that is
 * not a software interrupt: events/classes.ts extBit).
 */
export function selectorError(selector: number, ext = 0): number {
  return (selector & 0xfffc) | ext;
}

/**
 * The descriptor a selector names in the GDT or LDT (APM vol. 2 4.5.1, 4.6), or `vector`(selector)
 * (#GP unless told) when it lies beyond the table limit or names the LDT while LDTR is null.
 */
export function readDescriptor(cpu: Cpu, selector: number, { wide = false, vector = VEC.GP, ext = 0 }: DescriptorRead = {}): Descriptor {
  const table = selector & SELECTOR.TI ? cpu.ldtr : undefined;
  const base = table ? table.base : cpu.gdtr.base;
  const limit = table ? table.limit : cpu.gdtr.limit;
  const offset = selector & SELECTOR.INDEX_MASK;
  const size = wide ? 16 : 8;
  // a TI = 1 selector while LDTR is null (unusable) is outside every table (APM vol. 3 LLDT)
  if (table && !(table.attrib & ATTR.P)) throw new Fault(vector, selectorError(selector, ext));
  if (offset + size - 1 > limit) throw new Fault(vector, selectorError(selector, ext));
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
// One set of checks for every way a selector reaches a segment register: MOV/POP Sreg (below),
// far JMP/CALL/RET and IRET (isa/interrupts.ts), interrupt and exception delivery
// (events/delivery.ts). Errors carry the selector with RPL cleared and, for errors raised while an
// event is delivered, the EXT bit (selectorError, APM vol. 2 8.4.1): the helpers take `ext`.
//
// Accessed bit. The processor sets a code or data descriptor's A bit in its table when it loads the
// descriptor into a segment register (APM vol. 2 4.7.2 for CS, 4.7.3 for DS, ES, FS, GS and SS).
// Every load in the model does it, through setAccessed: MOV/POP Sreg, far JMP/CALL/RET, IRET and
// event delivery. The write comes once every check of the transfer (and, for delivery and far
// CALL, every stack write) has succeeded, and before any register changes: a transfer that faults
// leaves its descriptors alone, and a #PF on the table page leaves the registers as they were.
// Transfers that load CS and SS together mark both before loading either. Null selectors have no
// descriptor and mark nothing.

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

/**
 * Set the accessed bit (type bit 0) of a code/data descriptor in its table if it is clear (APM
 * vol. 2 4.7.2, 4.7.3): a supervisor write of the type byte, which may #PF. `d` is updated too, so
 * a second call for the same load writes nothing.
 */
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
  if (cpuidOf(cpu.profile, CPUID_LEAF.EXT_FEATURES_2, 0).eax & (1 << CPUID_EXT21_EAX.NULL_SELECT_CLEARS_BASE)) {
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
 * Load a checked code/data descriptor into a data or stack segment register: the accessed bit,
 * then the hidden state (APM vol. 2 4.7.3). The selector is stored as given (RPL included).
 */
export function loadDescriptor(cpu: Cpu, segIndex: number, selector: number, d: Descriptor): void {
  setAccessed(cpu, selector, d);
  install(cpu, segIndex, segmentFromDescriptor(selector, d));
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
  const err = selectorError(selector);
  const d = readDescriptor(cpu, selector);
  const attrib = attribOf(d.low);
  if (!(attrib & ATTR.S)) throw new Fault(VEC.GP, err);
  if (isCode(attrib) && !(attrib & ATTR.TYPE_RW)) throw new Fault(VEC.GP, err);
  if (!isConforming(attrib)) {
    const dpl = dplOf(attrib);
    if ((selector & 3) > dpl || cpu.cpl > dpl) throw new Fault(VEC.GP, err);
  }
  if (!isPresent(attrib)) throw new Fault(VEC.NP, err);
  loadDescriptor(cpu, segIndex, selector, d);
}

// ---- stack segments (MOV/POP SS, far RET, IRET, event delivery) ---------------------------------------

/**
 * Checks of a non-null SS selector for privilege level `cpl` (APM vol. 2 4.10.2 "Stack-segment
 * privilege checks"; vol. 3 MOV (segment), RET (far), IRET, INT for the SS of a stack switch):
 *   - RPL ≠ cpl, beyond its table, not a writable data segment, DPL ≠ cpl: vector(selector), where
 *     vector is #GP, or #TS for the SS an interrupt takes from the TSS (APM vol. 2 8.7.3);
 *   - not present: #SS(selector).
 * Error codes carry `ext`. Returns the descriptor, for loadDescriptor when the transfer commits.
 */
export function checkStackSegment(cpu: Cpu, selector: number, cpl: number, vector: number = VEC.GP, ext = 0): Descriptor {
  const err = selectorError(selector, ext);
  if ((selector & 3) !== cpl) throw new Fault(vector, err);
  const d = readDescriptor(cpu, selector, { vector, ext });
  const attrib = attribOf(d.low);
  if (!isWritableData(attrib) || dplOf(attrib) !== cpl) throw new Fault(vector, err);
  if (!isPresent(attrib)) throw new Fault(VEC.SS, err);
  return d;
}

/**
 * MOV SS / POP SS at privilege level `cpl` (APM vol. 3 MOV (segment), POP; vol. 2 4.10.2): a null
 * selector is allowed only in 64-bit mode at CPL < 3 with RPL = CPL, else #GP(0); its hidden part
 * then has DPL = cpl and is not present. Other selectors: checkStackSegment, then loadDescriptor.
 */
export function loadStackSegment(cpu: Cpu, selector: number, cpl: number): void {
  if (isNullSelector(selector)) {
    if (!cpu.mode64 || cpl === 3 || (selector & 3) !== cpl) throw new Fault(VEC.GP, 0);
    const r = cpu.seg[SEG.SS]!;
    r.selector = selector;
    r.attrib = cpl << ATTR.DPL_SHIFT;
    return;
  }
  loadDescriptor(cpu, SEG.SS, selector, checkStackSegment(cpu, selector, cpl));
}

/**
 * The SS a far RET or IRET pops (APM vol. 3 RET (far), IRET): a null selector is allowed when the
 * return goes to 64-bit code at CPL < 3 — the result is then undefined: load it with loadNullStack —
 * and is #GP(0) otherwise (the RPL of a null selector is not checked); other selectors go through
 * checkStackSegment with #GP.
 */
export function checkStackForReturn(cpu: Cpu, selector: number, cpl: number, to64: boolean): Descriptor | undefined {
  if (isNullSelector(selector)) {
    if (to64 && cpl < 3) return undefined;
    throw new Fault(VEC.GP, 0);
  }
  return checkStackSegment(cpu, selector, cpl);
}

/**
 * SS := the null selector with RPL = `cpl`, as a control transfer loads it in long mode: an
 * interrupt or exception that raises the privilege (APM vol. 2 8.9.3), a far RET or IRET to 64-bit
 * code (checkStackForReturn). 64-bit mode ignores SS's hidden attributes except DPL; the model
 * keeps the old limit and attributes with DPL = cpl and clears the base, so a later 64-bit push
 * still works. (MOV SS with a null selector, loadStackSegment, leaves DPL alone in the attributes
 * instead: the manual does not say what the hidden part holds, and the two are kept as they were.)
 */
export function loadNullStack(cpu: Cpu, cpl: number): void {
  const r = cpu.seg[SEG.SS]!;
  r.selector = cpl;
  r.base = 0n;
  r.attrib = (r.attrib & ~(3 << ATTR.DPL_SHIFT)) | (cpl << ATTR.DPL_SHIFT);
}

// ---- code segments (far JMP/CALL/RET and IRET: isa/interrupts.ts; event delivery: events/delivery.ts) --

/**
 * The descriptor of a code-segment target (APM vol. 2 4.11; vol. 3 JMP (far), CALL (far), RET
 * (far), IRET, INT): a null selector is #GP(0) — #GP(EXT) during event delivery — before any table
 * read; beyond its table, #GP(selector | EXT).
 */
export function readCodeDescriptor(cpu: Cpu, selector: number, ext = 0): Descriptor {
  if (isNullSelector(selector)) throw new Fault(VEC.GP, ext);
  return readDescriptor(cpu, selector, { ext });
}

/**
 * The descriptor must be a code segment (#GP(selector)) and, in long mode, not have L = 1 with
 * D = 1 (reserved, APM vol. 2 4.8.1).
 */
function checkCode(cpu: Cpu, selector: number, attrib: number, ext: number): void {
  if (!isCode(attrib)) throw new Fault(VEC.GP, selectorError(selector, ext));
  if (cpu.longMode && (attrib & ATTR.L) && (attrib & ATTR.DB)) throw new Fault(VEC.GP, selectorError(selector, ext));
}

/**
 * Far JMP / CALL directly to a code segment (APM vol. 2 4.11.1, "Direct control transfers"):
 * conforming: DPL ≤ CPL; non-conforming: RPL ≤ CPL and DPL = CPL; else #GP(selector); not present
 * → #NP(selector). The CPL does not change: load with loadCodeSegment(cpu, selector, d, cpu.cpl).
 * Call gates, task gates and TSS descriptors are the caller's to recognise first (they are not
 * code segments: #GP(selector) here).
 */
export function checkCodeForJump(cpu: Cpu, selector: number, d: Descriptor): void {
  const attrib = attribOf(d.low);
  const err = selectorError(selector);
  checkCode(cpu, selector, attrib, 0);
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
  const err = selectorError(selector);
  const rpl = selector & 3;
  checkCode(cpu, selector, attrib, 0);
  if (rpl < cpu.cpl) throw new Fault(VEC.GP, err);
  const dpl = dplOf(attrib);
  if (isConforming(attrib) ? dpl > rpl : dpl !== rpl) throw new Fault(VEC.GP, err);
  if (!isPresent(attrib)) throw new Fault(VEC.NP, err);
  return rpl;
}

/**
 * The code segment an interrupt or trap gate points to (APM vol. 2 8.7.3, 8.9.2; vol. 3 INT; the
 * same rules as a call gate's target, 4.11.2): a code descriptor with DPL ≤ CPL, in long mode
 * 64-bit code (L = 1, D = 0: 8.9.2, 4.8.2), else #GP(selector | ext); not present → #NP(selector |
 * ext). Returns the new CPL: conforming keeps the CPL, non-conforming runs at DPL. The RPL of the
 * gate's selector is ignored.
 */
export function checkCodeForGate(cpu: Cpu, selector: number, d: Descriptor, ext = 0): number {
  const attrib = attribOf(d.low);
  const err = selectorError(selector, ext);
  checkCode(cpu, selector, attrib, ext);
  if (cpu.longMode && (!(attrib & ATTR.L) || attrib & ATTR.DB)) throw new Fault(VEC.GP, err);
  const dpl = dplOf(attrib);
  if (dpl > cpu.cpl) throw new Fault(VEC.GP, err);
  if (!isPresent(attrib)) throw new Fault(VEC.NP, err);
  return isConforming(attrib) ? cpu.cpl : dpl;
}

/**
 * Install CS from a checked descriptor and make `cpl` current (far JMP/CALL/RET, IRET, event
 * delivery): the accessed bit is set (APM vol. 2 4.7.2), CS.RPL = cpl, and the decode cache is
 * dropped when the CPL changes (fetch permissions depend on it: a cached instruction was fetched
 * with the old CPL's page checks). 64-bit vs compatibility mode follows from L (and EFER.LMA); the
 * hidden base/limit are kept as loaded (64-bit mode ignores them: Cpu.linear, Cpu.fetch).
 */
export function loadCodeSegment(cpu: Cpu, selector: number, d: Descriptor, cpl: number): void {
  setAccessed(cpu, selector, d);
  install(cpu, SEG.CS, segmentFromDescriptor((selector & 0xfffc) | cpl, d));
  if (cpu.cpl !== cpl) cpu.flushDecodeCache();
  cpu.cpl = cpl;
}

/**
 * After a return to an outer level (RET far, IRET): ES, DS, FS, GS holding a data or non-conforming
 * code segment with DPL < the new CPL are loaded with the null selector (APM vol. 2 4.11.3; vol. 3
 * RET (far), IRET: "can't use lower DPL data segment at higher CPL"). Registers that already hold
 * a null selector are skipped; a nullified one is cleared whole — selector, base, limit and
 * attributes — whatever NullSelectClearsBase says (installNull, for MOV, follows it).
 */
export function nullifyDataSegmentsForCpl(cpu: Cpu, cpl: number): void {
  for (const i of [SEG.ES, SEG.DS, SEG.FS, SEG.GS]) {
    const s = cpu.seg[i]!;
    if (isNullSelector(s.selector)) continue;
    if (!isConforming(s.attrib) && dplOf(s.attrib) < cpl) {
      s.selector = 0;
      s.base = 0n;
      s.limit = 0;
      s.attrib = 0;
    }
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
  const d = readDescriptor(cpu, selector, { wide: cpu.longMode });
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
