// Privilege and operand checks the system instructions share (APM vol. 3 ch. 4 "System Instruction
// Reference"; vol. 2 3.1.6 IOPL): "CPL 0 only" instructions raise #GP(0) at CPL > 0 in protected
// mode (real mode is CPL 0), LTR/STR/LLDT/SLDT are #UD in real mode, and the memory operand of the
// descriptor-table instructions. Virtual-8086 mode is not modelled.

import type { Cpu } from '../cpu/cpu.ts';
import { gp, ud } from '../cpu/fault.ts';
import type { Insn, Operand } from '../decode.ts';

export function requireCpl0(cpu: Cpu): void {
  if (cpu.protectedMode && cpu.cpl !== 0) throw gp(0);
}

/** LTR, STR, LLDT, SLDT are not recognised in real mode (APM vol. 3: #UD in real mode). */
export function requireProtected(cpu: Cpu): void {
  if (!cpu.protectedMode) throw ud();
}

export function iopl(cpu: Cpu): number {
  return (cpu.rflags >> 12) & 3;
}

export function memOp(insn: Insn): Extract<Operand, { kind: 'mem' }> {
  const op = insn.ops[0];
  if (!op || op.kind !== 'mem') throw ud();
  return op;
}

/** The effective address `ea + n`, wrapped to the address size of the operand. */
export function eaPlus(op: Extract<Operand, { kind: 'mem' }>, ea: bigint, n: number): bigint {
  return BigInt.asUintN(op.addrSize * 8, ea + BigInt(n));
}
