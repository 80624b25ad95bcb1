// Fast forms: the register and immediate forms of the instructions a kernel runs most, compiled
// once per decoded instruction into a closure that works on 32-bit halves of the registers.
//
// Why: the general handlers (arith.ts, logic.ts, data.ts, control.ts) are the reference and read
// like the manual, but every operand goes through readOp/writeOp and every value is a bigint,
// and a bigint that escapes (an operand kept for the flags) costs an allocation — 10 ns or more
// each, several per instruction. Here the operands are resolved at decode time and the
// arithmetic and the flags are computed on numbers (cpu.gpr32: the same storage as cpu.gpr,
// seen as 32-bit halves, low half first on this little-endian host).
//
// The semantics are those of the general handlers, not a second reading of the manual: the same
// results, the same six status flags with the same rules for undefined ones (cpu/flags.ts). Only
// forms that cannot fault are taken (register and immediate operands, 32- and 64-bit operand
// size, branches whose target check can be settled here or is a plain limit compare); every
// other form returns undefined and keeps its general handler. test/model-fast.spec.ts runs each
// form against its general handler on edge and random values.

import type { Cpu, Handler } from '../cpu/cpu.ts';
import { isCanonical } from '../cpu/cpu.ts';
import { F, STATUS } from '../cpu/flags.ts';
import { GPR, SEG } from '../cpu/state.ts';
import type { Insn, Operand } from '../decode.ts';
import { condition, CONDITION_SUFFIXES } from './condition.ts';

if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) throw new Error('model: fast forms assume a little-endian host');

const PARITY = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  let bits = 0;
  for (let b = i; b; b >>= 1) bits += b & 1;
  PARITY[i] = bits % 2 === 0 ? F.PF : 0;
}

/** ZF, SF, PF of a 64-bit result given as halves (or a 32-bit one with hi = its own value, see szp32). */
const szp64 = (lo: number, hi: number): number => ((lo | hi) === 0 ? F.ZF : 0) | ((hi & 0x8000_0000) !== 0 ? F.SF : 0) | PARITY[lo & 0xff]!;
const szp32 = (r: number): number => (r === 0 ? F.ZF : 0) | ((r & 0x8000_0000) !== 0 ? F.SF : 0) | PARITY[r & 0xff]!;

/** Bit k (0–63) of the 64-bit value lo:hi. */
const bit64 = (lo: number, hi: number, k: number): number => (k < 32 ? (lo >>> k) & 1 : (hi >>> (k - 32)) & 1);

const setStatus = (cpu: Cpu, f: number, which = STATUS): void => {
  cpu.rflags = (cpu.rflags & ~which) | f;
};

/** A general-purpose register operand of 32 or 64 bits (not AH–BH, not a segment register). */
function gpr(op: Operand | undefined, size?: number): number | undefined {
  if (op === undefined || op.kind !== 'reg' || op.reg.kind !== 'gpr' || op.reg.high8) return undefined;
  if (op.size !== 4 && op.size !== 8) return undefined;
  if (size !== undefined && op.size !== size) return undefined;
  return op.reg.index;
}

/** Source of a binary form: a register (index) or an immediate (halves, already extended by the decoder). */
interface Source {
  reg: number;
  lo: number;
  hi: number;
}

function source(op: Operand | undefined, size: number): Source | undefined {
  if (op === undefined) return undefined;
  if (op.kind === 'imm') return { reg: -1, lo: Number(op.value & 0xffff_ffffn), hi: size === 8 ? Number((op.value >> 32n) & 0xffff_ffffn) : 0 };
  const r = gpr(op, size);
  return r === undefined ? undefined : { reg: r, lo: 0, hi: 0 };
}

// ---- ADD, SUB, CMP, AND, OR, XOR, TEST; INC, DEC ------------------------------------------------------

type Binary = 'add' | 'sub' | 'cmp' | 'and' | 'or' | 'xor' | 'test';
const BINARY: Record<string, Binary> = { Add: 'add', Sub: 'sub', Cmp: 'cmp', And: 'and', Or: 'or', Xor: 'xor', Test: 'test' };

/**
 * dst ← dst op src with the flags of arith.ts (addFlags/subFlags) or logic.ts (logicFlags: CF =
 * OF = AF = 0). a, b are the operands' halves, r the result's; for 32-bit forms the high halves
 * are 0 and the result's high half is written as 0 (the zero extension of a 32-bit write).
 */
function binary(op: Binary, size: number, d: number, s: Source): Handler {
  const lo = 2 * d;
  const hi = lo + 1;
  const sr = s.reg;
  const write = op !== 'cmp' && op !== 'test';
  if (size === 4) {
    return (cpu) => {
      const g = cpu.gpr32;
      const a = g[lo]!;
      const b = sr < 0 ? s.lo : g[2 * sr]!;
      let r: number;
      let f: number;
      switch (op) {
        case 'add': {
          const sum = a + b;
          r = sum >>> 0;
          f = szp32(r) | (sum > 0xffff_ffff ? F.CF : 0) | ((a ^ b ^ r) & F.AF) | ((~(a ^ b) & (a ^ r)) < 0 ? F.OF : 0);
          break;
        }
        case 'sub': case 'cmp': {
          r = (a - b) >>> 0;
          f = szp32(r) | (a < b ? F.CF : 0) | ((a ^ b ^ r) & F.AF) | (((a ^ b) & (a ^ r)) < 0 ? F.OF : 0);
          break;
        }
        case 'and': case 'test': r = (a & b) >>> 0; f = szp32(r); break;
        case 'or': r = (a | b) >>> 0; f = szp32(r); break;
        default: r = (a ^ b) >>> 0; f = szp32(r); break;
      }
      if (write) {
        g[lo] = r;
        g[hi] = 0;
      }
      setStatus(cpu, f);
    };
  }
  return (cpu) => {
    const g = cpu.gpr32;
    const alo = g[lo]!;
    const ahi = g[hi]!;
    const blo = sr < 0 ? s.lo : g[2 * sr]!;
    const bhi = sr < 0 ? s.hi : g[2 * sr + 1]!;
    let rlo: number;
    let rhi: number;
    let f: number;
    switch (op) {
      case 'add': {
        const l = alo + blo;
        const h = ahi + bhi + (l > 0xffff_ffff ? 1 : 0);
        rlo = l >>> 0;
        rhi = h >>> 0;
        f = szp64(rlo, rhi) | (h > 0xffff_ffff ? F.CF : 0) | ((alo ^ blo ^ rlo) & F.AF) | ((~(ahi ^ bhi) & (ahi ^ rhi)) < 0 ? F.OF : 0);
        break;
      }
      case 'sub': case 'cmp': {
        const l = alo - blo;
        const h = ahi - bhi - (l < 0 ? 1 : 0);
        rlo = l >>> 0;
        rhi = h >>> 0;
        f = szp64(rlo, rhi) | (h < 0 ? F.CF : 0) | ((alo ^ blo ^ rlo) & F.AF) | (((ahi ^ bhi) & (ahi ^ rhi)) < 0 ? F.OF : 0);
        break;
      }
      case 'and': case 'test': rlo = (alo & blo) >>> 0; rhi = (ahi & bhi) >>> 0; f = szp64(rlo, rhi); break;
      case 'or': rlo = (alo | blo) >>> 0; rhi = (ahi | bhi) >>> 0; f = szp64(rlo, rhi); break;
      default: rlo = (alo ^ blo) >>> 0; rhi = (ahi ^ bhi) >>> 0; f = szp64(rlo, rhi); break;
    }
    if (write) {
      g[lo] = rlo;
      g[hi] = rhi;
    }
    setStatus(cpu, f);
  };
}

/** INC, DEC: ± 1 with the flags of ADD/SUB except CF, which is left alone (arith.ts). */
function incDec(dec: boolean, size: number, d: number): Handler {
  const lo = 2 * d;
  const hi = lo + 1;
  const which = STATUS & ~F.CF;
  return (cpu) => {
    const g = cpu.gpr32;
    const alo = g[lo]!;
    const ahi = size === 8 ? g[hi]! : 0;
    // a ± 1: the high half changes only when the low half wraps
    const rlo = (dec ? alo - 1 : alo + 1) >>> 0;
    const rhi = size === 8 && (dec ? alo === 0 : alo === 0xffff_ffff) ? (dec ? ahi - 1 : ahi + 1) >>> 0 : ahi;
    // OF: ADD of 1 overflows when the sign goes from 0 to 1, SUB of 1 when it goes from 1 to 0
    const before = size === 8 ? ahi : alo;
    const after = size === 8 ? rhi : rlo;
    const of = dec ? (before & ~after) < 0 : (~before & after) < 0;
    g[lo] = rlo;
    g[hi] = rhi;
    setStatus(cpu, (size === 8 ? szp64(rlo, rhi) : szp32(rlo)) | ((alo ^ rlo) & F.AF) | (of ? F.OF : 0), which);
  };
}

// ---- SHL/SAL, SHR by an immediate count (logic.ts defineShift) ---------------------------------------

function shift(left: boolean, size: number, d: number, count: number): Handler {
  const lo = 2 * d;
  const hi = lo + 1;
  const n = count & (size === 8 ? 0x3f : 0x1f);
  if (n === 0) {
    // no flags change; the destination is written back (a 32-bit register is zero-extended)
    return size === 8 ? () => {} : (cpu) => { cpu.gpr32[hi] = 0; };
  }
  const w = size * 8;
  return (cpu) => {
    const g = cpu.gpr32;
    const vlo = g[lo]!;
    const vhi = size === 8 ? g[hi]! : 0;
    let rlo: number;
    let rhi: number;
    let cf: number;
    let of: number;
    if (left) {
      if (n < 32) {
        rlo = (vlo << n) >>> 0;
        rhi = size === 8 ? ((vhi << n) | (vlo >>> (32 - n))) >>> 0 : 0;
      } else {
        rlo = 0;
        rhi = (vlo << (n - 32)) >>> 0;
      }
      cf = bit64(vlo, vhi, w - n); // the last bit shifted out
      of = ((size === 8 ? rhi : rlo) >>> 31) ^ cf; // 1-bit SHL: MSB(result) xor CF
    } else {
      if (n < 32) {
        rlo = ((vlo >>> n) | (vhi << (32 - n))) >>> 0; // n ≥ 1 here
        rhi = vhi >>> n;
      } else {
        rlo = vhi >>> (n - 32);
        rhi = 0;
      }
      cf = bit64(vlo, vhi, n - 1);
      of = n === 1 ? (size === 8 ? vhi : vlo) >>> 31 : 0; // 1-bit SHR: MSB of the operand
    }
    g[lo] = rlo;
    g[hi] = rhi;
    setStatus(cpu, (size === 8 ? szp64(rlo, rhi) : szp32(rlo)) | (cf ? F.CF : 0) | (of ? F.OF : 0));
  };
}

// ---- MOV, LEA (data.ts) ----------------------------------------------------------------------------------

function mov(size: number, d: number, s: Source): Handler {
  const lo = 2 * d;
  const hi = lo + 1;
  const sr = s.reg;
  if (sr < 0) {
    const ilo = s.lo;
    const ihi = size === 8 ? s.hi : 0;
    return (cpu) => {
      const g = cpu.gpr32;
      g[lo] = ilo;
      g[hi] = ihi;
    };
  }
  return (cpu) => {
    const g = cpu.gpr32;
    g[lo] = g[2 * sr]!;
    g[hi] = size === 8 ? g[2 * sr + 1]! : 0;
  };
}

/** LEA with a 64-bit address and operand size: one lowered bigint expression, nothing escapes. */
function lea64(d: number, op: Extract<Operand, { kind: 'mem' }>): Handler | undefined {
  if (op.addrSize !== 8 || op.base < 0) return undefined;
  const base = op.base;
  const disp = op.disp;
  if (op.index < 0) return (cpu) => { cpu.gpr[d] = BigInt.asUintN(64, cpu.gpr[base]! + disp); };
  const index = op.index;
  const scale = BigInt(op.scale);
  return (cpu) => { cpu.gpr[d] = BigInt.asUintN(64, cpu.gpr[base]! + cpu.gpr[index]! * scale + disp); };
}

// ---- Jcc, LOOP (control.ts) --------------------------------------------------------------------------------

/**
 * The target of a rel form and how to check it (control.ts nearBranch): 64-bit operand size
 * means 64-bit mode, where a non-canonical target (known now) would fault, so that form is left
 * to the general handler; 32-bit operand size means outside 64-bit mode, where the target is
 * compared with the CS limit at run time. 16-bit forms keep the general handler.
 */
interface Branch {
  target: bigint;
  /** The target as a number to compare with the CS limit, or -1 when there is nothing to check. */
  limitCheck: number;
}

function branch(op: Operand | undefined): Branch | undefined {
  if (op === undefined || op.kind !== 'rel') return undefined;
  if (op.size === 8) return isCanonical(op.target) ? { target: op.target, limitCheck: -1 } : undefined;
  if (op.size === 4) return { target: op.target, limitCheck: Number(op.target) };
  return undefined;
}

/** Would the branch fault? Then the general handler runs the instruction and raises it. */
const beyondLimit = (cpu: Cpu, b: Branch): boolean => b.limitCheck > cpu.seg[SEG.CS]!.limit;

function jcc(cc: number, b: Branch, general: Handler): Handler {
  const target = b.target;
  return (cpu, insn) => {
    if (!condition(cpu, cc)) return;
    if (b.limitCheck >= 0 && beyondLimit(cpu, b)) return general(cpu, insn);
    cpu.nextRip = target;
  };
}

/** LOOP with a 32- or 64-bit counter: rCX − 1 (no flags), branch while it is not 0. */
function loop(csize: number, b: Branch, general: Handler): Handler {
  const lo = 2 * GPR.RCX;
  const hi = lo + 1;
  const target = b.target;
  return (cpu, insn) => {
    const g = cpu.gpr32;
    const clo = g[lo]!;
    const chi = csize === 8 ? g[hi]! : 0;
    const rlo = (clo - 1) >>> 0;
    const rhi = csize === 8 && clo === 0 ? (chi - 1) >>> 0 : chi;
    if ((rlo | rhi) !== 0) {
      // a faulting LOOP has not decremented rCX: the general handler raises the fault
      if (b.limitCheck >= 0 && beyondLimit(cpu, b)) return general(cpu, insn);
      cpu.nextRip = target;
    }
    g[lo] = rlo;
    g[hi] = rhi;
  };
}

// ---- selection -----------------------------------------------------------------------------------------

/** Jcc mnemonic → condition code. */
const jccCodes: ReadonlyMap<string, number> = new Map(CONDITION_SUFFIXES.map((suffix, cc) => [`J${suffix}`, cc]));

function compile(insn: Insn, general: Handler): Handler | undefined {
  if (insn.lock || insn.rep !== 'none') return undefined;
  const [a, b] = insn.ops;
  const m = insn.mnemonic;
  const d = gpr(a);
  const size = a?.size ?? 0;
  const bin = BINARY[m];
  if (bin !== undefined) {
    const s = source(b, size);
    return d !== undefined && s !== undefined && insn.ops.length === 2 ? binary(bin, size, d, s) : undefined;
  }
  switch (m) {
    case 'Inc': case 'Dec':
      return d !== undefined && insn.ops.length === 1 ? incDec(m === 'Dec', size, d) : undefined;
    case 'Shl': case 'Sal': case 'Shr':
      return d !== undefined && b?.kind === 'imm' ? shift(m !== 'Shr', size, d, Number(b.value)) : undefined;
    case 'Mov': {
      const s = source(b, size);
      return d !== undefined && s !== undefined ? mov(size, d, s) : undefined;
    }
    case 'Lea':
      return d !== undefined && size === 8 && b?.kind === 'mem' ? lea64(d, b) : undefined;
    case 'Loop': {
      const csize = insn.code.endsWith('_RCX') ? 8 : insn.code.endsWith('_ECX') ? 4 : 0;
      const target = branch(a);
      return csize !== 0 && target ? loop(csize, target, general) : undefined;
    }
  }
  const cc = jccCodes.get(m);
  if (cc !== undefined) {
    const target = branch(a);
    return target ? jcc(cc, target, general) : undefined;
  }
  return undefined;
}

/**
 * The fast form of a decoded instruction, or undefined. `general` is its general handler: a fast
 * branch hands the rare case it does not settle (a target beyond the CS limit) to it.
 */
export function fastForm(insn: Insn, general: Handler): Handler | undefined {
  return compile(insn, general);
}
