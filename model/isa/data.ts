// Data transfer (APM vol. 1 3.3.1 "Data Transfer"; vol. 3 ch. 3: MOV, MOVZX, MOVSX, MOVSXD, LEA,
// PUSH, POP, XCHG, CMOVcc, CBW/CWDE/CDQE, CWD/CDQ/CQO, BSWAP, NOP).
//
// Register writes follow Cpu.setGpr: a 32-bit destination zero-extends into bits 63:32, 8- and
// 16-bit destinations merge (APM vol. 1 3.1.2.3 "Implicit Zero Extension").
//
// Loading a segment register (MOV Sreg, r/m16; POP Sreg), MOV to and from CRn/DRn are system
// instructions that iced also names "Mov"/"Pop": system.ts registers those forms with
// defineForm (registry.ts); if it has not, they stop the model here with their form's name.

import type { Cpu } from '../cpu/cpu.ts';
import { maskOf } from '../cpu/cpu.ts';
import { ModelStop } from '../cpu/fault.ts';
import { GPR, SEG } from '../cpu/state.ts';
import type { Insn, Operand } from '../decode.ts';
import { condition, CONDITION_SUFFIXES } from './condition.ts';
import { define } from './registry.ts';

function systemForm(insn: Insn): ModelStop {
  return new ModelStop(`${insn.code} is a system form (system.ts defines it with defineForm)`);
}

/** Sign-extend `v` from `from` bytes and truncate to `to` bytes. */
function signExtend(v: bigint, from: number, to: number): bigint {
  return BigInt.asUintN(to * 8, BigInt.asIntN(from * 8, v));
}

/** The register kind of an operand, 'gpr' for memory and immediates. */
const regKind = (op: Operand): string => (op.kind === 'reg' ? op.reg.kind : 'gpr');

// ---- MOV (incl. A0–A3 moffs, B8+r imm64 "movabs", C6/C7 imm, 8C MOV r/m16, Sreg) ---------------

define('Mov', (cpu, insn) => {
  const dst = insn.ops[0]!;
  const src = insn.ops[1]!;
  // MOV r/m, Sreg stores the selector: a 32/64-bit register destination gets it zero-extended,
  // a memory destination is always 16 bits (the decoder gives it size 2) (APM vol. 3 MOV)
  if (regKind(dst) !== 'gpr' || (regKind(src) !== 'gpr' && regKind(src) !== 'seg')) throw systemForm(insn);
  cpu.writeOp(dst, cpu.readOp(src));
});

// ---- MOVZX, MOVSX, MOVSXD ------------------------------------------------------------------------

// MOVZX: the source (8 or 16 bits) zero-extended to the destination size.
define('Movzx', (cpu, insn) => {
  cpu.writeOp(insn.ops[0]!, cpu.readOp(insn.ops[1]!));
});

// MOVSX / MOVSXD: the source sign-extended. MOVSXD without REX.W (63 /r with a 32- or 16-bit
// operand size) is a plain move of the low bits (APM vol. 3 MOVSXD), which the same rule gives.
const movsx = (cpu: Cpu, insn: Insn): void => {
  const dst = insn.ops[0]!;
  const src = insn.ops[1]!;
  cpu.writeOp(dst, signExtend(cpu.readOp(src), src.size, dst.size));
};
define('Movsx', movsx);
define('Movsxd', movsx);

// ---- LEA: the effective address (no memory access, no segment), wrapped to the address size
// then truncated or zero-extended to the operand size (APM vol. 3 LEA). RIP-relative operands
// come from the decoder with the absolute target as displacement.

define('Lea', (cpu, insn) => {
  const dst = insn.ops[0]!;
  const src = insn.ops[1]!;
  if (src.kind !== 'mem') throw new ModelStop(`${insn.code} without a memory operand`);
  cpu.writeOp(dst, cpu.effectiveAddress(src) & maskOf(dst.size));
});

// ---- PUSH, POP (APM vol. 1 3.7.4 "Stack Operation"; vol. 3 PUSH, POP) ---------------------------
// The operand size is the push/pop size: 64 by default in 64-bit mode, 16 with 66h (no 32-bit
// form there). PUSH imm8/imm32 push the immediate sign-extended to the operand size (the decoder
// gives it already extended: 6A in 64-bit mode pushes 8 bytes).

/** Size of a PUSH/POP of a segment register by its iced form: Pushw_FS / Pushd_ES / Pushq_GS. */
function segStackSize(code: string): number {
  switch (code.charAt(code.startsWith('Push') ? 4 : 3)) {
    case 'w': return 2;
    case 'd': return 4;
    default: return 8;
  }
}

define('Push', (cpu, insn) => {
  const op = insn.ops[0]!;
  // PUSH Sreg with a 32/64-bit operand size pushes the selector zero-extended to that size
  const size = op.kind === 'reg' && op.reg.kind === 'seg' ? segStackSize(insn.code) : op.size;
  // the operand is read before rSP moves: PUSH RSP pushes the old value
  cpu.push(cpu.readOp(op), size);
});

define('Pop', (cpu, insn) => {
  const op = insn.ops[0]!;
  if (op.kind === 'reg') {
    if (op.reg.kind !== 'gpr') throw systemForm(insn); // POP Sreg loads a segment register
    // POP rSP: the popped value replaces the incremented rSP
    cpu.setReg(op.reg, cpu.pop(op.size));
    return;
  }
  // POP to memory: the value is read at the old rSP; the destination address is formed with
  // rSP already incremented (so [rsp] names the slot above the popped one); a fault on the write
  // leaves rSP as it was, since POP then has not executed
  const ss = cpu.stackSize;
  const old = cpu.gpr[GPR.RSP]!;
  const rsp = old & maskOf(ss);
  const v = cpu.read(SEG.SS, rsp, op.size);
  cpu.setGpr(GPR.RSP, ss, (rsp + BigInt(op.size)) & maskOf(ss));
  try {
    cpu.writeOp(op, v);
  } catch (e) {
    cpu.gpr[GPR.RSP] = old;
    throw e;
  }
});

// ---- XCHG (a memory operand implies LOCK: atomic by construction here) ----------------------------

define('Xchg', (cpu, insn) => {
  const a = insn.ops[0]!;
  const b = insn.ops[1]!;
  const va = cpu.readOp(a);
  const vb = cpu.readOp(b);
  // the memory operand (if any) is written first, so a fault there changes no register
  if (b.kind === 'mem') {
    cpu.writeOp(b, va);
    cpu.writeOp(a, vb);
  } else {
    cpu.writeOp(a, vb);
    cpu.writeOp(b, va);
  }
});

// ---- CMOVcc: the source is read whatever the condition (a memory source can fault), and a 32-bit
// destination is zero-extended even when the condition is false (APM vol. 3 CMOVcc).

CONDITION_SUFFIXES.forEach((suffix, cc) => {
  define(`Cmov${suffix}`, (cpu, insn) => {
    const dst = insn.ops[0]!;
    const v = cpu.readOp(insn.ops[1]!);
    cpu.writeOp(dst, condition(cpu, cc) ? v : cpu.readOp(dst));
  });
});

// ---- CBW/CWDE/CDQE: rAX ← sign extension of its lower half -------------------------------------

define('Cbw', (cpu) => cpu.setGpr(GPR.RAX, 2, signExtend(cpu.getGpr(GPR.RAX, 1), 1, 2)));
define('Cwde', (cpu) => cpu.setGpr(GPR.RAX, 4, signExtend(cpu.getGpr(GPR.RAX, 2), 2, 4)));
define('Cdqe', (cpu) => cpu.setGpr(GPR.RAX, 8, signExtend(cpu.getGpr(GPR.RAX, 4), 4, 8)));

// ---- CWD/CDQ/CQO: rDX ← copies of the sign bit of rAX --------------------------------------------

function signIntoRdx(size: number) {
  return (cpu: Cpu): void => {
    const negative = (cpu.getGpr(GPR.RAX, size) >> BigInt(size * 8 - 1)) !== 0n;
    cpu.setGpr(GPR.RDX, size, negative ? maskOf(size) : 0n);
  };
}
define('Cwd', signIntoRdx(2));
define('Cdq', signIntoRdx(4));
define('Cqo', signIntoRdx(8));

// ---- BSWAP: reverse the bytes of a 32- or 64-bit register. With a 16-bit operand the result is
// undefined (APM vol. 3 BSWAP); the model writes 0 to the low 16 bits (what current AMD and Intel
// parts produce), leaving bits 63:16 as they were.

define('Bswap', (cpu, insn) => {
  const op = insn.ops[0]!;
  const size = op.size;
  const v = cpu.readOp(op);
  let r = 0n;
  if (size >= 4) {
    for (let i = 0; i < size; i++) r = (r << 8n) | ((v >> BigInt(8 * i)) & 0xffn);
  }
  cpu.writeOp(op, r);
});

// ---- NOP: 90, 0F 1F /0 (the multi-byte nopw/nopl/nopq; the memory operand is not accessed) and
// PAUSE (F3 90), a spin-loop hint that is a NOP to the architecture (APM vol. 3 NOP, PAUSE).

define('Nop', () => {});
define('Pause', () => {});
