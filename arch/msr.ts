// Model-specific registers: their numbers and the bits of the ones whose fields the model and the
// kernels use (APM vol. 2 appendix A "MSR Cross-Reference"; EFER 3.1.7; VM_CR and VM_HSAVE_PA 15.30).
// arch/svm.ts re-exports MSR, EFER and VM_CR, so the SVM constants keep one import.
//
// Widths: MSR numbers are numbers; MSR values and their bits are bigints (64-bit registers).

export const MSR = {
  /** Time-stamp counter (vol. 3 RDTSC). */
  TSC: 0x10,
  SYSENTER_CS: 0x174,
  SYSENTER_ESP: 0x175,
  SYSENTER_EIP: 0x176,
  /** Page-attribute table (vol. 2 7.8). */
  PAT: 0x277,
  EFER: 0xc000_0080,
  /** SYSCALL/SYSRET targets and flag mask (vol. 2 6.1.1). */
  STAR: 0xc000_0081,
  LSTAR: 0xc000_0082,
  CSTAR: 0xc000_0083,
  SFMASK: 0xc000_0084,
  FS_BASE: 0xc000_0100,
  GS_BASE: 0xc000_0101,
  KERNEL_GS_BASE: 0xc000_0102,
  VM_CR: 0xc001_0114,
  /** Physical address of the host save area VMRUN writes (vol. 2 15.30.4). */
  VM_HSAVE_PA: 0xc001_0117,
} as const;

/** EFER bits (APM vol. 2 3.1.7). */
export const EFER = {
  SCE: 1n << 0n,
  LME: 1n << 8n,
  LMA: 1n << 10n,
  NXE: 1n << 11n,
  SVME: 1n << 12n,
} as const;

/** VM_CR bits (APM vol. 2 15.30.1). */
export const VM_CR = {
  SVMDIS: 1n << 4n,
} as const;

/** PAT after reset (APM vol. 2 7.8.2): WB, WT, UC-, UC repeated. */
export const PAT_RESET = 0x0007_0406_0007_0406n;
