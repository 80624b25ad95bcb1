// Model-specific registers (APM vol. 2 appendix A; vol. 3 RDMSR, WRMSR): the MSRs the model has,
// their reserved-bit checks, and the time-stamp counter. The numbers are arch/msr.ts's.

import type { Cpu } from '../cpu/cpu.ts';
import { CR0_PG, EFER_LMA, EFER_LME, EFER_NXE, EFER_SVME, isCanonical } from '../cpu/cpu.ts';
import { gp } from '../cpu/fault.ts';
import { GPR, SEG } from '../cpu/state.ts';
import { cpuidOf } from '../profile.ts';
import { EFER, MSR, PAT_RESET, VM_CR } from '../../arch/msr.ts';
import { CPUID_EXT_ECX, CPUID_EXT_EDX, CPUID_LEAF } from '../../arch/cpuid.ts';
import { define } from './registry.ts';
import { requireCpl0 } from './privilege.ts';
import { pagingChanged } from './control-regs.ts';

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
