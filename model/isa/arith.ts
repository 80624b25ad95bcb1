// Binary arithmetic (APM vol. 1 3.3.6 "Arithmetic"; vol. 3 ch. 3: ADD, ADC, SUB, SBB, CMP, INC,
// DEC, NEG, MUL, IMUL, DIV, IDIV).
//
// Every handler writes its destination before it changes RFLAGS: a fault on the write (#PF on a
// read-only page, #GP on a limit) then leaves the flags as they were, as the fault semantics of
// the manual require (the instruction has not executed). Undefined flags follow the rule in
// cpu/flags.ts.

import type { Cpu } from '../cpu/cpu.ts';
import { maskOf } from '../cpu/cpu.ts';
import { addFlags, F, STATUS, subFlags, szp, withStatus } from '../cpu/flags.ts';
import { Fault } from '../cpu/fault.ts';
import { GPR } from '../cpu/state.ts';
import type { Insn } from '../decode.ts';
import { VEC } from '../../arch/x86.ts';
import { define } from './registry.ts';

const carryIn = (cpu: Cpu): bigint => ((cpu.rflags & F.CF) !== 0 ? 1n : 0n);

// ---- ADD, ADC: dst ← dst + src (+ CF) ---------------------------------------------------------------

function defineAdd(mnemonic: string, withCarry: boolean): void {
  define(mnemonic, (cpu, insn) => {
    const dst = insn.ops[0]!;
    const size = dst.size;
    const a = cpu.readOp(dst);
    const b = cpu.readOp(insn.ops[1]!);
    const c = withCarry ? carryIn(cpu) : 0n;
    const r = (a + b + c) & maskOf(size);
    cpu.writeOp(dst, r);
    cpu.rflags = withStatus(cpu.rflags, addFlags(a, b, c, r, size));
  });
}
defineAdd('Add', false);
defineAdd('Adc', true);

// ---- SUB, SBB: dst ← dst − src (− CF); CMP: the same subtraction, flags only -----------------------

function defineSub(mnemonic: string, withBorrow: boolean, write: boolean): void {
  define(mnemonic, (cpu, insn) => {
    const dst = insn.ops[0]!;
    const size = dst.size;
    const a = cpu.readOp(dst);
    const b = cpu.readOp(insn.ops[1]!);
    const c = withBorrow ? carryIn(cpu) : 0n;
    const r = (a - b - c) & maskOf(size);
    if (write) cpu.writeOp(dst, r);
    cpu.rflags = withStatus(cpu.rflags, subFlags(a, b, c, r, size));
  });
}
defineSub('Sub', false, true);
defineSub('Sbb', true, true);
defineSub('Cmp', false, false);

// ---- INC, DEC: ± 1 with OF, SF, ZF, AF, PF as ADD/SUB give them; CF is not affected ----------------

define('Inc', (cpu, insn) => {
  const dst = insn.ops[0]!;
  const a = cpu.readOp(dst);
  const r = (a + 1n) & maskOf(dst.size);
  cpu.writeOp(dst, r);
  cpu.rflags = withStatus(cpu.rflags, addFlags(a, 1n, 0n, r, dst.size), STATUS & ~F.CF);
});

define('Dec', (cpu, insn) => {
  const dst = insn.ops[0]!;
  const a = cpu.readOp(dst);
  const r = (a - 1n) & maskOf(dst.size);
  cpu.writeOp(dst, r);
  cpu.rflags = withStatus(cpu.rflags, subFlags(a, 1n, 0n, r, dst.size), STATUS & ~F.CF);
});

// ---- NEG: dst ← 0 − dst; flags of that subtraction (so CF = 1 unless the operand was 0) ------------

define('Neg', (cpu, insn) => {
  const dst = insn.ops[0]!;
  const a = cpu.readOp(dst);
  const r = (0n - a) & maskOf(dst.size);
  cpu.writeOp(dst, r);
  cpu.rflags = withStatus(cpu.rflags, subFlags(0n, a, 0n, r, dst.size));
});

// ---- MUL, IMUL -----------------------------------------------------------------------------------
// One-operand forms multiply rAX by the operand into rDX:rAX (AX for bytes: AH:AL). CF = OF = 1
// when the upper half is significant: non-zero for MUL, not the sign extension of the lower half
// for IMUL. The two- and three-operand IMUL forms keep the lower half in the destination and set
// CF = OF when it lost significant bits. SF, ZF, PF from the lower half, AF = 0 (cpu/flags.ts).

const signed = (v: bigint, size: number): bigint => BigInt.asIntN(size * 8, v);

/** rDX:rAX ← hi:lo, or AX ← hi:lo for byte operands. */
function writeDouble(cpu: Cpu, size: number, lo: bigint, hi: bigint): void {
  if (size === 1) {
    cpu.setGpr(GPR.RAX, 2, (hi << 8n) | lo);
  } else {
    cpu.setGpr(GPR.RAX, size, lo);
    cpu.setGpr(GPR.RDX, size, hi);
  }
}

define('Mul', (cpu, insn) => {
  const src = insn.ops[0]!;
  const size = src.size;
  const product = cpu.getGpr(GPR.RAX, size) * cpu.readOp(src);
  const lo = product & maskOf(size);
  const hi = product >> BigInt(size * 8);
  writeDouble(cpu, size, lo, hi);
  cpu.rflags = withStatus(cpu.rflags, szp(lo, size) | (hi !== 0n ? F.CF | F.OF : 0));
});

define('Imul', (cpu, insn) => {
  const ops = insn.ops;
  if (ops.length === 1) {
    const size = ops[0]!.size;
    const product = signed(cpu.getGpr(GPR.RAX, size), size) * signed(cpu.readOp(ops[0]!), size);
    const lo = product & maskOf(size);
    const hi = (product >> BigInt(size * 8)) & maskOf(size);
    writeDouble(cpu, size, lo, hi);
    cpu.rflags = withStatus(cpu.rflags, szp(lo, size) | (product !== signed(lo, size) ? F.CF | F.OF : 0));
    return;
  }
  // IMUL reg, r/m (dst × src) and IMUL reg, r/m, imm (src × imm, the immediate sign-extended)
  const dst = ops[0]!;
  const size = dst.size;
  const a = ops.length === 2 ? dst : ops[1]!;
  const b = ops.length === 2 ? ops[1]! : ops[2]!;
  const product = signed(cpu.readOp(a), size) * signed(cpu.readOp(b), size);
  const lo = product & maskOf(size);
  cpu.writeOp(dst, lo);
  cpu.rflags = withStatus(cpu.rflags, szp(lo, size) | (product !== signed(lo, size) ? F.CF | F.OF : 0));
});

// ---- DIV, IDIV: rDX:rAX (AX for bytes) ÷ operand → quotient in rAX (AL), remainder in rDX (AH).
// #DE when the divisor is 0 or the quotient does not fit the operand size (APM vol. 3 DIV, IDIV),
// raised before any register changes. IDIV truncates toward zero; the remainder has the sign of
// the dividend. Flags: unchanged (cpu/flags.ts).

function dividend(cpu: Cpu, size: number): bigint {
  if (size === 1) return cpu.getGpr(GPR.RAX, 2);
  return (cpu.getGpr(GPR.RDX, size) << BigInt(size * 8)) | cpu.getGpr(GPR.RAX, size);
}

function writeQuotient(cpu: Cpu, size: number, q: bigint, r: bigint): void {
  writeDouble(cpu, size, q & maskOf(size), r & maskOf(size));
}

define('Div', (cpu, insn) => {
  const src = insn.ops[0]!;
  const size = src.size;
  const d = cpu.readOp(src);
  if (d === 0n) throw new Fault(VEC.DE);
  const n = dividend(cpu, size);
  const q = n / d;
  if (q > maskOf(size)) throw new Fault(VEC.DE);
  writeQuotient(cpu, size, q, n % d);
});

define('Idiv', (cpu: Cpu, insn: Insn) => {
  const src = insn.ops[0]!;
  const size = src.size;
  const d = signed(cpu.readOp(src), size);
  if (d === 0n) throw new Fault(VEC.DE);
  const n = BigInt.asIntN(size * 16, dividend(cpu, size));
  const q = n / d; // BigInt division truncates toward zero
  const max = maskOf(size) >> 1n;
  if (q > max || q < -max - 1n) throw new Fault(VEC.DE);
  writeQuotient(cpu, size, q, n % d);
});
