// Control transfer, near forms (APM vol. 3 ch. 3 "General-Purpose Instruction Reference": JMP
// (Near), Jcc, CALL (Near), RET (Near), LOOPcc, JrCXZ; vol. 1 3.7 "Control Transfers").
//
// Far transfers (JMP/CALL far, RETF, INT, IRET) are system instructions: iced names far JMP and
// CALL "Jmp"/"Call" as well, so system.ts registers those forms with defineForm and they never
// reach the handlers here (see the guard in `nearOnly`).
//
// Operand size of a near branch (APM vol. 1 3.7.2, table 3-8): 64-bit mode defaults to 64 bits
// and 66h selects 16 (there is no 32-bit form); elsewhere the CS default (D bit) and 66h choose
// 16 or 32. The decoder gives the rel target already truncated to that size (rel operand size),
// and an r/m target has the operand size as its size.

import type { Cpu } from '../cpu/cpu.ts';
import { isCanonical, maskOf } from '../cpu/cpu.ts';
import { F } from '../cpu/flags.ts';
import { Fault, ModelStop } from '../cpu/fault.ts';
import { GPR, SEG } from '../cpu/state.ts';
import type { Insn, Operand } from '../decode.ts';
import { VEC } from '../../arch/x86.ts';
import { define } from './registry.ts';
import { condition, CONDITION_SUFFIXES } from './condition.ts';

// ---- the near branch itself ---------------------------------------------------------------------

/**
 * rIP ← target, truncated to the operand size `size` (a 16- or 32-bit rIP is zero-extended). In
 * 64-bit mode a non-canonical target is #GP(0); elsewhere a target beyond the CS limit is #GP(0).
 * Both are raised by the branch instruction, before it changes anything (JMP (Near), CALL (Near),
 * RET (Near), Jcc, LOOPcc, JrCXZ: "Exceptions").
 */
export function nearBranch(cpu: Cpu, target: bigint, size: number): void {
  const rip = target & maskOf(size);
  checkBranchTarget(cpu, rip);
  cpu.nextRip = rip;
}

function checkBranchTarget(cpu: Cpu, rip: bigint): void {
  if (cpu.mode64) {
    if (!isCanonical(rip)) throw new Fault(VEC.GP, 0);
  } else if (rip > BigInt(cpu.seg[SEG.CS]!.limit)) {
    throw new Fault(VEC.GP, 0);
  }
}

/** The target of a near JMP/CALL: rel (decoder computed it) or r/m (read at the operand size). */
function nearTarget(cpu: Cpu, insn: Insn, op: Operand): bigint {
  if (op.kind === 'rel') return op.target;
  if (op.kind === 'reg' || op.kind === 'mem') return cpu.readOp(op);
  throw new ModelStop(`${insn.code}: a far form reached the near-branch handler (system.ts defines it with defineForm)`);
}

/** Far JMP/CALL through memory decode as m16:16/m16:32/m16:64 with 4/6/10 bytes; near r/m is ≤ 8. */
function nearOnly(insn: Insn): Operand {
  const op = insn.ops[0]!;
  if (op.kind === 'far' || (op.kind === 'mem' && op.size > 8)) {
    throw new ModelStop(`${insn.code}: far transfers are system instructions (system.ts defines them with defineForm)`);
  }
  return op;
}

// ---- JMP (Near) ---------------------------------------------------------------------------------

define('Jmp', (cpu, insn) => {
  const op = nearOnly(insn);
  nearBranch(cpu, nearTarget(cpu, insn, op), op.size);
});

// ---- Jcc: one handler per condition, built once at load ---------------------------------------

CONDITION_SUFFIXES.forEach((suffix, cc) => {
  const mnemonic = `J${suffix}`;
  define(mnemonic, (cpu, insn) => {
    if (condition(cpu, cc)) {
      const op = insn.ops[0]!;
      nearBranch(cpu, nearTarget(cpu, insn, op), op.size);
    }
  });
});

// ---- CALL (Near): push the rIP of the next instruction at the operand size, then branch -------

define('Call', (cpu, insn) => {
  const op = nearOnly(insn);
  const size = op.size;
  const target = nearTarget(cpu, insn, op) & maskOf(size);
  checkBranchTarget(cpu, target);
  cpu.push(insn.next, size); // push truncates the return address to the operand size
  cpu.nextRip = target;
});

// ---- RET (Near) [imm16]: pop rIP at the operand size, then release imm16 more bytes --------------

/** Operand size of RET by its iced form (Retnw/Retnd/Retnq, each with an _imm16 variant). */
function retSize(code: string): number {
  switch (code.charAt(4)) {
    case 'w': return 2;
    case 'd': return 4;
    case 'q': return 8;
    default: throw new ModelStop(`${code}: unknown RET form`);
  }
}

define('Ret', (cpu, insn) => {
  const size = retSize(insn.code);
  const ss = cpu.stackSize;
  const rsp = cpu.gpr[GPR.RSP]! & maskOf(ss);
  // read and check before touching RSP, so a #GP/#SS/#PF leaves RSP as it was
  const target = cpu.read(SEG.SS, rsp, size);
  checkBranchTarget(cpu, target);
  const imm = insn.ops[0];
  const release = imm !== undefined && imm.kind === 'imm' ? imm.value : 0n;
  cpu.setGpr(GPR.RSP, ss, (rsp + BigInt(size) + release) & maskOf(ss));
  cpu.nextRip = target;
});

// ---- LOOP, LOOPE, LOOPNE, JCXZ/JECXZ/JRCXZ: the counter is rCX at the address size --------------

/** Counter size of LOOPcc by its iced form (…_CX, …_ECX, …_RCX) — the address size (67h). */
function counterSize(code: string): number {
  if (code.endsWith('_RCX')) return 8;
  if (code.endsWith('_ECX')) return 4;
  return 2;
}

/** LOOP: rCX ← rCX − 1 (no flags), branch while rCX ≠ 0 (and ZF as LOOPE/LOOPNE require). */
function defineLoop(mnemonic: string, zf: 'any' | 'set' | 'clear'): void {
  define(mnemonic, (cpu, insn) => {
    const csize = counterSize(insn.code);
    const count = (cpu.gpr[GPR.RCX]! - 1n) & maskOf(csize);
    const op = insn.ops[0]!;
    let taken = count !== 0n;
    if (taken && zf !== 'any') taken = ((cpu.rflags & F.ZF) !== 0) === (zf === 'set');
    // the target check comes first: a faulting LOOP has not decremented rCX
    if (taken) nearBranch(cpu, nearTarget(cpu, insn, op), op.size);
    cpu.setGpr(GPR.RCX, csize, count);
  });
}
defineLoop('Loop', 'any');
defineLoop('Loope', 'set');
defineLoop('Loopne', 'clear');

/** JCXZ/JECXZ/JRCXZ: branch if the counter (CX/ECX/RCX, named by the mnemonic) is zero. */
function defineJcxz(mnemonic: string, csize: number): void {
  define(mnemonic, (cpu, insn) => {
    if ((cpu.gpr[GPR.RCX]! & maskOf(csize)) === 0n) {
      const op = insn.ops[0]!;
      nearBranch(cpu, nearTarget(cpu, insn, op), op.size);
    }
  });
}
defineJcxz('Jcxz', 2);
defineJcxz('Jecxz', 4);
defineJcxz('Jrcxz', 8);
