// The VMCB (APM vol. 2 15.5, appendix B) over physical memory, and the state VMRUN and #VMEXIT move
// between the processor and memory (15.5.1 "Saving Host State", "Loading Guest State"; 15.6).
//
// Every offset and bit comes from arch/svm.ts. The VMCB is accessed by physical address (15.5.1:
// "The VMCB is accessed by physical address"), so this module reads PhysicalMemory directly and
// never goes through paging.
//
// Segment registers: the VMCB keeps {u16 selector, u16 attrib, u32 limit, u64 base} with the limit
// fully expanded and attrib = descriptor bits 47:40 then 55:52 (15.5.1 "Segment State in the
// VMCB"). model/cpu/state.ts's Segment already keeps exactly that (byte-granular limit, attrib in
// the VMCB layout), so the conversion is field for field, plus the canonicalization of bases that
// VMRUN and #VMEXIT perform (15.5.1 "Canonicalization and Consistency Checks").
//
// The state moved (15.5.1, 15.6), exactly:
//   guest (VMCB save area ⇄ CPU): ES CS SS DS (selector and hidden part), GDTR IDTR, EFER CR0 CR2
//     CR3 CR4, DR6 DR7, RFLAGS RIP RSP RAX, CPL, and INTERRUPT_SHADOW (INT_STATE bit 0, control
//     area). V_TPR and V_IRQ are not moved: the model has no local APIC and no virtual interrupts.
//   host (CPU ⇄ VM_HSAVE_PA): see "Host save area" below.
// FS, GS, TR, LDTR and the syscall MSRs belong to VMLOAD/VMSAVE (15.5.2) and are left alone. GIF,
// the ASID, the intercepts, nested paging and EVENTINJ are the wiring step's (vmrun/vmexit).
//
// Host save area (implementation-specific: 15.5.1 "software must not rely on the format or
// contents of the host state save area"). The model's layout: the page at VM_HSAVE_PA holds a
// VMCB-format save area at the VMCB_SAVE offsets — ES CS SS DS with their hidden parts (so
// #VMEXIT reloads them without re-reading the host GDT, one of the two implementation choices
// 15.6 allows), GDTR, IDTR, EFER, CR0, CR3, CR4, RFLAGS, RIP (= the instruction after VMRUN), RSP,
// RAX. Nothing else is written there. CR2 is not saved (15.25.2: "CR2 is not replicated but is
// loaded by VMRUN": the host sees the guest's CR2 after #VMEXIT), nor DR6/DR7 (not in 15.5.1's
// list; 15.6 only says #VMEXIT "disables all breakpoints in the host DR7").

import type { Cpu } from '../cpu/cpu.ts';
import { ATTR, GPR, SEG, M64, type Segment, type TableRegister } from '../cpu/state.ts';
import type { PhysicalMemory } from '../memory.ts';
import { flushTlb } from '../paging.ts';
import { CR0, RFLAGS } from '../../arch/x86.ts';
import {
  EVENTINJ, INT_STATE, NESTED_CTL, VMCB, VMCB_SAVE, VMCB_SEG, parseEventInfo, type EventInfo,
} from '../../arch/svm.ts';

// ---- raw access --------------------------------------------------------------------------------------

/** A VMCB (or host save area) at physical address `pa`: little-endian fields at VMCB offsets. */
export class Vmcb {
  constructor(readonly mem: PhysicalMemory, readonly pa: number) {}

  u8(off: number): number { return this.mem.read8(this.pa + off); }
  u16(off: number): number { return this.mem.read16(this.pa + off); }
  u32(off: number): number { return this.mem.read32(this.pa + off); }
  u64(off: number): bigint { return this.mem.read64(this.pa + off); }
  set8(off: number, v: number): void { this.mem.write8(this.pa + off, v & 0xff); }
  set16(off: number, v: number): void { this.mem.write16(this.pa + off, v & 0xffff); }
  set32(off: number, v: number): void { this.mem.write32(this.pa + off, v >>> 0); }
  set64(off: number, v: bigint): void { this.mem.write64(this.pa + off, BigInt.asUintN(64, v)); }

  /** A segment register of the save area (offset VMCB_SAVE.ES …); the base is canonicalized. */
  segment(off: number): Segment {
    return {
      selector: this.u16(off + VMCB_SEG.SELECTOR),
      attrib: this.u16(off + VMCB_SEG.ATTRIB) & SEG_ATTRIB_BITS,
      limit: this.u32(off + VMCB_SEG.LIMIT),
      base: canonicalize(this.u64(off + VMCB_SEG.BASE)),
    };
  }
  setSegment(off: number, s: Segment): void {
    this.set16(off + VMCB_SEG.SELECTOR, s.selector);
    this.set16(off + VMCB_SEG.ATTRIB, s.attrib & SEG_ATTRIB_BITS);
    this.set32(off + VMCB_SEG.LIMIT, s.limit);
    this.set64(off + VMCB_SEG.BASE, s.base);
  }

  /** GDTR/IDTR: only limit (16 bits) and base are meaningful; selector and attrib are reserved. */
  table(off: number): TableRegister {
    return { limit: this.u32(off + VMCB_SEG.LIMIT) & 0xffff, base: this.u64(off + VMCB_SEG.BASE) };
  }
  setTable(off: number, t: TableRegister): void {
    this.set32(off + VMCB_SEG.LIMIT, t.limit & 0xffff);
    this.set64(off + VMCB_SEG.BASE, t.base);
  }

  // ---- EVENTINJ / EXITINTINFO (15.20, 15.7.2): one 64-bit layout ----------------------------

  eventInj(): bigint { return this.u64(VMCB.EVENT_INJ); }
  eventInjInfo(): EventInfo { return parseEventInfo(this.eventInj()); }
  setEventInj(v: bigint): void { this.set64(VMCB.EVENT_INJ, v); }
  exitIntInfo(): bigint { return this.u64(VMCB.EXIT_INT_INFO); }
  exitIntInfoInfo(): EventInfo { return parseEventInfo(this.exitIntInfo()); }
  setExitIntInfo(v: bigint): void { this.set64(VMCB.EXIT_INT_INFO, v); }

  // ---- the control area, as a record ---------------------------------------------------------------

  control(): VmcbControl {
    const insnLen = this.u8(VMCB.INSN_LEN);
    const insnBytes = new Uint8Array(15);
    for (let i = 0; i < 15; i++) insnBytes[i] = this.u8(VMCB.INSN_BYTES + i);
    return {
      interceptCr: this.u32(VMCB.INTERCEPT_CR),
      interceptDr: this.u32(VMCB.INTERCEPT_DR),
      interceptExceptions: this.u32(VMCB.INTERCEPT_EXCP),
      interceptMisc1: this.u32(VMCB.INTERCEPT_MISC1),
      interceptMisc2: this.u32(VMCB.INTERCEPT_MISC2),
      iopmBase: this.u64(VMCB.IOPM_BASE),
      msrpmBase: this.u64(VMCB.MSRPM_BASE),
      tscOffset: this.u64(VMCB.TSC_OFFSET),
      asid: this.u32(VMCB.ASID),
      tlbControl: this.u8(VMCB.TLB_CONTROL),
      intCtl: this.u64(VMCB.INT_CTL),
      intVector: this.u32(VMCB.INT_VECTOR),
      intState: this.u64(VMCB.INT_STATE),
      exitCode: this.u64(VMCB.EXIT_CODE),
      exitInfo1: this.u64(VMCB.EXIT_INFO_1),
      exitInfo2: this.u64(VMCB.EXIT_INFO_2),
      exitIntInfo: this.u64(VMCB.EXIT_INT_INFO),
      nestedCtl: this.u64(VMCB.NESTED_CTL),
      eventInj: this.u64(VMCB.EVENT_INJ),
      nCr3: this.u64(VMCB.NCR3),
      cleanBits: this.u32(VMCB.CLEAN),
      nextRip: this.u64(VMCB.NEXT_RIP),
      insnLen,
      insnBytes,
    };
  }

  /** Write the given control fields (the others are left as they are). */
  setControl(c: Partial<VmcbControl>): void {
    const w32 = (off: number, v: number | undefined): void => { if (v !== undefined) this.set32(off, v); };
    const w64 = (off: number, v: bigint | undefined): void => { if (v !== undefined) this.set64(off, v); };
    w32(VMCB.INTERCEPT_CR, c.interceptCr);
    w32(VMCB.INTERCEPT_DR, c.interceptDr);
    w32(VMCB.INTERCEPT_EXCP, c.interceptExceptions);
    w32(VMCB.INTERCEPT_MISC1, c.interceptMisc1);
    w32(VMCB.INTERCEPT_MISC2, c.interceptMisc2);
    w64(VMCB.IOPM_BASE, c.iopmBase);
    w64(VMCB.MSRPM_BASE, c.msrpmBase);
    w64(VMCB.TSC_OFFSET, c.tscOffset);
    w32(VMCB.ASID, c.asid);
    if (c.tlbControl !== undefined) this.set8(VMCB.TLB_CONTROL, c.tlbControl);
    w64(VMCB.INT_CTL, c.intCtl);
    w32(VMCB.INT_VECTOR, c.intVector);
    w64(VMCB.INT_STATE, c.intState);
    w64(VMCB.EXIT_CODE, c.exitCode);
    w64(VMCB.EXIT_INFO_1, c.exitInfo1);
    w64(VMCB.EXIT_INFO_2, c.exitInfo2);
    w64(VMCB.EXIT_INT_INFO, c.exitIntInfo);
    w64(VMCB.NESTED_CTL, c.nestedCtl);
    w64(VMCB.EVENT_INJ, c.eventInj);
    w64(VMCB.NCR3, c.nCr3);
    w32(VMCB.CLEAN, c.cleanBits);
    w64(VMCB.NEXT_RIP, c.nextRip);
    if (c.insnLen !== undefined) this.set8(VMCB.INSN_LEN, c.insnLen);
    if (c.insnBytes !== undefined) c.insnBytes.forEach((b, i) => { if (i < 15) this.set8(VMCB.INSN_BYTES + i, b); });
  }

  // ---- the save area, as a record ----------------------------------------------------------------------

  save(): VmcbSave {
    return {
      es: this.segment(VMCB_SAVE.ES),
      cs: this.segment(VMCB_SAVE.CS),
      ss: this.segment(VMCB_SAVE.SS),
      ds: this.segment(VMCB_SAVE.DS),
      fs: this.segment(VMCB_SAVE.FS),
      gs: this.segment(VMCB_SAVE.GS),
      gdtr: this.table(VMCB_SAVE.GDTR),
      ldtr: this.segment(VMCB_SAVE.LDTR),
      idtr: this.table(VMCB_SAVE.IDTR),
      tr: this.segment(VMCB_SAVE.TR),
      cpl: this.u8(VMCB_SAVE.CPL),
      efer: this.u64(VMCB_SAVE.EFER),
      cr4: this.u64(VMCB_SAVE.CR4),
      cr3: this.u64(VMCB_SAVE.CR3),
      cr0: this.u64(VMCB_SAVE.CR0),
      dr7: this.u64(VMCB_SAVE.DR7),
      dr6: this.u64(VMCB_SAVE.DR6),
      rflags: this.u64(VMCB_SAVE.RFLAGS),
      rip: this.u64(VMCB_SAVE.RIP),
      rsp: this.u64(VMCB_SAVE.RSP),
      rax: this.u64(VMCB_SAVE.RAX),
      cr2: this.u64(VMCB_SAVE.CR2),
      gPat: this.u64(VMCB_SAVE.G_PAT),
    };
  }

  /** Write the given save-area fields (the others are left as they are). */
  setSave(s: Partial<VmcbSave>): void {
    const segs: [keyof VmcbSave, number][] = [
      ['es', VMCB_SAVE.ES], ['cs', VMCB_SAVE.CS], ['ss', VMCB_SAVE.SS], ['ds', VMCB_SAVE.DS],
      ['fs', VMCB_SAVE.FS], ['gs', VMCB_SAVE.GS], ['ldtr', VMCB_SAVE.LDTR], ['tr', VMCB_SAVE.TR],
    ];
    for (const [k, off] of segs) { const v = s[k] as Segment | undefined; if (v) this.setSegment(off, v); }
    if (s.gdtr) this.setTable(VMCB_SAVE.GDTR, s.gdtr);
    if (s.idtr) this.setTable(VMCB_SAVE.IDTR, s.idtr);
    if (s.cpl !== undefined) this.set8(VMCB_SAVE.CPL, s.cpl);
    const regs: [keyof VmcbSave, number][] = [
      ['efer', VMCB_SAVE.EFER], ['cr4', VMCB_SAVE.CR4], ['cr3', VMCB_SAVE.CR3], ['cr0', VMCB_SAVE.CR0],
      ['dr7', VMCB_SAVE.DR7], ['dr6', VMCB_SAVE.DR6], ['rflags', VMCB_SAVE.RFLAGS], ['rip', VMCB_SAVE.RIP],
      ['rsp', VMCB_SAVE.RSP], ['rax', VMCB_SAVE.RAX], ['cr2', VMCB_SAVE.CR2], ['gPat', VMCB_SAVE.G_PAT],
    ];
    for (const [k, off] of regs) { const v = s[k] as bigint | undefined; if (v !== undefined) this.set64(off, v); }
  }

  // ---- a few control bits by name ----------------------------------------------------------------------

  /** NESTED_CTL.NP_ENABLE (15.25.3). */
  get npEnabled(): boolean {
    return ((this.u64(VMCB.NESTED_CTL) >> BigInt(NESTED_CTL.NP_ENABLE_BIT)) & 1n) !== 0n;
  }
  /** INT_STATE bit 0, the guest's interrupt shadow (15.21.5). */
  get interruptShadow(): boolean {
    return ((this.u64(VMCB.INT_STATE) >> BigInt(INT_STATE.SHADOW_BIT)) & 1n) !== 0n;
  }
  set interruptShadow(on: boolean) {
    const bit = 1n << BigInt(INT_STATE.SHADOW_BIT);
    const v = this.u64(VMCB.INT_STATE);
    this.set64(VMCB.INT_STATE, on ? v | bit : v & ~bit);
  }
}

export interface VmcbControl {
  interceptCr: number;
  interceptDr: number;
  interceptExceptions: number;
  interceptMisc1: number;
  interceptMisc2: number;
  iopmBase: bigint;
  msrpmBase: bigint;
  tscOffset: bigint;
  asid: number;
  tlbControl: number;
  intCtl: bigint;
  intVector: number;
  intState: bigint;
  exitCode: bigint;
  exitInfo1: bigint;
  exitInfo2: bigint;
  exitIntInfo: bigint;
  nestedCtl: bigint;
  eventInj: bigint;
  nCr3: bigint;
  cleanBits: number;
  nextRip: bigint;
  /** Bits 3:0: number of guest instruction bytes fetched (15.8.4). */
  insnLen: number;
  insnBytes: Uint8Array;
}

export interface VmcbSave {
  es: Segment; cs: Segment; ss: Segment; ds: Segment; fs: Segment; gs: Segment;
  gdtr: TableRegister; ldtr: Segment; idtr: TableRegister; tr: Segment;
  cpl: number;
  efer: bigint; cr4: bigint; cr3: bigint; cr0: bigint; dr7: bigint; dr6: bigint;
  rflags: bigint; rip: bigint; rsp: bigint; rax: bigint; cr2: bigint; gPat: bigint;
}

/** The 12 attribute bits of the VMCB segment format (type, S, DPL, P, AVL, L, D/B, G). */
const SEG_ATTRIB_BITS = 0xfff;

/** Sign-extend from bit 47 (15.5.1: VMRUN and #VMEXIT canonicalize segment bases; no LA57 in the model). */
export function canonicalize(v: bigint): bigint {
  return BigInt.asUintN(64, BigInt.asIntN(48, v));
}

/** The segment registers VMRUN/#VMEXIT move, in CPU index order with their save-area offsets. */
const MOVED_SEGMENTS: readonly [number, number][] = [
  [SEG.ES, VMCB_SAVE.ES], [SEG.CS, VMCB_SAVE.CS], [SEG.SS, VMCB_SAVE.SS], [SEG.DS, VMCB_SAVE.DS],
];

/** RFLAGS bits that exist (APM vol. 2 3.1.6): 21:0 less the reserved 15, 5, 3; bit 1 reads 1. */
const RFLAGS_DEFINED = Number(
  RFLAGS.CF | RFLAGS.PF | RFLAGS.AF | RFLAGS.ZF | RFLAGS.SF | RFLAGS.TF | RFLAGS.IF | RFLAGS.DF | RFLAGS.OF |
  RFLAGS.IOPL_MASK | RFLAGS.NT | RFLAGS.RF | RFLAGS.VM | RFLAGS.AC | RFLAGS.VIF | RFLAGS.VIP | RFLAGS.ID,
);

/** DR7 L0–L3 and G0–G3, the breakpoint enables (APM vol. 2 13.1.1.5). */
const DR7_ENABLES = 0xffn;

/** Paging or mode may have changed under the CPU: drop the TLB and the decoded instructions. */
function worldSwitched(cpu: Cpu): void {
  flushTlb(cpu);
  cpu.flushDecodeCache();
}

// ---- guest state: VMCB save area ⇄ CPU (15.5.1 "Loading Guest State", 15.6) ---------------------

/**
 * #VMEXIT's write-back of the guest state (15.6: "the same subset of processor state as is loaded
 * by the VMRUN instruction, including … the INTERRUPT_SHADOW"). CPL goes to its own field (15.5.1:
 * "Retrieve the CPL from the CPL field in the VMCB, not from any segment DPL").
 */
export function saveGuestState(cpu: Cpu, vmcb: Vmcb): void {
  for (const [i, off] of MOVED_SEGMENTS) vmcb.setSegment(off, cpu.seg[i]!);
  vmcb.setTable(VMCB_SAVE.GDTR, cpu.gdtr);
  vmcb.setTable(VMCB_SAVE.IDTR, cpu.idtr);
  vmcb.set64(VMCB_SAVE.EFER, cpu.efer);
  vmcb.set64(VMCB_SAVE.CR0, cpu.cr0);
  vmcb.set64(VMCB_SAVE.CR2, cpu.cr2);
  vmcb.set64(VMCB_SAVE.CR3, cpu.cr3);
  vmcb.set64(VMCB_SAVE.CR4, cpu.cr4);
  vmcb.set64(VMCB_SAVE.DR6, cpu.dr[6]!);
  vmcb.set64(VMCB_SAVE.DR7, cpu.dr[7]!);
  vmcb.set64(VMCB_SAVE.RFLAGS, BigInt(cpu.rflags));
  vmcb.set64(VMCB_SAVE.RIP, cpu.rip);
  vmcb.set64(VMCB_SAVE.RSP, cpu.gpr[GPR.RSP]!);
  vmcb.set64(VMCB_SAVE.RAX, cpu.gpr[GPR.RAX]!);
  vmcb.set8(VMCB_SAVE.CPL, cpu.cpl);
  vmcb.interruptShadow = cpu.interruptShadow;
}

/**
 * VMRUN's load of the guest state (15.5.1 "Loading Guest State"). Run the consistency checks
 * (checks.ts) on the VMCB first: this function loads whatever is there. Rules applied here:
 *  - segment bases are canonicalized (15.5.1 "Canonicalization and Consistency Checks");
 *  - CPL: 0 in real mode (CR0.PE = 0), 3 in virtual-8086 mode (RFLAGS.VM = 1), else the VMCB's
 *    CPL field (15.5.1);
 *  - RFLAGS: the model's RFLAGS holds only the defined bits (3.1.6), bit 1 reads 1 — what VMRUN does
 *    with reserved RFLAGS bits in the VMCB is unspecified (they are not among 15.5.1's checks);
 *  - DR6/DR7 are loaded as the VMCB holds them (their bits 63:32 are checked by checks.ts; whether
 *    VMRUN forces the fixed-1 bits of 31:0 is unspecified);
 *  - EFER is loaded as is, LMA included (whether VMRUN recomputes LMA from LME and CR0.PG is not
 *    said in 15.5.1; svmconf's cases keep them consistent).
 * The TLB and the decode cache are dropped (the address space changed; the model's TLB is not
 * tagged by ASID).
 */
export function loadGuestState(cpu: Cpu, vmcb: Vmcb): void {
  for (const [i, off] of MOVED_SEGMENTS) cpu.seg[i] = vmcb.segment(off);
  cpu.gdtr = vmcb.table(VMCB_SAVE.GDTR);
  cpu.idtr = vmcb.table(VMCB_SAVE.IDTR);
  cpu.efer = vmcb.u64(VMCB_SAVE.EFER);
  cpu.cr0 = vmcb.u64(VMCB_SAVE.CR0);
  cpu.cr2 = vmcb.u64(VMCB_SAVE.CR2);
  cpu.cr3 = vmcb.u64(VMCB_SAVE.CR3);
  cpu.cr4 = vmcb.u64(VMCB_SAVE.CR4);
  cpu.dr[6] = vmcb.u64(VMCB_SAVE.DR6);
  cpu.dr[7] = vmcb.u64(VMCB_SAVE.DR7);
  cpu.rflags = (Number(vmcb.u64(VMCB_SAVE.RFLAGS) & 0x3f_ffffn) & RFLAGS_DEFINED) | Number(RFLAGS.FIXED1);
  cpu.rip = vmcb.u64(VMCB_SAVE.RIP);
  cpu.nextRip = cpu.rip;
  cpu.gpr[GPR.RSP] = vmcb.u64(VMCB_SAVE.RSP);
  cpu.gpr[GPR.RAX] = vmcb.u64(VMCB_SAVE.RAX);
  if ((cpu.cr0 & CR0.PE) === 0n) cpu.cpl = 0;
  else if ((BigInt(cpu.rflags) & RFLAGS.VM) !== 0n) cpu.cpl = 3;
  else cpu.cpl = vmcb.u8(VMCB_SAVE.CPL) & 3;
  cpu.interruptShadow = vmcb.interruptShadow;
  worldSwitched(cpu);
}

// ---- host state: CPU ⇄ VM_HSAVE_PA (15.5.1 "Saving Host State", 15.6) -------------------------------------

/**
 * VMRUN's save of the host state into the host save area (layout: header of this file). `nextRip`
 * is where the host resumes after #VMEXIT: the instruction following the VMRUN (15.5.1 "CS.SEL,
 * NEXT_RIP"); by default `cpu.nextRip`, as it is while the VMRUN handler runs.
 */
export function saveHostState(cpu: Cpu, hsave: Vmcb, nextRip: bigint = cpu.nextRip): void {
  for (const [i, off] of MOVED_SEGMENTS) hsave.setSegment(off, cpu.seg[i]!);
  hsave.setTable(VMCB_SAVE.GDTR, cpu.gdtr);
  hsave.setTable(VMCB_SAVE.IDTR, cpu.idtr);
  hsave.set64(VMCB_SAVE.EFER, cpu.efer);
  hsave.set64(VMCB_SAVE.CR0, cpu.cr0);
  hsave.set64(VMCB_SAVE.CR3, cpu.cr3);
  hsave.set64(VMCB_SAVE.CR4, cpu.cr4);
  hsave.set64(VMCB_SAVE.RFLAGS, BigInt(cpu.rflags));
  hsave.set64(VMCB_SAVE.RIP, nextRip);
  hsave.set64(VMCB_SAVE.RSP, cpu.gpr[GPR.RSP]!);
  hsave.set64(VMCB_SAVE.RAX, cpu.gpr[GPR.RAX]!);
}

/**
 * #VMEXIT's reload of the host state (15.6): the saved registers, then "Forces CR0.PE = 1,
 * RFLAGS.VM = 0", "Sets the host CPL to zero", "Disables all breakpoints in the host DR7 register"
 * (the model clears the enables L0–L3/G0–G3 and keeps the rest of DR7 — which bits besides the
 * enables #VMEXIT touches is unspecified). CR2, DR6 and LDTR keep the guest's values (15.25.2, 15.6:
 * "the processor still contains the guest value for LDTR"). The host's consistency checks and the
 * #GP for a host RIP beyond CS limit (15.6) are the wiring step's.
 */
export function loadHostState(cpu: Cpu, hsave: Vmcb): void {
  for (const [i, off] of MOVED_SEGMENTS) cpu.seg[i] = hsave.segment(off);
  cpu.gdtr = hsave.table(VMCB_SAVE.GDTR);
  cpu.idtr = hsave.table(VMCB_SAVE.IDTR);
  cpu.efer = hsave.u64(VMCB_SAVE.EFER);
  cpu.cr0 = hsave.u64(VMCB_SAVE.CR0) | CR0.PE;
  cpu.cr3 = hsave.u64(VMCB_SAVE.CR3);
  cpu.cr4 = hsave.u64(VMCB_SAVE.CR4);
  cpu.rflags = (Number(hsave.u64(VMCB_SAVE.RFLAGS) & 0x3f_ffffn) & RFLAGS_DEFINED & ~Number(RFLAGS.VM)) | Number(RFLAGS.FIXED1);
  cpu.rip = hsave.u64(VMCB_SAVE.RIP);
  cpu.nextRip = cpu.rip;
  cpu.gpr[GPR.RSP] = hsave.u64(VMCB_SAVE.RSP);
  cpu.gpr[GPR.RAX] = hsave.u64(VMCB_SAVE.RAX);
  cpu.cpl = 0;
  cpu.dr[7] = cpu.dr[7]! & ~DR7_ENABLES & M64;
  worldSwitched(cpu);
}

/** EVENTINJ.V (15.20). */
export function eventInjValid(vmcb: Vmcb): boolean {
  return (vmcb.eventInj() & EVENTINJ.V) !== 0n;
}

/** Whether a segment in VMCB format is present (15.5.1: "the descriptor P bit is used to signal NULL segments"). */
export function segmentPresent(s: Segment): boolean {
  return (s.attrib & ATTR.P) !== 0;
}
