// CPUID leaves and the feature bits the model, the profiles and the kernels read (APM vol. 3
// appendix E "Obtaining Processor Information Via the CPUID Instruction"). Bits are bit numbers.
// arch/svm.ts re-exports CPUID_LEAF, CPUID_EXT_ECX and CPUID_SVM_EDX, so the SVM constants keep one
// import.

export const CPUID_LEAF = {
  VENDOR: 0x0000_0000,
  FEATURES: 0x0000_0001,
  EXT_MAX: 0x8000_0000,
  EXT_FEATURES: 0x8000_0001,
  /** EAX[7:0] physical-address width, EAX[15:8] linear-address width (CPUID_ADDRESS_SIZES). */
  ADDRESS_SIZES: 0x8000_0008,
  /** SVM features: EAX revision, EBX number of ASIDs, EDX feature bits (CPUID_SVM_EDX). */
  SVM: 0x8000_000a,
  /** Extended feature identification 2 (EAX: CPUID_EXT21_EAX). */
  EXT_FEATURES_2: 0x8000_0021,
} as const;

/** CPUID Fn8000_0001 ECX bits (E.4.2). */
export const CPUID_EXT_ECX = {
  /** LAHF/SAHF in 64-bit mode. */
  LAHF_SAHF: 0,
  SVM: 2,
} as const;

/** CPUID Fn8000_0001 EDX bits (E.4.2). */
export const CPUID_EXT_EDX = {
  SYSCALL: 11,
  NX: 20,
  PAGE1GB: 26,
  LM: 29,
} as const;

/** CPUID Fn8000_0021 EAX bits. */
export const CPUID_EXT21_EAX = {
  /** Loading a null selector clears the segment's base and limit. */
  NULL_SELECT_CLEARS_BASE: 6,
} as const;

/** CPUID Fn8000_0008 EAX: the physical-address width field, and the width when the leaf is absent (36). */
export const CPUID_ADDRESS_SIZES = {
  PHYS_WIDTH_MASK: 0xff,
  DEFAULT_PHYS_WIDTH: 36,
} as const;

/** CPUID Fn8000_000A EDX bits (the SVM features). */
export const CPUID_SVM_EDX = {
  NP: 0,
  LBRV: 1,
  SVML: 2,
  NRIPS: 3,
  TSC_RATE: 4,
  VMCB_CLEAN: 5,
  FLUSH_BY_ASID: 6,
  DECODE_ASSISTS: 7,
  PAUSE_FILTER: 10,
  PAUSE_FILTER_THRESHOLD: 12,
  VGIF: 16,
} as const;
