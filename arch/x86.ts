// x86 architectural constants that are not SVM-specific: exception vectors, RFLAGS bits,
// control-register bits. Names follow the AMD64 APM (vol. 2 ch. 8 "Exceptions and Interrupts",
// ch. 3 "System Resources"). This module and arch/svm.ts are the one place these numbers live;
// arch/asm.ts renders them for the kernels' assembly.
//
// Segment selectors are deliberately absent: the runtime owns the GDT (arch/layout.ts SELECTORS).

/** Exception vectors (APM vol. 2 §8.2, Table 8-1). #VE is Intel's, kept so records from any CPU decode. */
export const VEC = {
  DE: 0,
  DB: 1,
  NMI: 2,
  BP: 3,
  OF: 4,
  BR: 5,
  UD: 6,
  NM: 7,
  DF: 8,
  TS: 10,
  NP: 11,
  SS: 12,
  GP: 13,
  PF: 14,
  MF: 16,
  AC: 17,
  MC: 18,
  XM: 19,
  VE: 20,
  CP: 21,
  HV: 28,
  VC: 29,
  SX: 30,
} as const;

export type VectorName = keyof typeof VEC;

/** Vectors 0–31 are reserved for exceptions; the first vector free for INTR / INT n use. */
export const FIRST_USER_VECTOR = 32;

/**
 * Exceptions that push an error code (APM vol. 2 §8.2, Table 8-1, "Error Code" column):
 * #DF (always 0), #TS, #NP, #SS, #GP, #PF, #AC (always 0), #CP, #VC, #SX.
 */
export const ERROR_CODE_VECTORS: readonly number[] = [
  VEC.DF, VEC.TS, VEC.NP, VEC.SS, VEC.GP, VEC.PF, VEC.AC, VEC.CP, VEC.VC, VEC.SX,
];

/** Does delivering exception `vector` push an error code? (Only meaningful for vectors 0–31.) */
export function pushesErrorCode(vector: number): boolean {
  return ERROR_CODE_VECTORS.includes(vector);
}

const VECTOR_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(VEC).map(([name, v]) => [v, name === 'NMI' ? 'NMI' : `#${name}`]),
);

/** The manual's mnemonic of an exception vector (`#BP`, `NMI`), or undefined for a vector without one. */
export function vectorMnemonic(vector: number): string | undefined {
  return VECTOR_NAMES.get(vector);
}

/**
 * DR7 fields for one instruction breakpoint in DR0 (APM vol. 2 13.1.1.4): L0 enables it locally;
 * R/W0 (bits 17:16) = 00 (instruction execution) and LEN0 (bits 19:18) = 00 are the zero value.
 */
export const DR7 = {
  L0: 1n << 0n,
  G0: 1n << 1n,
} as const;

/** RFLAGS bits (APM vol. 2 §3.1.6). Single-bit flags as masks; IOPL is a two-bit field. */
export const RFLAGS = {
  CF: 1n << 0n,
  /** Reserved, always reads 1. */
  FIXED1: 1n << 1n,
  PF: 1n << 2n,
  AF: 1n << 4n,
  ZF: 1n << 6n,
  SF: 1n << 7n,
  TF: 1n << 8n,
  IF: 1n << 9n,
  DF: 1n << 10n,
  OF: 1n << 11n,
  IOPL_SHIFT: 12n,
  IOPL_MASK: 3n << 12n,
  NT: 1n << 14n,
  RF: 1n << 16n,
  VM: 1n << 17n,
  AC: 1n << 18n,
  VIF: 1n << 19n,
  VIP: 1n << 20n,
  ID: 1n << 21n,
} as const;

/** The single-bit RFLAGS flags in decreasing bit order (for decoding); IOPL and FIXED1 excluded. */
export const RFLAGS_FLAG_NAMES = ['ID', 'VIP', 'VIF', 'AC', 'VM', 'RF', 'NT', 'OF', 'DF', 'IF', 'TF', 'SF', 'ZF', 'AF', 'PF', 'CF'] as const;

/** CR0 bits (APM vol. 2 §3.1.1). */
export const CR0 = {
  PE: 1n << 0n,
  MP: 1n << 1n,
  EM: 1n << 2n,
  TS: 1n << 3n,
  ET: 1n << 4n,
  NE: 1n << 5n,
  WP: 1n << 16n,
  AM: 1n << 18n,
  NW: 1n << 29n,
  CD: 1n << 30n,
  PG: 1n << 31n,
} as const;

/** CR4 bits (APM vol. 2 §3.1.3), the ones the runtime and the templates use. */
export const CR4 = {
  VME: 1n << 0n,
  PVI: 1n << 1n,
  TSD: 1n << 2n,
  DE: 1n << 3n,
  PSE: 1n << 4n,
  PAE: 1n << 5n,
  MCE: 1n << 6n,
  PGE: 1n << 7n,
  PCE: 1n << 8n,
  OSFXSR: 1n << 9n,
  OSXMMEXCPT: 1n << 10n,
} as const;

/** #PF error-code bits (APM vol. 2 §8.4.2). */
export const PF_ERR = {
  P: 1n << 0n,
  W: 1n << 1n,
  US: 1n << 2n,
  RSV: 1n << 3n,
  ID: 1n << 4n,
} as const;

/**
 * Gate and TSS descriptor types, the 4-bit type field of a system descriptor (APM vol. 2 4.8.3,
 * "System Descriptors"; in long mode types 9/B are the 64-bit TSS and E/F the 64-bit gates, 4.8.4).
 */
export const DESC_TYPE = {
  TASK_GATE: 0x5,
  INT_GATE16: 0x6,
  TRAP_GATE16: 0x7,
  TSS_AVAILABLE: 0x9,
  TSS_BUSY: 0xb,
  INT_GATE: 0xe,
  TRAP_GATE: 0xf,
} as const;

/** Gate attribute bytes the kernels write: P | DPL << 5 | type (APM vol. 2 4.8.4). */
export const GATE_ATTR = {
  INT: 0x80 | DESC_TYPE.INT_GATE,
  TRAP: 0x80 | DESC_TYPE.TRAP_GATE,
  INT_DPL3: 0x80 | (3 << 5) | DESC_TYPE.INT_GATE,
  TRAP_DPL3: 0x80 | (3 << 5) | DESC_TYPE.TRAP_GATE,
} as const;

/** Bytes of a long-mode IDT gate (APM vol. 2 8.9.1). */
export const GATE64_SIZE = 16;

/**
 * The 64-bit TSS (APM vol. 2 12.2.5, figure 12-8): RSPn at RSP0 + 8n (n = 0–2), ISTn at
 * IST1 + 8(n − 1) (n = 1–7), the I/O-map base at IOMAP, SIZE bytes without an I/O map.
 */
export const TSS64 = {
  RSP0: 4,
  IST1: 0x24,
  IOMAP: 102,
  SIZE: 104,
} as const;

/** The 32-bit TSS (APM vol. 2 12.2.5): ESPn at ESP0 + 8n, SSn right after it. */
export const TSS32 = {
  ESP0: 4,
  STACK_STRIDE: 8,
} as const;
