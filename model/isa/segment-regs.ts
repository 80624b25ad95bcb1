// The descriptor-table registers and the system segment registers (APM vol. 2 4.6 "Descriptor
// Tables", 12.2.5 TSS; vol. 3 LGDT, LIDT, SGDT, SIDT, LTR, STR, LLDT, SLDT). The selector loads
// behind LTR and LLDT are segmentation.ts's.

import type { Cpu } from '../cpu/cpu.ts';
import { isCanonical } from '../cpu/cpu.ts';
import { gp, ud } from '../cpu/fault.ts';
import { M64 } from '../cpu/state.ts';
import type { Insn } from '../decode.ts';
import { loadLdtr, loadTaskRegister } from '../segmentation.ts';
import { define } from './registry.ts';
import { requireCpl0, requireProtected, memOp, eaPlus } from './privilege.ts';

// ---- descriptor-table registers (APM vol. 3 LGDT, LIDT, SGDT, SIDT) ----------------------------------------

/**
 * LGDT/LIDT m16&32 / m16&64: limit (2 bytes) then base — 8 bytes in 64-bit mode (non-canonical →
 * #GP(0)), else 4 bytes, of which a 16-bit operand size uses 24 bits. CPL 0 only.
 */
function loadTableRegister(which: 'gdtr' | 'idtr') {
  return (cpu: Cpu, insn: Insn): void => {
    requireCpl0(cpu);
    const op = memOp(insn);
    const ea = cpu.effectiveAddress(op);
    const limit = Number(cpu.read(op.seg, ea, 2));
    let base: bigint;
    if (cpu.mode64) {
      base = cpu.read(op.seg, eaPlus(op, ea, 2), 8);
      if (!isCanonical(base)) throw gp(0);
    } else {
      base = cpu.read(op.seg, eaPlus(op, ea, 2), 4);
      if (insn.code.endsWith('_16')) base &= 0xff_ffffn;
    }
    cpu[which] = { base, limit };
  };
}

/** SGDT/SIDT: limit then base, 8 bytes of base in 64-bit mode, 4 elsewhere (all 32 bits, whatever the operand size). */
function storeTableRegister(which: 'gdtr' | 'idtr') {
  return (cpu: Cpu, insn: Insn): void => {
    const op = memOp(insn);
    const ea = cpu.effectiveAddress(op);
    const r = cpu[which];
    const baseSize = cpu.mode64 ? 8 : 4;
    // check both parts before writing either (a fault leaves memory unchanged)
    cpu.linear(op.seg, eaPlus(op, ea, 2), baseSize);
    cpu.write(op.seg, ea, 2, BigInt(r.limit & 0xffff));
    cpu.write(op.seg, eaPlus(op, ea, 2), baseSize, r.base & (baseSize === 8 ? M64 : 0xffff_ffffn));
  };
}

define('Lgdt', loadTableRegister('gdtr'));
define('Lidt', loadTableRegister('idtr'));
define('Sgdt', storeTableRegister('gdtr'));
define('Sidt', storeTableRegister('idtr'));

// ---- TR, LDTR (APM vol. 3 LTR, STR, LLDT, SLDT) ---------------------------------------------------------

function selectorOperand(cpu: Cpu, insn: Insn): number {
  const op = insn.ops[0]!;
  return Number((op.kind === 'mem' ? cpu.read(op.seg, cpu.effectiveAddress(op), 2) : cpu.readOp(op)) & 0xffffn);
}

/** STR/SLDT: a register destination gets the selector zero-extended to its size, memory gets 16 bits. */
function storeSelector(cpu: Cpu, insn: Insn, selector: number): void {
  const op = insn.ops[0]!;
  if (op.kind === 'mem') cpu.write(op.seg, cpu.effectiveAddress(op), 2, BigInt(selector));
  else if (op.kind === 'reg') cpu.setGpr(op.reg.index, op.size, BigInt(selector));
  else throw ud();
}

define('Ltr', (cpu, insn) => {
  requireProtected(cpu);
  requireCpl0(cpu);
  loadTaskRegister(cpu, selectorOperand(cpu, insn));
});
define('Str', (cpu, insn) => {
  requireProtected(cpu);
  storeSelector(cpu, insn, cpu.tr.selector);
});
define('Lldt', (cpu, insn) => {
  requireProtected(cpu);
  requireCpl0(cpu);
  loadLdtr(cpu, selectorOperand(cpu, insn));
});
define('Sldt', (cpu, insn) => {
  requireProtected(cpu);
  storeSelector(cpu, insn, cpu.ldtr.selector);
});
