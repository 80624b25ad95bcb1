// Logical, shift/rotate, bit and flag instructions (APM vol. 1 3.3.7–3.3.11, 3.3.14 "Flags";
// vol. 3 ch. 3: AND, OR, XOR, NOT, TEST, SHL/SAL, SHR, SAR, ROL, ROR, RCL, RCR, BT, BTS, BTR, BTC,
// SETcc, CLC, STC, CMC, CLD, STD, LAHF, SAHF).
//
// Destinations are written before RFLAGS changes, so a faulting write leaves the flags alone.
// Undefined flags follow the rule in cpu/flags.ts.

import type { Cpu } from '../cpu/cpu.ts';
import { maskOf } from '../cpu/cpu.ts';
import { F, logicFlags, szp, withStatus } from '../cpu/flags.ts';
import { Fault } from '../cpu/fault.ts';
import { GPR } from '../cpu/state.ts';
import type { Insn } from '../decode.ts';
import { cpuidOf } from '../profile.ts';
import { VEC } from '../../arch/x86.ts';
import { CPUID_EXT_ECX, CPUID_LEAF } from '../../arch/cpuid.ts';
import { condition, CONDITION_SUFFIXES } from './condition.ts';
import { define } from './registry.ts';

// ---- AND, OR, XOR, TEST: CF = OF = 0, SF/ZF/PF from the result (AF = 0, cpu/flags.ts) -----------

function defineLogic(mnemonic: string, fn: (a: bigint, b: bigint) => bigint, write: boolean): void {
  define(mnemonic, (cpu, insn) => {
    const dst = insn.ops[0]!;
    const r = fn(cpu.readOp(dst), cpu.readOp(insn.ops[1]!));
    if (write) cpu.writeOp(dst, r);
    cpu.rflags = withStatus(cpu.rflags, logicFlags(r, dst.size));
  });
}
defineLogic('And', (a, b) => a & b, true);
defineLogic('Or', (a, b) => a | b, true);
defineLogic('Xor', (a, b) => a ^ b, true);
defineLogic('Test', (a, b) => a & b, false);

// NOT: one's complement; no flags.
define('Not', (cpu, insn) => {
  const dst = insn.ops[0]!;
  cpu.writeOp(dst, ~cpu.readOp(dst) & maskOf(dst.size));
});

// ---- Shifts and rotates ------------------------------------------------------------------------------
// The count (imm8, CL or the implicit 1) is masked to 6 bits for 64-bit operands and to 5 bits
// otherwise (APM vol. 3 SAL/SHL: "The processor masks the upper three bits of the count operand,
// thus restricting the count to a number between 0 and 31", six bits with REX.W). A masked count
// of 0 changes no flags; the destination is still written back (a 32-bit register is
// zero-extended as by every 32-bit write). OF is defined for a count of 1; for other counts it is
// made deterministic by the rule in cpu/flags.ts (the 1-bit formula of the last step).

function shiftCount(cpu: Cpu, insn: Insn, size: number): number {
  return Number(cpu.readOp(insn.ops[1]!) & (size === 8 ? 0x3fn : 0x1fn));
}

const msb = (v: bigint, size: number): number => Number((v >> BigInt(size * 8 - 1)) & 1n);

type ShiftKind = 'shl' | 'shr' | 'sar';

/** SHL/SAL, SHR, SAR: CF = the last bit shifted out; SF, ZF, PF from the result; AF = 0. */
function defineShift(mnemonic: string, kind: ShiftKind): void {
  define(mnemonic, (cpu, insn) => {
    const dst = insn.ops[0]!;
    const size = dst.size;
    const v = cpu.readOp(dst);
    const n = shiftCount(cpu, insn, size);
    if (n === 0) {
      cpu.writeOp(dst, v);
      return;
    }
    const bits = BigInt(size * 8);
    const nb = BigInt(n);
    let r: bigint;
    let cf: number;
    let of: number;
    if (kind === 'shl') {
      r = (v << nb) & maskOf(size);
      cf = Number(((v << nb) >> bits) & 1n); // bit w − n of the operand, 0 once n > w
      of = msb(r, size) ^ cf; // 1-bit SHL: OF = MSB(result) xor CF
    } else if (kind === 'shr') {
      r = v >> nb;
      cf = Number((v >> (nb - 1n)) & 1n);
      of = msb(v >> (nb - 1n), size); // 1-bit SHR: OF = MSB of the operand before the step
    } else {
      const sv = BigInt.asIntN(size * 8, v);
      r = (sv >> nb) & maskOf(size);
      cf = Number((sv >> (nb - 1n)) & 1n); // the sign once every bit is shifted out
      of = 0; // 1-bit SAR: OF = 0
    }
    cpu.writeOp(dst, r);
    cpu.rflags = withStatus(cpu.rflags, szp(r, size) | (cf ? F.CF : 0) | (of ? F.OF : 0));
  });
}
defineShift('Shl', 'shl');
defineShift('Sal', 'shl'); // D0–D3/C0–C1 /6: the same operation (iced names it SAL)
defineShift('Shr', 'shr');
defineShift('Sar', 'sar');

type RotateKind = 'rol' | 'ror' | 'rcl' | 'rcr';

/**
 * ROL, ROR (the operand rotated, count modulo its width) and RCL, RCR (the operand and CF
 * rotated as one value of width + 1 bits, count modulo width + 1). Only CF and OF change, and
 * only when the masked count is not 0. CF: ROL the bit rotated into bit 0, ROR the one into the
 * MSB, RCL/RCR the bit last rotated into CF. OF: ROL/RCL MSB(result) xor CF; ROR/RCR MSB(result)
 * xor the bit below it.
 */
function defineRotate(mnemonic: string, kind: RotateKind): void {
  define(mnemonic, (cpu, insn) => {
    const dst = insn.ops[0]!;
    const size = dst.size;
    const v = cpu.readOp(dst);
    const n = shiftCount(cpu, insn, size);
    if (n === 0) {
      cpu.writeOp(dst, v);
      return;
    }
    const w = size * 8;
    const bits = BigInt(w);
    let r: bigint;
    let cf: number;
    if (kind === 'rol' || kind === 'ror') {
      const k = BigInt(n % w);
      r = kind === 'rol' ? ((v << k) | (v >> (bits - k))) & maskOf(size) : ((v >> k) | (v << (bits - k))) & maskOf(size);
      cf = kind === 'rol' ? Number(r & 1n) : msb(r, size);
    } else {
      const k = BigInt(n % (w + 1));
      const wide = (BigInt(cpu.rflags & F.CF) << bits) | v; // CF above the operand: w + 1 bits
      const wmask = (1n << (bits + 1n)) - 1n;
      const rot = kind === 'rcl' ? ((wide << k) | (wide >> (bits + 1n - k))) & wmask : ((wide >> k) | (wide << (bits + 1n - k))) & wmask;
      r = rot & maskOf(size);
      cf = Number(rot >> bits);
    }
    const of = kind === 'rol' || kind === 'rcl' ? msb(r, size) ^ cf : msb(r, size) ^ msb(r << 1n, size);
    cpu.writeOp(dst, r);
    cpu.rflags = withStatus(cpu.rflags, (cf ? F.CF : 0) | (of ? F.OF : 0), F.CF | F.OF);
  });
}
defineRotate('Rol', 'rol');
defineRotate('Ror', 'ror');
defineRotate('Rcl', 'rcl');
defineRotate('Rcr', 'rcr');

// ---- BT, BTS, BTR, BTC: CF ← the selected bit, then (except BT) set, clear or complement it ------
// An immediate bit offset is taken modulo the operand width. A register offset selects a bit of
// a register operand modulo the width too, but with a memory operand it is a signed bit index into
// a bit string starting at the operand's address: the operand-sized word at
// address + (offset SAR log2(width)) × (width / 8) is accessed (APM vol. 3 BT: "the bit offset
// can range from −2^31 to +2^31 − 1 … (−2^63 to +2^63 − 1 in 64-bit mode)"). Only CF changes
// (OF, SF, AF, PF are undefined and left as they were; ZF is unaffected).

type BitAction = 'test' | 'set' | 'reset' | 'complement';

function defineBit(mnemonic: string, action: BitAction): void {
  define(mnemonic, (cpu, insn) => {
    const dst = insn.ops[0]!;
    const src = insn.ops[1]!;
    const size = dst.size;
    const width = size * 8;
    const offset = cpu.readOp(src);
    // a register offset into a memory operand addresses a bit string; anything else is in-operand
    const bitString = dst.kind === 'mem' && src.kind !== 'imm';
    let bit: bigint;
    let ea = 0n;
    let seg = 0;
    let v: bigint;
    if (bitString) {
      const signedOffset = BigInt.asIntN(src.size * 8, offset);
      ea = (cpu.effectiveAddress(dst) + (signedOffset >> BigInt(Math.log2(width))) * BigInt(size)) & maskOf(dst.addrSize);
      bit = signedOffset & BigInt(width - 1);
      seg = dst.seg;
      v = cpu.read(seg, ea, size);
    } else {
      bit = offset & BigInt(width - 1);
      v = cpu.readOp(dst);
    }
    const m = 1n << bit;
    const cf = (v & m) !== 0n;
    if (action !== 'test') {
      const r = action === 'set' ? v | m : action === 'reset' ? v & ~m : v ^ m;
      if (bitString) cpu.write(seg, ea, size, r);
      else cpu.writeOp(dst, r);
    }
    cpu.rflags = cf ? cpu.rflags | F.CF : cpu.rflags & ~F.CF;
  });
}
defineBit('Bt', 'test');
defineBit('Bts', 'set');
defineBit('Btr', 'reset');
defineBit('Btc', 'complement');

// ---- SETcc: the byte operand ← 1 if the condition holds, else 0 -----------------------------------

CONDITION_SUFFIXES.forEach((suffix, cc) => {
  define(`Set${suffix}`, (cpu, insn) => cpu.writeOp(insn.ops[0]!, condition(cpu, cc) ? 1n : 0n));
});

// ---- Flag instructions (APM vol. 1 3.3.14) ----------------------------------------------------------

define('Clc', (cpu) => { cpu.rflags &= ~F.CF; });
define('Stc', (cpu) => { cpu.rflags |= F.CF; });
define('Cmc', (cpu) => { cpu.rflags ^= F.CF; });
define('Cld', (cpu) => { cpu.rflags &= ~F.DF; });
define('Std', (cpu) => { cpu.rflags |= F.DF; });

/** The flags LAHF/SAHF move: SF, ZF, AF, PF, CF (bits 7, 6, 4, 2, 0 of RFLAGS). */
const AH_FLAGS = F.SF | F.ZF | F.AF | F.PF | F.CF;

/** In 64-bit mode LAHF/SAHF exist only when CPUID Fn8000_0001 ECX[LahfSahf] (bit 0) is 1, else #UD. */
function checkLahfSahf(cpu: Cpu): void {
  if (cpu.mode64 && (cpuidOf(cpu.profile, CPUID_LEAF.EXT_FEATURES, 0).ecx & (1 << CPUID_EXT_ECX.LAHF_SAHF)) === 0) throw new Fault(VEC.UD);
}

// LAHF: AH ← SF:ZF:0:AF:0:PF:1:CF (bit 1 of RFLAGS reads 1).
define('Lahf', (cpu) => {
  checkLahfSahf(cpu);
  cpu.setGpr(GPR.RAX, 1, BigInt((cpu.rflags & AH_FLAGS) | F.FIXED1), true);
});

// SAHF: SF, ZF, AF, PF, CF ← the corresponding bits of AH; OF unchanged.
define('Sahf', (cpu) => {
  checkLahfSahf(cpu);
  cpu.rflags = withStatus(cpu.rflags, Number(cpu.getGpr(GPR.RAX, 1, true)), AH_FLAGS);
});
