// CPU profiles: what CPUID reports and which behaviour switches the model follows.
// The default is an AMD family 19h (Zen 3/4) part. The SVM issue adds the other families.

import { CPUID_EXT_ECX, CPUID_SVM_EDX } from '../arch/svm.ts';

export interface CpuidLeaf {
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

export interface Profile {
  name: string;
  vendor: string;
  family: number;
  model: number;
  stepping: number;
  /** CPUID leaves by `leaf` or `leaf.subleaf` (hex strings, e.g. "0x80000001"). Absent leaves read 0. */
  cpuid: Record<string, CpuidLeaf>;
  /** Where the numbers come from. */
  sources: string[];
}

/** Vendor string as CPUID leaf 0 returns it in EBX, EDX, ECX. */
function vendorRegs(vendor: string): Pick<CpuidLeaf, 'ebx' | 'edx' | 'ecx'> {
  const b = Buffer.from(vendor.padEnd(12, ' '), 'latin1');
  return { ebx: b.readUInt32LE(0), edx: b.readUInt32LE(4), ecx: b.readUInt32LE(8) };
}

/** Family/model/stepping in CPUID 1 / 8000_0001 EAX form (APM vol. 3 appendix E.3.2). */
export function signature(family: number, model: number, stepping: number): number {
  const baseFamily = Math.min(family, 0xf);
  const extFamily = family > 0xf ? family - 0xf : 0;
  return (extFamily << 20) | ((model >> 4) << 16) | (baseFamily << 8) | ((model & 0xf) << 4) | stepping;
}

/**
 * AMD family 19h model 11h (Zen 4 EPYC) as the model presents it: long mode, NX, and the base
 * features the kernels touch. SVM is not offered until the model implements it (SVM issue).
 */
export const DEFAULT_PROFILE: Profile = {
  name: 'amd-19h',
  vendor: 'AuthenticAMD',
  family: 0x19,
  model: 0x11,
  stepping: 1,
  cpuid: {
    '0x0': { eax: 0x10, ...vendorRegs('AuthenticAMD') },
    // EDX: FPU, PSE, TSC, MSR, PAE, CX8, APIC, SEP, PGE, CMOV, PAT, CLFSH, FXSR, SSE, SSE2
    '0x1': { eax: signature(0x19, 0x11, 1), ebx: 0, ecx: 0, edx: 0x178bfbff },
    '0x80000000': { eax: 0x80000021, ...vendorRegs('AuthenticAMD') },
    // EDX: NX (20), Page1GB (26: 1 GiB pages, paging.ts), LM (29), SYSCALL (11); ECX: LAHF (0) —
    // SVM (bit 2) comes with the SVM issue
    '0x80000001': { eax: signature(0x19, 0x11, 1), ebx: 0, ecx: 0x1, edx: (1 << 29) | (1 << 26) | (1 << 20) | (1 << 11) | 0x0183f3ff },
    // EAX[7:0]: 48 physical address bits (reserved-bit checks in paging.ts, MOV CR3)
    '0x80000008': { eax: 0x3030, ebx: 0, ecx: 0, edx: 0 },
    // EAX: NullSelectClearsBase (6): a null selector load clears the segment base (segmentation.ts)
    '0x80000021': { eax: 1 << 6, ebx: 0, ecx: 0, edx: 0 },
  },
  sources: ['APM vol. 3 appendix E (CPUID)', 'AMD family 19h PPR: CPUID Fn0000_0001, Fn8000_0001'],
};

export function cpuidOf(p: Profile, leaf: number, subleaf: number): CpuidLeaf {
  const key = `0x${leaf.toString(16)}`;
  return p.cpuid[`${key}.${subleaf}`] ?? p.cpuid[key] ?? { eax: 0, ebx: 0, ecx: 0, edx: 0 };
}

/**
 * The SVM features a profile's CPUID reports (APM vol. 2 15.4; svm-facts.md "MSRs and CPUID"):
 * what the model backend can offer to cases, and which cases the generator holds to the model's
 * instruction list.
 */
export function profileFeatures(p: Profile): Record<'svm' | 'npt' | 'nrips', boolean> {
  const svm = (cpuidOf(p, 0x8000_0001, 0).ecx & (1 << CPUID_EXT_ECX.SVM)) !== 0;
  const edx = svm ? cpuidOf(p, 0x8000_000a, 0).edx : 0;
  return { svm, npt: (edx & (1 << CPUID_SVM_EDX.NP)) !== 0, nrips: (edx & (1 << CPUID_SVM_EDX.NRIPS)) !== 0 };
}
