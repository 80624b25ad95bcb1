// The shape of a CPU profile and the helpers that build its CPUID table. No profile lives here
// (they are the amd-*.ts files next to this one); model/profile.ts is what the model imports.

import { CPUID_EXT_ECX, CPUID_LEAF, CPUID_SVM_EDX } from '../../arch/cpuid.ts';

export interface CpuidLeaf {
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

/**
 * Where a profile's SVM leaf comes from:
 *   measured   a CPUID dump of a real part of that family (cited in `sources`)
 *   assembled  put together from the vendor's documentation and Linux/QEMU feature lists, not a
 *              raw dump of one part; bits nobody names there are left clear (see `notes`)
 */
export type ProfileBasis = 'measured' | 'assembled';

export interface Profile {
  name: string;
  vendor: string;
  family: number;
  model: number;
  stepping: number;
  /**
   * What the part's CPUID reports, for the leaves the kernels and the model consult, by `leaf` or
   * `leaf.subleaf` (hex strings, e.g. "0x80000001"). Absent leaves read 0. What the model presents
   * to software is this minus what the model does not implement (model/profile.ts, cpuidOf).
   */
  cpuid: Record<string, CpuidLeaf>;
  /** Where the numbers come from. */
  sources: string[];
  /** One line for people: family, microarchitecture, example parts. */
  title?: string;
  basis?: ProfileBasis;
  /** Caveats: values kept on purpose, bits not verified. */
  notes?: string[];
}

/** The key of a leaf in a profile's CPUID table: "0x80000001" (subleaves append ".n"). */
export function cpuidKey(leaf: number): string {
  return `0x${leaf.toString(16)}`;
}

/** Vendor string as CPUID leaf 0 returns it in EBX, EDX, ECX. */
export function vendorRegs(vendor: string): Pick<CpuidLeaf, 'ebx' | 'edx' | 'ecx'> {
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
 * CPUID 8000_000A EDX bits by name (APM vol. 3 appendix E, CPUID Fn8000_000A_EDX; Linux
 * arch/x86/include/asm/cpufeatures.h word 15). Bit 11 is set on some parts but named nowhere public.
 */
export const SVM_EDX_BITS = {
  NP: CPUID_SVM_EDX.NP,
  LBRV: CPUID_SVM_EDX.LBRV,
  SVML: CPUID_SVM_EDX.SVML,
  NRIPS: CPUID_SVM_EDX.NRIPS,
  TSC_RATE: CPUID_SVM_EDX.TSC_RATE,
  VMCB_CLEAN: CPUID_SVM_EDX.VMCB_CLEAN,
  FLUSH_BY_ASID: CPUID_SVM_EDX.FLUSH_BY_ASID,
  DECODE_ASSISTS: CPUID_SVM_EDX.DECODE_ASSISTS,
  PAUSE_FILTER: CPUID_SVM_EDX.PAUSE_FILTER,
  UNNAMED_11: 11,
  PAUSE_FILTER_THRESHOLD: CPUID_SVM_EDX.PAUSE_FILTER_THRESHOLD,
  AVIC: 13,
  VMSAVE_VIRT: 15,
  VGIF: CPUID_SVM_EDX.VGIF,
  X2AVIC: 18,
  SPEC_CTRL: 20,
  VNMI: 25,
  SVME_ADDR_CHK: 28,
} as const;

export type SvmEdxBit = keyof typeof SVM_EDX_BITS;

export function svmEdx(bits: readonly SvmEdxBit[]): number {
  return bits.reduce((v, b) => (v | (1 << SVM_EDX_BITS[b])) >>> 0, 0);
}

/** The names of the bits set in an 8000_000A EDX value (unknown bits as `bitN`). */
export function svmEdxNames(edx: number): string[] {
  const out: string[] = [];
  for (let bit = 0; bit < 32; bit++) {
    if (((edx >>> bit) & 1) === 0) continue;
    const name = (Object.keys(SVM_EDX_BITS) as SvmEdxBit[]).find((k) => SVM_EDX_BITS[k] === bit);
    out.push(name ?? `bit${bit}`);
  }
  return out;
}

export interface AmdLeavesSpec {
  family: number;
  model: number;
  stepping: number;
  /** CPUID 0 EAX and 8000_0000 EAX as the part reports them. */
  maxStd: number;
  maxExt: number;
  /** 8000_0008 EAX: physical (7:0) and linear (15:8) address bits. */
  addressSizes: number;
  /** 8000_000A: EBX number of ASIDs, EDX features. EAX (SVM revision) is 1 on every AMD part so far. */
  asids: number;
  svmEdx: number;
  /** 8000_0021 EAX when the part has the leaf (NullSelectClearsBase is bit 6). */
  ext21Eax?: number;
}

/*
 * The feature words below are the same on every profile on purpose: they are the features the
 * model implements (FPU…SSE2 in leaf 1 EDX; SYSCALL, NX, 1 GiB pages, LM in 8000_0001 EDX; LAHF
 * in 8000_0001 ECX), and every AMD family here has all of them (leaf 1 EDX reads 0x178bfbff on the
 * 10h, 15h and 17h dumps cited in the profiles). Features the model does not implement (SSE3 and
 * the rest of leaf 1 ECX, leaf 7, XSAVE…) are left out of every profile rather than shown to a
 * kernel that would then find them missing.
 */
const LEAF1_EDX = 0x178bfbff;
const EXT1_EDX = ((1 << 29) | (1 << 26) | (1 << 20) | (1 << 11) | 0x0183f3ff) >>> 0;

export function amdLeaves(s: AmdLeavesSpec): Record<string, CpuidLeaf> {
  const sig = signature(s.family, s.model, s.stepping);
  const leaves: Record<string, CpuidLeaf> = {
    [cpuidKey(CPUID_LEAF.VENDOR)]: { eax: s.maxStd, ...vendorRegs('AuthenticAMD') },
    [cpuidKey(CPUID_LEAF.FEATURES)]: { eax: sig, ebx: 0, ecx: 0, edx: LEAF1_EDX },
    [cpuidKey(CPUID_LEAF.EXT_MAX)]: { eax: s.maxExt, ...vendorRegs('AuthenticAMD') },
    [cpuidKey(CPUID_LEAF.EXT_FEATURES)]: { eax: sig, ebx: 0, ecx: (1 << CPUID_EXT_ECX.LAHF_SAHF) | (1 << CPUID_EXT_ECX.SVM), edx: EXT1_EDX },
    [cpuidKey(CPUID_LEAF.ADDRESS_SIZES)]: { eax: s.addressSizes, ebx: 0, ecx: 0, edx: 0 },
    [cpuidKey(CPUID_LEAF.SVM)]: { eax: 1, ebx: s.asids, ecx: 0, edx: s.svmEdx >>> 0 },
  };
  if (s.ext21Eax !== undefined) leaves[cpuidKey(CPUID_LEAF.EXT_FEATURES_2)] = { eax: s.ext21Eax, ebx: 0, ecx: 0, edx: 0 };
  return leaves;
}
