// System instructions (APM vol. 3 ch. 4 "System Instruction Reference"; vol. 2 ch. 3 "System
// Resources", ch. 4 segmentation, ch. 14 long-mode activation): descriptor-table registers, TR and
// LDTR, control and debug registers, MSRs, CPUID, port I/O, interrupt flag, RFLAGS, HLT, INVLPG,
// cache control, and segment-register loads.
//
// iced names MOV CRn/DRn/Sreg "Mov" and POP Sreg "Pop" like their general-purpose forms: those
// forms are registered here with defineForm (registry.ts) and movControl/popSreg are exported for
// a caller that prefers to dispatch itself. MOV r/m16, Sreg (reading a selector) is data.ts's.
// SVM instructions (CLGI, STGI, VMRUN, VMMCALL, VMLOAD, VMSAVE) and far transfers are elsewhere.
//
// Privilege: "CPL 0 only" instructions raise #GP(0) at CPL > 0 in protected mode (real mode is
// CPL 0). Virtual-8086 mode is not modelled.

import type { Cpu } from '../cpu/cpu.ts';
import { CR0_PG, EFER_LMA, EFER_LME, EFER_NXE, EFER_SVME, isCanonical } from '../cpu/cpu.ts';
import { Fault, ModelStop, gp, ud } from '../cpu/fault.ts';
import { F } from '../cpu/flags.ts';
import { ATTR, GPR, M64, SEG } from '../cpu/state.ts';
import type { Insn, Operand } from '../decode.ts';
import { flushTlb } from '../paging.ts';
import { cpuidOf } from '../profile.ts';
import { loadDataSegment, loadLdtr, loadTaskRegister } from '../segmentation.ts';
import { VEC } from '../../arch/x86.ts';
import { EFER, MSR, PAT_RESET, VM_CR } from '../../arch/msr.ts';
import { CPUID_ADDRESS_SIZES, CPUID_EXT_ECX, CPUID_EXT_EDX, CPUID_LEAF } from '../../arch/cpuid.ts';
import { define, defineForm } from './registry.ts';

// ---- helpers ------------------------------------------------------------------------------------------

function requireCpl0(cpu: Cpu): void {
  if (cpu.protectedMode && cpu.cpl !== 0) throw gp(0);
}

/** LTR, STR, LLDT, SLDT are not recognised in real mode (APM vol. 3: #UD in real mode). */
function requireProtected(cpu: Cpu): void {
  if (!cpu.protectedMode) throw ud();
}

function iopl(cpu: Cpu): number {
  return (cpu.rflags >> 12) & 3;
}

function memOp(insn: Insn): Extract<Operand, { kind: 'mem' }> {
  const op = insn.ops[0];
  if (!op || op.kind !== 'mem') throw ud();
  return op;
}

/** The effective address `ea + n`, wrapped to the address size of the operand. */
function eaPlus(op: Extract<Operand, { kind: 'mem' }>, ea: bigint, n: number): bigint {
  return BigInt.asUintN(op.addrSize * 8, ea + BigInt(n));
}

const CR0 = {
  PE: 1n, MP: 1n << 1n, EM: 1n << 2n, TS: 1n << 3n, ET: 1n << 4n, NE: 1n << 5n,
  WP: 1n << 16n, AM: 1n << 18n, NW: 1n << 29n, CD: 1n << 30n, PG: 1n << 31n,
} as const;
/** CR0 bits that exist; the others of 31:0 are reserved and read as zero (APM vol. 2 3.1.1). */
const CR0_DEFINED = CR0.PE | CR0.MP | CR0.EM | CR0.TS | CR0.ET | CR0.NE | CR0.WP | CR0.AM | CR0.NW | CR0.CD | CR0.PG;
const CR4_DE = 1n << 3n;
const CR4_PAE = 1n << 5n;
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
function pagingChanged(cpu: Cpu): void {
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
        if (!(cpu.cr4 & CR4_PAE)) throw gp(0);
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
      if (cpu.longMode && !(value & CR4_PAE)) throw gp(0);
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
    if (cpu.cr4 & CR4_DE) throw ud();
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

// ---- descriptor-table registers (APM vol. 3 LGDT, LIDT, SGDT, SIDT) ----------------------------------------

/**
 * LGDT/LIDT m16&32 / m16&64: limit (2 bytes) then base — 8 bytes in 64-bit mode (non-canonical →
 * #GP(0)), else 4 bytes, of which a 16-bit operand size uses 24 bits. CPL 0 only.
 */
function loadTableRegister(which: 'gdtr' | 'idtr') {
  return (cpu: Cpu, insn: Insn): void => {
    requireCpl0(cpu);
    const op = memOp(insn);
    const ea = cpu.effectiveAddress(op);
    const limit = Number(cpu.read(op.seg, ea, 2));
    let base: bigint;
    if (cpu.mode64) {
      base = cpu.read(op.seg, eaPlus(op, ea, 2), 8);
      if (!isCanonical(base)) throw gp(0);
    } else {
      base = cpu.read(op.seg, eaPlus(op, ea, 2), 4);
      if (insn.code.endsWith('_16')) base &= 0xff_ffffn;
    }
    cpu[which] = { base, limit };
  };
}

/** SGDT/SIDT: limit then base, 8 bytes of base in 64-bit mode, 4 elsewhere (all 32 bits, whatever the operand size). */
function storeTableRegister(which: 'gdtr' | 'idtr') {
  return (cpu: Cpu, insn: Insn): void => {
    const op = memOp(insn);
    const ea = cpu.effectiveAddress(op);
    const r = cpu[which];
    const baseSize = cpu.mode64 ? 8 : 4;
    // check both parts before writing either (a fault leaves memory unchanged)
    cpu.linear(op.seg, eaPlus(op, ea, 2), baseSize);
    cpu.write(op.seg, ea, 2, BigInt(r.limit & 0xffff));
    cpu.write(op.seg, eaPlus(op, ea, 2), baseSize, r.base & (baseSize === 8 ? M64 : 0xffff_ffffn));
  };
}

define('Lgdt', loadTableRegister('gdtr'));
define('Lidt', loadTableRegister('idtr'));
define('Sgdt', storeTableRegister('gdtr'));
define('Sidt', storeTableRegister('idtr'));

// ---- TR, LDTR (APM vol. 3 LTR, STR, LLDT, SLDT) ---------------------------------------------------------

function selectorOperand(cpu: Cpu, insn: Insn): number {
  const op = insn.ops[0]!;
  return Number((op.kind === 'mem' ? cpu.read(op.seg, cpu.effectiveAddress(op), 2) : cpu.readOp(op)) & 0xffffn);
}

/** STR/SLDT: a register destination gets the selector zero-extended to its size, memory gets 16 bits. */
function storeSelector(cpu: Cpu, insn: Insn, selector: number): void {
  const op = insn.ops[0]!;
  if (op.kind === 'mem') cpu.write(op.seg, cpu.effectiveAddress(op), 2, BigInt(selector));
  else if (op.kind === 'reg') cpu.setGpr(op.reg.index, op.size, BigInt(selector));
  else throw ud();
}

define('Ltr', (cpu, insn) => {
  requireProtected(cpu);
  requireCpl0(cpu);
  loadTaskRegister(cpu, selectorOperand(cpu, insn));
});
define('Str', (cpu, insn) => {
  requireProtected(cpu);
  storeSelector(cpu, insn, cpu.tr.selector);
});
define('Lldt', (cpu, insn) => {
  requireProtected(cpu);
  requireCpl0(cpu);
  loadLdtr(cpu, selectorOperand(cpu, insn));
});
define('Sldt', (cpu, insn) => {
  requireProtected(cpu);
  storeSelector(cpu, insn, cpu.ldtr.selector);
});

// ---- MSRs (APM vol. 2 appendix A; vol. 3 RDMSR, WRMSR) -------------------------------------------------------


/** The time-stamp counter: one tick per retired instruction, plus what WRMSR(TSC) set (stored as an offset). */
export function readTsc(cpu: Cpu): bigint {
  return BigInt.asUintN(64, BigInt(cpu.instructions) + (cpu.msr.get(MSR.TSC) ?? 0n));
}

/** EFER bits the profile lets software set (APM vol. 2 3.1.7; CPUID Fn8000_0001). */
function eferWritable(cpu: Cpu): bigint {
  const ext = cpuidOf(cpu.profile, CPUID_LEAF.EXT_FEATURES, 0);
  let m = 0n;
  if (ext.edx & (1 << CPUID_EXT_EDX.SYSCALL)) m |= EFER.SCE;
  if (ext.edx & (1 << CPUID_EXT_EDX.LM)) m |= EFER_LME;
  if (ext.edx & (1 << CPUID_EXT_EDX.NX)) m |= EFER_NXE;
  // SVME: with SVM in CPUID (Fn8000_0001 ECX[2]) and not disabled by VM_CR.SVMDIS (APM vol. 2 15.4)
  if (ext.ecx & (1 << CPUID_EXT_ECX.SVM) && !((cpu.msr.get(MSR.VM_CR) ?? 0n) & VM_CR.SVMDIS)) m |= EFER_SVME;
  return m;
}

/** RDMSR of `index`: #GP(0) for an MSR the model does not have. */
export function readMsr(cpu: Cpu, index: number): bigint {
  switch (index) {
    case MSR.TSC: return readTsc(cpu);
    case MSR.EFER: return cpu.efer;
    case MSR.FS_BASE: return cpu.seg[SEG.FS]!.base;
    case MSR.GS_BASE: return cpu.seg[SEG.GS]!.base;
    case MSR.PAT: return cpu.msr.get(index) ?? PAT_RESET;
    case MSR.STAR: case MSR.LSTAR: case MSR.CSTAR: case MSR.SFMASK: case MSR.KERNEL_GS_BASE:
    case MSR.VM_CR: case MSR.VM_HSAVE_PA:
      return cpu.msr.get(index) ?? 0n;
    default: throw gp(0);
  }
}

function canonical(v: bigint): bigint {
  if (!isCanonical(v)) throw gp(0);
  return v;
}

/**
 * WRMSR of `index`: #GP(0) for unknown MSRs and reserved values —
 *   EFER: bits the profile lacks; LME changed while CR0.PG = 1 (APM vol. 2 14.6.1). LMA is read-only
 *         (the written bit is ignored). A change flushes the TLB (NXE changes the walk).
 *   FS/GS/KERNEL_GS base, LSTAR, CSTAR: non-canonical; SFMASK: bits 63:32;
 *   PAT: a type other than 0, 1, 4, 5, 6, 7 in any byte (APM vol. 2 7.8.1);
 *   VM_HSAVE_PA: bits 11:0 set (4 KiB aligned, APM vol. 2 15.30.4); VM_CR: bits outside 4:0.
 */
export function writeMsr(cpu: Cpu, index: number, value: bigint): void {
  switch (index) {
    case MSR.TSC:
      cpu.msr.set(index, BigInt.asUintN(64, value - BigInt(cpu.instructions)));
      return;
    case MSR.EFER: {
      if (value & ~(eferWritable(cpu) | EFER_LMA)) throw gp(0);
      if (cpu.cr0 & CR0_PG && (value ^ cpu.efer) & EFER_LME) throw gp(0);
      const v = (value & ~EFER_LMA) | (cpu.efer & EFER_LMA);
      if (v !== cpu.efer) {
        cpu.efer = v;
        pagingChanged(cpu);
      }
      return;
    }
    case MSR.FS_BASE: cpu.seg[SEG.FS]!.base = canonical(value); return;
    case MSR.GS_BASE: cpu.seg[SEG.GS]!.base = canonical(value); return;
    case MSR.KERNEL_GS_BASE: case MSR.LSTAR: case MSR.CSTAR:
      cpu.msr.set(index, canonical(value));
      return;
    case MSR.STAR:
      cpu.msr.set(index, value);
      return;
    case MSR.SFMASK:
      if (value >> 32n) throw gp(0);
      cpu.msr.set(index, value);
      return;
    case MSR.PAT:
      for (let i = 0n; i < 64n; i += 8n) {
        const type = (value >> i) & 0xffn;
        if (type === 2n || type === 3n || type > 7n) throw gp(0);
      }
      cpu.msr.set(index, value);
      return;
    case MSR.VM_HSAVE_PA:
      if (value & 0xfffn) throw gp(0);
      cpu.msr.set(index, value);
      return;
    case MSR.VM_CR:
      if (value & ~0x1fn) throw gp(0);
      cpu.msr.set(index, value);
      return;
    default:
      throw gp(0);
  }
}

define('Rdmsr', (cpu) => {
  requireCpl0(cpu);
  const v = readMsr(cpu, Number(cpu.getGpr(GPR.RCX, 4)));
  cpu.setGpr(GPR.RAX, 4, v & 0xffff_ffffn);
  cpu.setGpr(GPR.RDX, 4, v >> 32n);
});

define('Wrmsr', (cpu) => {
  requireCpl0(cpu);
  const v = (cpu.getGpr(GPR.RDX, 4) << 32n) | cpu.getGpr(GPR.RAX, 4);
  writeMsr(cpu, Number(cpu.getGpr(GPR.RCX, 4)), v);
});

// ---- CPUID (APM vol. 3 CPUID, appendix E) ------------------------------------------------------------------

define('Cpuid', (cpu) => {
  const r = cpuidOf(cpu.profile, Number(cpu.getGpr(GPR.RAX, 4)), Number(cpu.getGpr(GPR.RCX, 4)));
  cpu.setGpr(GPR.RAX, 4, BigInt(r.eax >>> 0));
  cpu.setGpr(GPR.RBX, 4, BigInt(r.ebx >>> 0));
  cpu.setGpr(GPR.RCX, 4, BigInt(r.ecx >>> 0));
  cpu.setGpr(GPR.RDX, 4, BigInt(r.edx >>> 0));
});

// ---- port I/O (APM vol. 3 IN, OUT; vol. 1 3.8 input/output, I/O privilege) -----------------------------------------------

/**
 * In protected mode an I/O instruction at CPL > IOPL would consult the TSS I/O-permission bitmap
 * (APM vol. 2 "I/O-Permission Bitmap"). Simplification: the model does not read the bitmap and
 * raises #GP(0) whenever CPL > IOPL, as if every port's bit were set. svmconf's kernels do I/O at CPL 0.
 */
function checkIo(cpu: Cpu): void {
  if (cpu.protectedMode && cpu.cpl > iopl(cpu)) throw gp(0);
}

function portOf(cpu: Cpu, op: Operand): number {
  return op.kind === 'imm' ? Number(op.value) : Number(cpu.getGpr(GPR.RDX, 2));
}

define('In', (cpu, insn) => {
  const dst = insn.ops[0]!;
  checkIo(cpu);
  const size = dst.size;
  const v = cpu.hooks.portIn(portOf(cpu, insn.ops[1]!), size);
  cpu.setGpr(GPR.RAX, size, BigInt(v >>> 0) & (size === 1 ? 0xffn : size === 2 ? 0xffffn : 0xffff_ffffn));
});

define('Out', (cpu, insn) => {
  const src = insn.ops[1]!;
  checkIo(cpu);
  cpu.hooks.portOut(portOf(cpu, insn.ops[0]!), src.size, Number(cpu.getGpr(GPR.RAX, src.size)));
});

// ---- interrupt flag, RFLAGS (APM vol. 3 CLI, STI, PUSHF, POPF; vol. 2 3.1.6) -----------------------------------

/** CLI/STI in protected mode need CPL ≤ IOPL (#GP(0)); PVI/VME are not modelled. */
define('Cli', (cpu) => {
  if (cpu.protectedMode && cpu.cpl > iopl(cpu)) throw gp(0);
  cpu.rflags &= ~F.IF;
});

/** STI: IF 0 → 1 holds maskable interrupts until after the next instruction (interrupt shadow). */
define('Sti', (cpu) => {
  if (cpu.protectedMode && cpu.cpl > iopl(cpu)) throw gp(0);
  if (!(cpu.rflags & F.IF)) cpu.interruptShadow = true;
  cpu.rflags |= F.IF;
});

/** PUSHF/PUSHFD/PUSHFQ: the image has VM and RF cleared (APM vol. 3 PUSHFx). */
function pushf(size: number) {
  return (cpu: Cpu): void => cpu.push(BigInt(cpu.rflags & ~(F.VM | F.RF)), size);
}
define('Pushf', pushf(2));
define('Pushfd', pushf(4));
define('Pushfq', pushf(8));

/**
 * POPF/POPFD/POPFQ (APM vol. 3 POPFx): the status flags, TF, DF, NT and — with a 32/64-bit
 * operand — AC and ID are loaded; IOPL only at CPL 0; IF only at CPL ≤ IOPL (silently kept
 * otherwise, no fault); VM, RF, VIF, VIP are unchanged; bit 1 stays 1 and reserved bits 0.
 * Real mode is CPL 0. A 16-bit POPF leaves bits 31:16.
 */
function popf(size: number) {
  return (cpu: Cpu): void => {
    const v = Number(cpu.pop(size) & 0xffff_ffffn);
    let writable = F.CF | F.PF | F.AF | F.ZF | F.SF | F.TF | F.DF | F.OF | F.NT | F.AC | F.ID;
    const realMode = !cpu.protectedMode;
    if (realMode || cpu.cpl === 0) writable |= F.IOPL;
    if (realMode || cpu.cpl <= iopl(cpu)) writable |= F.IF;
    if (size === 2) writable &= 0xffff;
    cpu.rflags = ((cpu.rflags & ~writable) | (v & writable) | F.FIXED1) >>> 0;
  };
}
define('Popf', popf(2));
define('Popfd', popf(4));
define('Popfq', popf(8));

// ---- HLT, INVLPG, CLTS, caches (APM vol. 3) ------------------------------------------------------------------

/** HLT: CPL 0; the run loop stops or waits for an interrupt (RIP is past the HLT). */
define('Hlt', (cpu) => {
  requireCpl0(cpu);
  cpu.halted = true;
});

/**
 * INVLPG m: CPL 0; drops the translation of the page (the model drops its whole TLB, which also
 * covers large pages) and the decoded instructions. No memory access: no fault for the address.
 */
define('Invlpg', (cpu, insn) => {
  requireCpl0(cpu);
  memOp(insn);
  pagingChanged(cpu);
});

define('Clts', (cpu) => {
  requireCpl0(cpu);
  cpu.cr0 &= ~CR0.TS;
});

define('Wbinvd', (cpu) => requireCpl0(cpu));
define('Invd', (cpu) => requireCpl0(cpu));
