// The guest CPUID of the native KVM runner: what KVM_GET_SUPPORTED_CPUID says this host's KVM can
// virtualize, changed only where a kernel's cpu config asks for a feature to be hidden. KVM then
// follows the guest's CPUID: with NRIPS (CPUID 8000_000A EDX bit 3) cleared, nested SVM runs L2 as
// a CPU without NRIPS would (no next_rip written on #VMEXIT, APM vol. 2 15.7.1), and with SVM
// (8000_0001 ECX bit 2) cleared, VMRUN and EFER.SVME are refused as on a CPU without SVM.
// Pure, so test/kvm-native.spec.ts checks it against recorded supported-CPUID tables.

import { CPUID_EXT_ECX, CPUID_LEAF, CPUID_SVM_EDX } from '../arch/svm.ts';
import type { CpuConfig, Feature } from '../core/types.ts';

/** struct kvm_cpuid_entry2 (linux/kvm.h), as svmconf-kvm --probe prints it. */
export interface CpuidEntry {
  function: number;
  index: number;
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

/** Where each feature's bit lives (AMD APM vol. 3 appendix E, CPUID Fn8000_0001 ECX, Fn8000_000A EDX). */
export const FEATURE_BIT: Record<Feature, { leaf: number; reg: 'ecx' | 'edx'; bit: number }> = {
  svm: { leaf: CPUID_LEAF.EXT_FEATURES, reg: 'ecx', bit: CPUID_EXT_ECX.SVM },
  npt: { leaf: CPUID_LEAF.SVM, reg: 'edx', bit: CPUID_SVM_EDX.NP },
  nrips: { leaf: CPUID_LEAF.SVM, reg: 'edx', bit: CPUID_SVM_EDX.NRIPS },
};

function find(entries: readonly CpuidEntry[], leaf: number): CpuidEntry | undefined {
  return entries.find((e) => e.function === leaf && e.index === 0);
}

/** Whether a supported-CPUID table shows a feature (SVM sub-features need SVM itself). */
export function cpuidHas(entries: readonly CpuidEntry[], f: Feature): boolean {
  const { leaf, reg, bit } = FEATURE_BIT[f];
  if (f !== 'svm' && !cpuidHas(entries, 'svm')) return false;
  const e = find(entries, leaf);
  return e !== undefined && ((e[reg] >>> bit) & 1) === 1;
}

export class CpuidError extends Error {}

/**
 * The table to give the guest for a kernel's cpu config: `false` clears the feature's bit, `true`
 * requires it (a CpuidError names what is missing: the scheduler should never have booted such a
 * kernel here), absent leaves KVM's answer. Hiding SVM also empties leaf 8000_000A, which is
 * reserved on a CPU without SVM (APM vol. 3 E.4.9).
 */
export function guestCpuid(supported: readonly CpuidEntry[], cpu: CpuConfig): CpuidEntry[] {
  const out = supported.map((e) => ({ ...e }));
  for (const [f, want] of Object.entries(cpu) as Array<[Feature, boolean | undefined]>) {
    if (want === undefined) continue;
    if (want) {
      if (!cpuidHas(supported, f)) throw new CpuidError(`KVM_GET_SUPPORTED_CPUID does not offer ${f} (CPUID ${hex(FEATURE_BIT[f].leaf)} ${FEATURE_BIT[f].reg.toUpperCase()} bit ${FEATURE_BIT[f].bit})`);
      continue;
    }
    const { leaf, reg, bit } = FEATURE_BIT[f];
    const e = find(out, leaf);
    if (e) e[reg] = (e[reg] & ~(1 << bit)) >>> 0;
    if (f === 'svm') {
      const svm = find(out, CPUID_LEAF.SVM);
      if (svm) svm.eax = svm.ebx = svm.ecx = svm.edx = 0;
    }
  }
  return out;
}

const hex = (v: number): string => `0x${(v >>> 0).toString(16)}`;

/** The text svmconf-kvm --cpuid reads (native/kvm/cpuid.c): `function index flags eax ebx ecx edx`. */
export function formatCpuid(entries: readonly CpuidEntry[]): string {
  return entries.map((e) => [e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx].map(hex).join(' ')).join('\n') + '\n';
}
