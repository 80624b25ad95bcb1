// Control and debug registers (APM vol. 2 3.1 "System-Control Registers", 13.1.1 debug registers;
// vol. 3 MOV CRn, MOV DRn) and the segment-register forms of MOV and POP (vol. 3 MOV (segment), POP).
//
// iced names MOV CRn/DRn/Sreg "Mov" and POP Sreg "Pop" like their general-purpose forms: those
// forms are registered here with defineForm (registry.ts) and movControl/popSreg are exported for
// a caller that prefers to dispatch itself. MOV r/m16, Sreg (reading a selector) is data.ts's.

import type { Cpu } from '../cpu/cpu.ts';
import { CR0_PG, EFER_LMA, EFER_LME } from '../cpu/cpu.ts';
import { Fault, ModelStop, gp, ud } from '../cpu/fault.ts';
import { ATTR, GPR, M64, SEG } from '../cpu/state.ts';
import type { Insn } from '../decode.ts';
import { flushTlb } from '../paging.ts';
import { cpuidOf } from '../profile.ts';
import { loadDataSegment } from '../segmentation.ts';
import { CR0, CR4, VEC } from '../../arch/x86.ts';
import { EFER } from '../../arch/msr.ts';
import { CPUID_ADDRESS_SIZES, CPUID_LEAF } from '../../arch/cpuid.ts';
import { defineForm } from './registry.ts';
import { requireCpl0 } from './privilege.ts';

/** CR0 bits that exist; the others of 31:0 are reserved and read as zero (APM vol. 2 3.1.1). */
const CR0_DEFINED = CR0.PE | CR0.MP | CR0.EM | CR0.TS | CR0.ET | CR0.NE | CR0.WP | CR0.AM | CR0.NW | CR0.CD | CR0.PG;
/**
 * CR4 bits the profile's features allow: VME PVI TSD DE PSE PAE MCE PGE PCE OSFXSR OSXMMEXCPT.
 * The default profile reports no CPUID leaf 7 (FSGSBASE, SMEP, …) and no XSAVE, so the rest of
 * CR4 is reserved: setting it is #GP(0) (APM vol. 2 3.1.3).
 */
const CR4_ALLOWED = 0x7ffn;

// ---- control registers (APM vol. 2 3.1; vol. 3 MOV CRn) ------------------------------------------------

/** Value of CRn as MOV reg, CRn reads it; #UD for a CR that does not exist. */
export function readCr(cpu: Cpu, n: number): bigint {
  switch (n) {
    case 0: return cpu.cr0;
    case 2: return cpu.cr2;
    case 3: return cpu.cr3;
    case 4: return cpu.cr4;
    case 8: return cpu.cr8;
    default: throw ud();
  }
}

/** Anything that changes translation: drop the TLB and the decoded instructions (keyed by linear address). */
export function pagingChanged(cpu: Cpu): void {
  flushTlb(cpu);
  cpu.flushDecodeCache();
}

/**
 * MOV CRn, reg with the checks of APM vol. 3 MOV CRn and vol. 2 3.1, 14.6:
 *   CR0: bits 63:32 set, PG without PE, NW without CD → #GP(0); PG 0→1 with EFER.LME = 1 needs
 *        CR4.PAE = 1 and CS.L = 0 (else #GP(0)) and activates long mode (EFER.LMA = 1, 14.6.1);
 *        PG 1→0 in 64-bit mode is #GP(0), in compatibility mode it leaves long mode (LMA = 0, 14.6.2).
 *        ET reads 1.
 *   CR3: in long mode bits 63:52 and those above the physical-address width are reserved (#GP(0)).
 *   CR4: reserved bits (see CR4_ALLOWED), or clearing PAE while long mode is active → #GP(0).
 *   CR8: bits 63:4 reserved (#GP(0)).
 * Writes that change translation flush the TLB and the decode cache.
 */
export function writeCr(cpu: Cpu, n: number, value: bigint): void {
  switch (n) {
    case 0: {
      if (value >> 32n) throw gp(0);
      const old = cpu.cr0;
      let v = (value & CR0_DEFINED) | CR0.ET;
      if (v & CR0.PG && !(v & CR0.PE)) throw gp(0);
      if (v & CR0.NW && !(v & CR0.CD)) throw gp(0);
      const pgOn = (v & CR0_PG) !== 0n && (old & CR0_PG) === 0n;
      const pgOff = (v & CR0_PG) === 0n && (old & CR0_PG) !== 0n;
      if (pgOn && cpu.efer & EFER_LME) {
        if (!(cpu.cr4 & CR4.PAE)) throw gp(0);
        if (cpu.seg[SEG.CS]!.attrib & ATTR.L) throw gp(0);
        cpu.efer |= EFER_LMA;
      }
      if (pgOff && cpu.efer & EFER_LMA) {
        if (cpu.mode64) throw gp(0);
        cpu.efer &= ~EFER_LMA;
      }
      cpu.cr0 = v;
      if (v !== old) pagingChanged(cpu);
      return;
    }
    case 2:
      cpu.cr2 = value;
      return;
    case 3: {
      if (cpu.longMode) {
        const width = BigInt(cpuidOf(cpu.profile, CPUID_LEAF.ADDRESS_SIZES, 0).eax & CPUID_ADDRESS_SIZES.PHYS_WIDTH_MASK || CPUID_ADDRESS_SIZES.DEFAULT_PHYS_WIDTH);
        if (value >> width) throw gp(0);
      }
      cpu.cr3 = cpu.longMode ? value : value & 0xffff_ffffn;
      pagingChanged(cpu); // every CR3 load flushes the (non-global) TLB entries (APM vol. 2 5.5.2)
      return;
    }
    case 4: {
      if (value & ~CR4_ALLOWED) throw gp(0);
      if (cpu.longMode && !(value & CR4.PAE)) throw gp(0);
      const old = cpu.cr4;
      cpu.cr4 = value;
      if (value !== old) pagingChanged(cpu);
      return;
    }
    case 8:
      if (value >> 4n) throw gp(0);
      cpu.cr8 = value;
      return;
    default:
      throw ud();
  }
}

// ---- debug registers (APM vol. 2 13.1.1; vol. 3 MOV DRn) -------------------------------------------------

const DR6_FIXED1 = 0xffff_0ff0n; // bits 31:16 and 11:4 read 1, bit 12 reads 0
const DR6_WRITABLE = 0xe00fn; // BT BS BD, B3–B0
const DR7_FIXED1 = 0x400n;
const DR7_WRITABLE = 0xffff_23ffn; // R/W, LEN, GD, GE LE, G3–L0
const DR7_GD = 1n << 13n;
const DR6_BD = 1n << 13n;

/**
 * The debug register MOV DRn names: DR4/DR5 alias DR6/DR7 when CR4.DE = 0 and are #UD when
 * CR4.DE = 1; DR8–15 #UD. With DR7.GD set, any MOV DRn is a #DB fault with DR6.BD set and GD
 * cleared (general detect, APM vol. 2 13.1.1.5).
 */
function drIndex(cpu: Cpu, n: number): number {
  if (n >= 8) throw ud();
  if (n === 4 || n === 5) {
    if (cpu.cr4 & CR4.DE) throw ud();
    n += 2;
  }
  if (cpu.dr[7]! & DR7_GD) {
    cpu.dr[6] = cpu.dr[6]! | DR6_BD;
    cpu.dr[7] = cpu.dr[7]! & ~DR7_GD;
    throw new Fault(VEC.DB);
  }
  return n;
}

export function readDr(cpu: Cpu, n: number): bigint {
  return cpu.dr[drIndex(cpu, n)]!;
}

/** DR6/DR7: bits 63:32 set → #GP(0); fixed bits keep their values. DR0–DR3 take any value. */
export function writeDr(cpu: Cpu, n: number, value: bigint): void {
  const i = drIndex(cpu, n);
  if (i === 6 || i === 7) {
    if (value >> 32n) throw gp(0);
    cpu.dr[i] = i === 6 ? (value & DR6_WRITABLE) | DR6_FIXED1 : (value & DR7_WRITABLE) | DR7_FIXED1;
  } else {
    cpu.dr[i] = value;
  }
}

// ---- MOV CRn / DRn / Sreg, POP Sreg -------------------------------------------------------------------------

/**
 * MOV to/from CRn and DRn, and MOV Sreg, r/m16 (CPL 0 for CR/DR: #GP(0)). The register operand is
 * 64 bits in 64-bit mode and 32 bits elsewhere (the decoder gives its size). MOV SS holds events
 * for one instruction (interrupt shadow: APM vol. 3 MOV (segment)). Returns false for other MOV forms.
 */
export function movControl(cpu: Cpu, insn: Insn): boolean {
  const dst = insn.ops[0];
  const src = insn.ops[1];
  if (!dst || !src) return false;
  if (dst.kind === 'reg' && dst.reg.kind === 'seg') {
    const selector = Number(cpu.readOp(src) & 0xffffn);
    loadDataSegment(cpu, dst.reg.index, selector);
    if (dst.reg.index === SEG.SS) cpu.interruptShadow = true;
    return true;
  }
  if (dst.kind === 'reg' && (dst.reg.kind === 'cr' || dst.reg.kind === 'dr')) {
    requireCpl0(cpu);
    if (src.kind !== 'reg') return false;
    const v = cpu.getGpr(src.reg.index, src.size);
    if (dst.reg.kind === 'cr') writeCr(cpu, dst.reg.index, v);
    else writeDr(cpu, dst.reg.index, v);
    return true;
  }
  if (src.kind === 'reg' && (src.reg.kind === 'cr' || src.reg.kind === 'dr')) {
    requireCpl0(cpu);
    if (dst.kind !== 'reg') return false;
    const v = src.reg.kind === 'cr' ? readCr(cpu, src.reg.index) : readDr(cpu, src.reg.index);
    cpu.setGpr(dst.reg.index, dst.size, v & (dst.size === 8 ? M64 : 0xffff_ffffn));
    return true;
  }
  return false;
}

/**
 * POP ES/SS/DS/FS/GS: the selector is popped at the operand size (iced: Popw_/Popd_/Popq_) and
 * loaded with the checks of MOV Sreg; if the load faults, rSP is left as it was. POP SS sets the
 * interrupt shadow. Returns false for other POP forms.
 */
export function popSreg(cpu: Cpu, insn: Insn): boolean {
  const m = /^Pop([wdq])_(ES|SS|DS|FS|GS)$/.exec(insn.code);
  const op = insn.ops[0];
  if (!m || !op || op.kind !== 'reg' || op.reg.kind !== 'seg') return false;
  const size = m[1] === 'w' ? 2 : m[1] === 'd' ? 4 : 8;
  const old = cpu.gpr[GPR.RSP]!;
  const selector = Number(cpu.pop(size) & 0xffffn);
  try {
    loadDataSegment(cpu, op.reg.index, selector);
  } catch (e) {
    cpu.gpr[GPR.RSP] = old;
    throw e;
  }
  if (op.reg.index === SEG.SS) cpu.interruptShadow = true;
  return true;
}

function movSystemForm(cpu: Cpu, insn: Insn): void {
  if (!movControl(cpu, insn)) throw new ModelStop(`${insn.code} is not a system MOV form`);
}
for (const code of [
  'Mov_r32_cr', 'Mov_r64_cr', 'Mov_cr_r32', 'Mov_cr_r64',
  'Mov_r32_dr', 'Mov_r64_dr', 'Mov_dr_r32', 'Mov_dr_r64',
  'Mov_Sreg_rm16', 'Mov_Sreg_r32m16', 'Mov_Sreg_r64m16',
]) defineForm(code, movSystemForm);

function popSystemForm(cpu: Cpu, insn: Insn): void {
  if (!popSreg(cpu, insn)) throw new ModelStop(`${insn.code} is not a POP Sreg form`);
}
for (const code of ['Popw_ES', 'Popd_ES', 'Popw_SS', 'Popd_SS', 'Popw_DS', 'Popd_DS', 'Popw_FS', 'Popd_FS', 'Popq_FS', 'Popw_GS', 'Popd_GS', 'Popq_GS']) {
  defineForm(code, popSystemForm);
}
