// Which instructions the model executes: one table from iced mnemonic to semantics, filled by
// the instruction-group modules (isa/*.ts). The same table is the list the generator checks
// templates against, so a kernel never contains an instruction the model would refuse.

import type { Insn } from '../decode.ts';
import type { Cpu, Handler } from '../cpu/cpu.ts';
import { ModelStop } from '../cpu/fault.ts';

const handlers = new Map<string, Handler>();

/** Register the semantics of one mnemonic (iced's name, e.g. "Mov", "Int3", "Iret"). */
export function define(mnemonic: string, handler: Handler): void {
  if (handlers.has(mnemonic)) throw new Error(`model: ${mnemonic} defined twice`);
  handlers.set(mnemonic, handler);
}

/** The handler for a decoded instruction, or one that stops the run naming it. */
export function handlerFor(insn: Insn): Handler {
  return handlers.get(insn.mnemonic) ?? unsupported;
}

function unsupported(cpu: Cpu, insn: Insn): void {
  throw new ModelStop(`unsupported instruction ${insn.mnemonic.toLowerCase()} (${insn.code}) at ${cpu.rip.toString(16)}`);
}

/** Mnemonics the model implements (sorted), for the generator's check and the docs. */
export function supportedMnemonics(): string[] {
  return [...handlers.keys()].sort();
}
