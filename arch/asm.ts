// The architectural constants of arch/x86.ts, arch/svm.ts, arch/msr.ts and arch/cpuid.ts rendered
// for the kernels' assembly.
// The generator prepends asmConstants() to every kernel source (next to arch/layout.ts's
// asmLayout()), so a template never spells a number the TypeScript side also knows.
//
// Naming rules (every name is upper case, `.set NAME, 0x…`):
//
//   VEC_<MN>                 exception vector number: VEC_DE 0, VEC_DB 1, VEC_NMI 2, VEC_BP 3 … VEC_SX 30
//   EXIT_<NAME>              #VMEXIT code (VMCB EXITCODE): EXIT_EXCP_BP 0x43, EXIT_VMMCALL 0x81,
//                            EXIT_NPF 0x400, EXIT_INVALID 0xffffffffffffffff; EXIT_EXCP_BASE 0x40,
//                            EXIT_CR_READ_BASE / EXIT_CR_WRITE_BASE / EXIT_DR_READ_BASE / EXIT_DR_WRITE_BASE
//   VMCB_<FIELD>             control-area byte offset: VMCB_EXIT_CODE 0x70, VMCB_EVENT_INJ 0xa8,
//                            VMCB_NEXT_RIP 0xc8, VMCB_INTERCEPT_EXCP 0x8, VMCB_INTERCEPT_MISC1 0xc …
//   VMCB_SAVE_<REG>          save-area byte offset from the VMCB start: VMCB_SAVE_RIP 0x578,
//                            VMCB_SAVE_CS 0x410 … (segments: add VMCB_SEG_SEL / _ATTRIB / _LIMIT / _BASE)
//   VMCB_SIZE                4 KiB
//   INTERCEPT_<NAME>         BIT NUMBER of an instruction/event intercept within its 32-bit word;
//   INTERCEPT_<NAME>_WORD    the VMCB offset of that word. Use: btsl $INTERCEPT_VMMCALL, INTERCEPT_VMMCALL_WORD(%rdi)
//                            Exception intercepts have no names: btsl $VEC_BP, VMCB_INTERCEPT_EXCP(%rdi)
//   EVENT_TYPE_<T>           the EVENTINJ TYPE field value, unshifted: INTR 0, NMI 2, EXCEPTION 3, SOFT_INT 4
//   EVENTINJ_TYPE_<T>        the same, already shifted into bits 10:8 (0x000, 0x200, 0x300, 0x400), so
//                            EVENTINJ_V | EVENTINJ_TYPE_SOFT_INT | 0x20 is a complete EVENTINJ low dword
//   EVENTINJ_V, EVENTINJ_EV  masks (bit 31, bit 11); EVENTINJ_VEC_MASK 0xff, EVENTINJ_TYPE_MASK 0x700,
//                            EVENTINJ_TYPE_SHIFT 8, EVENTINJ_ERR_SHIFT 32, EVENTINJ_RESERVED_MASK
//   MSR_<NAME>               MSR number: MSR_EFER, MSR_VM_CR, MSR_VM_HSAVE_PA
//   CPUID_LEAF_<NAME>        CPUID leaf: CPUID_LEAF_EXT_FEATURES 0x80000001, CPUID_LEAF_SVM 0x8000000a
//   GATE_<KIND>              IDT gate attribute byte (P | DPL << 5 | type): GATE_INT 0x8e, GATE_TRAP 0x8f,
//                            GATE_INT_DPL3 0xee, GATE_TRAP_DPL3 0xef; GATE64_SIZE 16
//   TSS_RSP<n>, TSS_IST<n>   64-bit TSS offsets: TSS_RSP0 4, TSS_IST1 0x24 …; TSS_IOMAP, TSS64_SIZE 104
//
// Flags (every other single-bit constant) come twice:
//   <REG>_<FLAG>             the MASK:        EFER_SVME 0x1000, RFLAGS_IF 0x200, CPUID_SVM_EDX_NRIPS 0x8
//   <REG>_<FLAG>_BIT         the BIT NUMBER:  EFER_SVME_BIT 12, RFLAGS_IF_BIT 9, CPUID_SVM_EDX_NRIPS_BIT 3
// with <REG> one of RFLAGS, CR0, CR4, PF_ERR, EFER, VM_CR, CPUID_EXT_ECX, CPUID_SVM_EDX, NPF_INFO,
// INT_CTL, INT_STATE, NESTED_CTL, SEG_ATTRIB, EVENTINJ (V, EV). Multi-bit fields give _MASK and _SHIFT.
// TLB_CONTROL_<NAME> are the values of the TLB_CONTROL byte.
//
// Beware of 64-bit immediates: `orq $EVENTINJ_V, %rax` sign-extends 0x80000000; use orl on the low
// dword, btsq $EVENTINJ_V_BIT, or movabs.

import { CR0, CR4, DR7, GATE64_SIZE, GATE_ATTR, PF_ERR, RFLAGS, TSS64, VEC } from './x86.ts';
import {
  CPUID_EXT_ECX, CPUID_LEAF, CPUID_SVM_EDX, EFER, EVENTINJ, EVENT_TYPE, EXIT, EXIT_RANGE, INT_CTL,
  INT_STATE, INTERCEPT_MISC1, INTERCEPT_MISC2, MSR, NESTED_CTL, NPF_INFO, SEG_ATTRIB, TLB_CONTROL,
  VMCB, VMCB_SAVE, VMCB_SEG, VMCB_SIZE, VM_CR,
} from './svm.ts';

export type AsmConstant = readonly [name: string, value: bigint];

const big = (v: number | bigint): bigint => (typeof v === 'bigint' ? v : BigInt(v));

function singleBit(mask: bigint): number | undefined {
  if (mask <= 0n || (mask & (mask - 1n)) !== 0n) return undefined;
  let n = 0;
  while ((mask >> BigInt(n)) !== 1n) n++;
  return n;
}

/** `<prefix>_<key>` for every entry of a table. */
function plain(prefix: string, table: Record<string, number | bigint>): AsmConstant[] {
  return Object.entries(table).map(([k, v]) => [`${prefix}_${k}`, big(v)] as const);
}

/** Flag masks: `<prefix>_<key>` = mask and, for single-bit masks, `<prefix>_<key>_BIT` = bit number. */
function flags(prefix: string, table: Record<string, number | bigint>): AsmConstant[] {
  const out: AsmConstant[] = [];
  for (const [k, v] of Object.entries(table)) {
    out.push([`${prefix}_${k}`, big(v)]);
    const bit = singleBit(big(v));
    if (bit !== undefined && !k.endsWith('_MASK') && !k.endsWith('_SHIFT')) out.push([`${prefix}_${k}_BIT`, BigInt(bit)]);
  }
  return out;
}

/** Bit-number tables (`*_BIT` keys): `<prefix>_<NAME>_BIT` = bit and `<prefix>_<NAME>` = the mask. */
function bitNumbers(prefix: string, table: Record<string, number>): AsmConstant[] {
  const out: AsmConstant[] = [];
  for (const [k, v] of Object.entries(table)) {
    if (k.endsWith('_BIT')) {
      out.push([`${prefix}_${k}`, BigInt(v)]);
      out.push([`${prefix}_${k.slice(0, -4)}`, 1n << BigInt(v)]);
    } else {
      out.push([`${prefix}_${k}`, BigInt(v)]);
    }
  }
  return out;
}

/** Every constant the kernels may use, in emission order. Names are unique (checked). */
export function asmConstantTable(): AsmConstant[] {
  const t: AsmConstant[] = [];
  t.push(...plain('VEC', VEC));

  t.push(...plain('EXIT', EXIT));
  t.push(['EXIT_CR_READ_BASE', EXIT_RANGE.CR_READ], ['EXIT_CR_WRITE_BASE', EXIT_RANGE.CR_WRITE]);
  t.push(['EXIT_DR_READ_BASE', EXIT_RANGE.DR_READ], ['EXIT_DR_WRITE_BASE', EXIT_RANGE.DR_WRITE]);

  t.push(['VMCB_SIZE', BigInt(VMCB_SIZE)]);
  t.push(...plain('VMCB', VMCB));
  t.push(...plain('VMCB_SAVE', VMCB_SAVE));
  t.push(['VMCB_SEG_SEL', BigInt(VMCB_SEG.SELECTOR)], ['VMCB_SEG_ATTRIB', BigInt(VMCB_SEG.ATTRIB)]);
  t.push(['VMCB_SEG_LIMIT', BigInt(VMCB_SEG.LIMIT)], ['VMCB_SEG_BASE', BigInt(VMCB_SEG.BASE)]);
  t.push(['VMCB_SEG_SIZE', BigInt(VMCB_SEG.SIZE)]);
  t.push(...flags('SEG_ATTRIB', SEG_ATTRIB));

  for (const [k, bit] of Object.entries(INTERCEPT_MISC1)) {
    t.push([`INTERCEPT_${k}`, BigInt(bit)], [`INTERCEPT_${k}_WORD`, BigInt(VMCB.INTERCEPT_MISC1)]);
  }
  for (const [k, bit] of Object.entries(INTERCEPT_MISC2)) {
    t.push([`INTERCEPT_${k}`, BigInt(bit)], [`INTERCEPT_${k}_WORD`, BigInt(VMCB.INTERCEPT_MISC2)]);
  }

  t.push(...bitNumbers('INT_CTL', INT_CTL));
  t.push(...bitNumbers('INT_STATE', INT_STATE));
  t.push(...bitNumbers('NESTED_CTL', NESTED_CTL));
  t.push(...plain('TLB_CONTROL', TLB_CONTROL));

  t.push(...plain('EVENT_TYPE', EVENT_TYPE));
  for (const [k, v] of Object.entries(EVENT_TYPE)) t.push([`EVENTINJ_TYPE_${k}`, BigInt(v) << EVENTINJ.TYPE_SHIFT]);
  t.push(['EVENTINJ_VEC_MASK', EVENTINJ.VECTOR_MASK]);
  t.push(['EVENTINJ_TYPE_MASK', EVENTINJ.TYPE_MASK], ['EVENTINJ_TYPE_SHIFT', EVENTINJ.TYPE_SHIFT]);
  t.push(...flags('EVENTINJ', { EV: EVENTINJ.EV, V: EVENTINJ.V }));
  t.push(['EVENTINJ_RESERVED_MASK', EVENTINJ.RESERVED_MASK], ['EVENTINJ_ERR_SHIFT', EVENTINJ.ERR_SHIFT]);

  t.push(...flags('NPF_INFO', NPF_INFO));

  t.push(...plain('MSR', MSR));
  t.push(...flags('EFER', EFER));
  t.push(...flags('VM_CR', VM_CR));

  t.push(...plain('CPUID_LEAF', CPUID_LEAF));
  for (const [k, bit] of Object.entries(CPUID_EXT_ECX)) t.push([`CPUID_EXT_ECX_${k}`, 1n << BigInt(bit)], [`CPUID_EXT_ECX_${k}_BIT`, BigInt(bit)]);
  for (const [k, bit] of Object.entries(CPUID_SVM_EDX)) t.push([`CPUID_SVM_EDX_${k}`, 1n << BigInt(bit)], [`CPUID_SVM_EDX_${k}_BIT`, BigInt(bit)]);

  t.push(...plain('GATE', GATE_ATTR), ['GATE64_SIZE', BigInt(GATE64_SIZE)]);
  t.push(['TSS64_SIZE', BigInt(TSS64.SIZE)], ['TSS_IOMAP', BigInt(TSS64.IOMAP)]);
  for (let n = 0; n < 3; n++) t.push([`TSS_RSP${n}`, BigInt(TSS64.RSP0 + 8 * n)]);
  for (let n = 1; n <= 7; n++) t.push([`TSS_IST${n}`, BigInt(TSS64.IST1 + 8 * (n - 1))]);

  t.push(...flags('RFLAGS', RFLAGS));
  t.push(...flags('DR7', DR7));
  t.push(...flags('CR0', CR0));
  t.push(...flags('CR4', CR4));
  t.push(...flags('PF_ERR', PF_ERR));

  const seen = new Set<string>();
  for (const [name] of t) {
    if (seen.has(name)) throw new Error(`arch/asm.ts: duplicate assembly constant ${name}`);
    if (!/^[A-Z][A-Z0-9_]*$/.test(name)) throw new Error(`arch/asm.ts: bad assembly constant name ${name}`);
    seen.add(name);
  }
  return t;
}

/** GNU as `.set NAME, 0x…` lines for every constant of asmConstantTable(), with a header comment. */
export function asmConstants(): string {
  const lines = ['/* svmconf architectural constants (generated from arch/x86.ts, arch/svm.ts by arch/asm.ts) */'];
  for (const [name, value] of asmConstantTable()) lines.push(`.set ${name}, 0x${value.toString(16)}`);
  return lines.join('\n') + '\n';
}
