// System instructions (APM vol. 3 ch. 4 "System Instruction Reference"; vol. 2 ch. 3 "System
// Resources"): CPUID, port I/O, the interrupt flag, RFLAGS, HLT, INVLPG and cache control. The other
// system areas have a file each, as the manual has a section each: control and debug registers and
// the segment-register MOV/POP forms (control-regs.ts), descriptor-table registers, TR and LDTR
// (segment-regs.ts), MSRs (msr.ts), the shared privilege checks (privilege.ts). SVM instructions
// (CLGI, STGI, VMRUN, VMMCALL, VMLOAD, VMSAVE) and far transfers are elsewhere.

import type { Cpu } from '../cpu/cpu.ts';
import { gp } from '../cpu/fault.ts';
import { F } from '../cpu/flags.ts';
import { GPR } from '../cpu/state.ts';
import type { Operand } from '../decode.ts';
import { cpuidOf } from '../profile.ts';
import { CR0 } from '../../arch/x86.ts';
import { define } from './registry.ts';
import { pagingChanged } from './control-regs.ts';
import { requireCpl0, iopl, memOp } from './privilege.ts';

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
