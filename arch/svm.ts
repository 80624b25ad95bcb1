// AMD SVM architectural constants: #VMEXIT codes, VMCB layout, intercept bits, EVENTINJ /
// EXITINTINFO fields, MSRs and CPUID bits. Names follow the AMD64 APM vol. 2 (pub. 24593) chapter 15
// and appendices B/C (docs/svm-rules.md "Exit codes", "VMCB offsets" summarise them for reading).
// Values marked "APM only" come from those appendices alone (docs/svm-rules.md does not summarise
// them, no case uses them yet); they agree with Linux's arch/x86/include/asm/svm.h.
//
// Widths: everything that lives in a 64-bit VMCB field or MSR (exit codes, EVENTINJ masks, EXITINFO1
// bits, EFER bits) is a bigint; offsets, bit numbers and small enumerations are numbers.
// arch/asm.ts renders these for the kernels' assembly; never repeat a number in a template.

import { VEC, vectorMnemonic } from './x86.ts';

// ---------------------------------------------------------------------------------------------
// #VMEXIT codes (VMCB 0x070, 64 bits; APM appendix C)

/** CR/DR access intercepts: base + register number (CR0–CR15, DR0–DR15). */
export const EXIT_RANGE = {
  CR_READ: 0x00n,
  CR_WRITE: 0x10n,
  DR_READ: 0x20n,
  DR_WRITE: 0x30n,
  /** VMEXIT_EXCP0 .. VMEXIT_EXCP31: base + vector. */
  EXCP: 0x40n,
} as const;

export const EXIT = {
  EXCP_BASE: 0x40n,
  EXCP_DE: 0x40n + BigInt(VEC.DE),
  EXCP_DB: 0x40n + BigInt(VEC.DB),
  EXCP_BP: 0x40n + BigInt(VEC.BP),
  EXCP_OF: 0x40n + BigInt(VEC.OF),
  EXCP_BR: 0x40n + BigInt(VEC.BR),
  EXCP_UD: 0x40n + BigInt(VEC.UD),
  EXCP_NM: 0x40n + BigInt(VEC.NM),
  EXCP_DF: 0x40n + BigInt(VEC.DF),
  EXCP_TS: 0x40n + BigInt(VEC.TS),
  EXCP_NP: 0x40n + BigInt(VEC.NP),
  EXCP_SS: 0x40n + BigInt(VEC.SS),
  EXCP_GP: 0x40n + BigInt(VEC.GP),
  EXCP_PF: 0x40n + BigInt(VEC.PF),
  EXCP_MF: 0x40n + BigInt(VEC.MF),
  EXCP_AC: 0x40n + BigInt(VEC.AC),
  EXCP_MC: 0x40n + BigInt(VEC.MC),
  EXCP_XM: 0x40n + BigInt(VEC.XM),
  EXCP_VE: 0x40n + BigInt(VEC.VE),
  EXCP_CP: 0x40n + BigInt(VEC.CP),
  EXCP_HV: 0x40n + BigInt(VEC.HV),
  EXCP_VC: 0x40n + BigInt(VEC.VC),
  EXCP_SX: 0x40n + BigInt(VEC.SX),
  INTR: 0x60n,
  NMI: 0x61n,
  SMI: 0x62n, // APM only
  INIT: 0x63n, // APM only
  VINTR: 0x64n,
  CR0_SEL_WRITE: 0x65n, // APM only (0x65–0x73 likewise)
  IDTR_READ: 0x66n,
  GDTR_READ: 0x67n,
  LDTR_READ: 0x68n,
  TR_READ: 0x69n,
  IDTR_WRITE: 0x6an,
  GDTR_WRITE: 0x6bn,
  LDTR_WRITE: 0x6cn,
  TR_WRITE: 0x6dn,
  RDTSC: 0x6en,
  RDPMC: 0x6fn,
  PUSHF: 0x70n,
  POPF: 0x71n,
  CPUID: 0x72n,
  RSM: 0x73n,
  IRET: 0x74n,
  SWINT: 0x75n,
  INVD: 0x76n, // APM only
  PAUSE: 0x77n, // APM only
  HLT: 0x78n,
  INVLPG: 0x79n, // APM only
  INVLPGA: 0x7an, // APM only
  IOIO: 0x7bn,
  MSR: 0x7cn,
  TASK_SWITCH: 0x7dn,
  FERR_FREEZE: 0x7en, // APM only
  SHUTDOWN: 0x7fn,
  VMRUN: 0x80n,
  VMMCALL: 0x81n,
  VMLOAD: 0x82n,
  VMSAVE: 0x83n,
  STGI: 0x84n,
  CLGI: 0x85n,
  SKINIT: 0x86n, // APM only
  RDTSCP: 0x87n, // APM only
  ICEBP: 0x88n,
  WBINVD: 0x89n, // APM only (0x89–0x8D likewise)
  MONITOR: 0x8an,
  MWAIT: 0x8bn,
  MWAIT_CONDITIONAL: 0x8cn,
  XSETBV: 0x8dn,
  NPF: 0x400n,
  /** VMRUN failed its consistency checks (all 64 bits set, i.e. -1). */
  INVALID: 0xffff_ffff_ffff_ffffn,
} as const;

export type ExitName = keyof typeof EXIT;

const EXIT_BY_CODE: ReadonlyMap<bigint, string> = (() => {
  const m = new Map<bigint, string>();
  for (const [name, code] of Object.entries(EXIT)) {
    if (name === 'EXCP_BASE') continue;
    if (!m.has(code)) m.set(code, `VMEXIT_${name}`);
  }
  return m;
})();

/**
 * The manual-style name of an exit code: `VMEXIT_EXCP_BP`, `VMEXIT_CR3_WRITE`, `VMEXIT_EXCP_9`
 * (exception vectors without a mnemonic), `VMEXIT_INVALID`; undefined when the code is unknown.
 */
export function exitCodeName(code: bigint): string | undefined {
  const known = EXIT_BY_CODE.get(code);
  if (known) return known;
  if (code >= EXIT_RANGE.EXCP && code < EXIT_RANGE.EXCP + 32n) {
    const vec = Number(code - EXIT_RANGE.EXCP);
    const mn = vectorMnemonic(vec);
    return mn ? `VMEXIT_EXCP_${mn.replace('#', '')}` : `VMEXIT_EXCP_${vec}`;
  }
  if (code >= 0n && code < 0x40n) {
    const reg = Number(code & 0xfn);
    const kind = code < 0x20n ? 'CR' : 'DR';
    const dir = (code & 0x10n) === 0n ? 'READ' : 'WRITE';
    return `VMEXIT_${kind}${reg}_${dir}`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// VMCB control area (offsets from the VMCB start; APM appendix B, Table B-1)

export const VMCB_SIZE = 0x1000;

export const VMCB = {
  /** CR intercepts: bits 15:0 reads of CR0–CR15, bits 31:16 writes. */
  INTERCEPT_CR: 0x000,
  /** DR intercepts: bits 15:0 reads of DR0–DR15, bits 31:16 writes. */
  INTERCEPT_DR: 0x004,
  /** Exception intercepts: bit n = vector n. */
  INTERCEPT_EXCP: 0x008,
  /** First vector of instruction/event intercepts (INTERCEPT_MISC1 bits). */
  INTERCEPT_MISC1: 0x00c,
  /** Second vector of instruction intercepts (INTERCEPT_MISC2 bits). */
  INTERCEPT_MISC2: 0x010,
  IOPM_BASE: 0x040,
  MSRPM_BASE: 0x048,
  TSC_OFFSET: 0x050, // APM only
  /** Guest ASID (u32); must be non-zero or VMRUN fails. */
  ASID: 0x058,
  TLB_CONTROL: 0x05c, // APM only (u8)
  INT_CTL: 0x060,
  INT_VECTOR: 0x064, // APM only
  INT_STATE: 0x068,
  EXIT_CODE: 0x070,
  EXIT_INFO_1: 0x078,
  EXIT_INFO_2: 0x080,
  /** EXITINTINFO, 64 bits; the error code half starts at EXIT_INT_INFO_ERR. */
  EXIT_INT_INFO: 0x088,
  EXIT_INT_INFO_ERR: 0x08c,
  NESTED_CTL: 0x090,
  /** EVENTINJ, 64 bits; the error code half starts at EVENT_INJ_ERR. */
  EVENT_INJ: 0x0a8,
  EVENT_INJ_ERR: 0x0ac,
  NCR3: 0x0b0,
  CLEAN: 0x0c0,
  NEXT_RIP: 0x0c8,
  /** Number of instruction bytes fetched (bits 3:0), decode assists. */
  INSN_LEN: 0x0d0,
  INSN_BYTES: 0x0d1,
} as const;

/** VMCB save area (offsets from the VMCB start; APM appendix B, Table B-2). */
export const VMCB_SAVE = {
  ES: 0x400,
  CS: 0x410,
  SS: 0x420,
  DS: 0x430,
  FS: 0x440,
  GS: 0x450,
  GDTR: 0x460,
  LDTR: 0x470,
  IDTR: 0x480,
  TR: 0x490,
  CPL: 0x4cb,
  EFER: 0x4d0,
  CR4: 0x548,
  CR3: 0x550,
  CR0: 0x558,
  DR7: 0x560,
  DR6: 0x568,
  RFLAGS: 0x570,
  RIP: 0x578,
  RSP: 0x5d8,
  RAX: 0x5f8,
  STAR: 0x600,
  LSTAR: 0x608,
  CSTAR: 0x610,
  SFMASK: 0x618,
  KERNEL_GS_BASE: 0x620,
  SYSENTER_CS: 0x628,
  SYSENTER_ESP: 0x630,
  SYSENTER_EIP: 0x638,
  CR2: 0x640,
  G_PAT: 0x668,
} as const;

/** Layout of one segment register in the save area: {u16 selector, u16 attrib, u32 limit, u64 base}. */
export const VMCB_SEG = {
  SELECTOR: 0,
  ATTRIB: 2,
  LIMIT: 4,
  BASE: 8,
  SIZE: 16,
} as const;

/** Segment attrib = descriptor bits 47:40 then 55:52. */
export const SEG_ATTRIB = {
  TYPE_MASK: 0xf,
  S: 1 << 4,
  DPL_SHIFT: 5,
  DPL_MASK: 3 << 5,
  P: 1 << 7,
  AVL: 1 << 8,
  L: 1 << 9,
  DB: 1 << 10,
  G: 1 << 11,
} as const;

/** INT_CTL (0x060) fields (APM appendix B; APM only, agree with Linux svm.h). */
export const INT_CTL = {
  V_TPR_MASK: 0xf,
  V_IRQ_BIT: 8,
  V_GIF_BIT: 9,
  V_INTR_PRIO_SHIFT: 16,
  V_INTR_PRIO_MASK: 0xf << 16,
  V_IGN_TPR_BIT: 20,
  V_INTR_MASKING_BIT: 24,
  V_GIF_ENABLE_BIT: 25,
} as const;

/** INT_STATE (0x068). */
export const INT_STATE = {
  /** Guest is in an interrupt shadow (STI / MOV SS). */
  SHADOW_BIT: 0,
  /** Guest's RFLAGS.IF as seen by the host when V_INTR_MASKING (APM only). */
  GUEST_INT_MASK_BIT: 1,
} as const;

/** NESTED_CTL (0x090). */
export const NESTED_CTL = {
  NP_ENABLE_BIT: 0,
} as const;

/** TLB_CONTROL (0x05C) values (APM only). */
export const TLB_CONTROL = {
  NOTHING: 0,
  FLUSH_ALL: 1,
  FLUSH_ASID: 3,
  FLUSH_ASID_NONGLOBAL: 7,
} as const;

// ---------------------------------------------------------------------------------------------
// Intercept bit positions (bit numbers within their 32-bit word)

/** Bits of the word at VMCB.INTERCEPT_MISC1 (0x00C). */
export const INTERCEPT_MISC1 = {
  INTR: 0,
  NMI: 1,
  SMI: 2,
  INIT: 3,
  VINTR: 4,
  CR0_SEL_WRITE: 5, // APM only (5–19, 22, 23, 25, 26, 30 likewise)
  IDTR_READ: 6,
  GDTR_READ: 7,
  LDTR_READ: 8,
  TR_READ: 9,
  IDTR_WRITE: 10,
  GDTR_WRITE: 11,
  LDTR_WRITE: 12,
  TR_WRITE: 13,
  RDTSC: 14,
  RDPMC: 15,
  PUSHF: 16,
  POPF: 17,
  CPUID: 18,
  RSM: 19,
  IRET: 20,
  INTN: 21,
  INVD: 22,
  PAUSE: 23,
  HLT: 24,
  INVLPG: 25,
  INVLPGA: 26,
  IOIO: 27,
  MSR: 28,
  TASK_SWITCH: 29,
  FERR_FREEZE: 30,
  SHUTDOWN: 31,
} as const;

/** Bits of the word at VMCB.INTERCEPT_MISC2 (0x010). */
export const INTERCEPT_MISC2 = {
  /** Must be set, or VMRUN fails with VMEXIT_INVALID. */
  VMRUN: 0,
  VMMCALL: 1,
  VMLOAD: 2,
  VMSAVE: 3,
  STGI: 4,
  CLGI: 5,
  SKINIT: 6, // APM only
  RDTSCP: 7, // APM only
  ICEBP: 8,
  WBINVD: 9, // APM only (9–13 likewise)
  MONITOR: 10,
  MWAIT: 11,
  MWAIT_CONDITIONAL: 12,
  XSETBV: 13,
} as const;

// ---------------------------------------------------------------------------------------------
// EVENTINJ (VMCB 0x0A8) and EXITINTINFO (VMCB 0x088): one 64-bit layout (APM 15.20, 15.7.2)

export const EVENTINJ = {
  VECTOR_MASK: 0xffn,
  TYPE_SHIFT: 8n,
  TYPE_MASK: 0x7n << 8n,
  /** Error code valid: pushed on delivery; the code is bits 63:32. */
  EV: 1n << 11n,
  /** Bits 30:12, should be zero. */
  RESERVED_MASK: 0x7ffffn << 12n,
  /** Valid. */
  V: 1n << 31n,
  ERR_SHIFT: 32n,
  ERR_MASK: 0xffff_ffffn << 32n,
} as const;

/** EVENTINJ.TYPE values; 1, 5, 6, 7 are reserved (VMRUN fails). */
export const EVENT_TYPE = {
  INTR: 0,
  NMI: 2,
  EXCEPTION: 3,
  SOFT_INT: 4,
} as const;

export type EventTypeName = keyof typeof EVENT_TYPE;

/** Name of an EVENTINJ type (`SOFT_INT`), undefined for a reserved one. */
export function eventTypeName(type: number): EventTypeName | undefined {
  for (const [name, v] of Object.entries(EVENT_TYPE)) if (v === type) return name as EventTypeName;
  return undefined;
}

export interface EventInfo {
  valid: boolean;
  vector: number;
  type: number;
  ev: boolean;
  /** Bits 30:12 (should be zero). */
  reserved: number;
  /** Bits 63:32 (the error code when ev). */
  errorCode: number;
}

/** Split an EVENTINJ / EXITINTINFO value into its fields. */
export function parseEventInfo(value: bigint): EventInfo {
  return {
    valid: (value & EVENTINJ.V) !== 0n,
    vector: Number(value & EVENTINJ.VECTOR_MASK),
    type: Number((value & EVENTINJ.TYPE_MASK) >> EVENTINJ.TYPE_SHIFT),
    ev: (value & EVENTINJ.EV) !== 0n,
    reserved: Number((value & EVENTINJ.RESERVED_MASK) >> 12n),
    errorCode: Number((value >> EVENTINJ.ERR_SHIFT) & 0xffff_ffffn),
  };
}

/**
 * A soft exception: TYPE 3 (exception) with vector 3 (#BP) or 4 (#OF), the exceptions INT3 and INTO
 * raise. Injected, it is delivered "like a trap raised by INT3 and INTO", with the gate-DPL check
 * (APM vol. 2 15.20; docs/svm-rules.md "Soft events").
 */
export function isSoftException(info: Pick<EventInfo, 'type' | 'vector'>): boolean {
  return info.type === EVENT_TYPE.EXCEPTION && (info.vector === VEC.BP || info.vector === VEC.OF);
}

/**
 * A soft event: TYPE 4 (INT n) or a soft exception. These stand for an instruction's trap: an
 * injected one pushes next_rip (with NRIPS), and an interrupted one is known by the instruction's
 * RIP, not by EXITINTINFO (APM vol. 2 15.20, 15.7.1; docs/svm-rules.md "Soft events").
 */
export function isSoftEvent(info: Pick<EventInfo, 'type' | 'vector'>): boolean {
  return info.type === EVENT_TYPE.SOFT_INT || isSoftException(info);
}

/** Compose an EVENTINJ value (V set unless valid: false). */
export function makeEventInj(e: { vector: number; type: number; ev?: boolean; errorCode?: number; valid?: boolean }): bigint {
  let v = BigInt(e.vector & 0xff) | (BigInt(e.type & 7) << EVENTINJ.TYPE_SHIFT);
  if (e.ev) v |= EVENTINJ.EV;
  if (e.valid !== false) v |= EVENTINJ.V;
  if (e.errorCode !== undefined) v |= BigInt(e.errorCode >>> 0) << EVENTINJ.ERR_SHIFT;
  return v;
}

// ---------------------------------------------------------------------------------------------
// #NPF EXITINFO1 bits (APM 15.25.6)

export const NPF_INFO = {
  P: 1n << 0n,
  RW: 1n << 1n,
  US: 1n << 2n,
  RSV: 1n << 3n,
  ID: 1n << 4n,
  /** The fault happened on the final guest-physical address. */
  FINAL: 1n << 32n,
  /** The fault happened on a guest page-table access. */
  WALK: 1n << 33n,
} as const;

// ---------------------------------------------------------------------------------------------
// MSRs (arch/msr.ts) and CPUID (arch/cpuid.ts): defined there, re-exported here for the SVM users

export { MSR, EFER, VM_CR } from './msr.ts';
export { CPUID_LEAF, CPUID_EXT_ECX, CPUID_SVM_EDX } from './cpuid.ts';
