// Which instructions the model executes: one table from iced mnemonic to semantics, filled by
// the instruction-group modules (isa/*.ts). The same table is the list the generator checks
// templates against, so a kernel never contains an instruction the model would refuse.

import type { Insn } from '../decode.ts';
import type { Cpu, Handler } from '../cpu/cpu.ts';
import { ModelStop } from '../cpu/fault.ts';
import { fastForm } from './fast.ts';

const handlers = new Map<string, Handler>();
/** Forms (iced Code names) whose semantics live in another group than their mnemonic's. */
const forms = new Map<string, Handler>();

/** Register the semantics of one mnemonic (iced's name, e.g. "Mov", "Int3", "Iret"). */
export function define(mnemonic: string, handler: Handler): void {
  if (handlers.has(mnemonic)) throw new Error(`model: ${mnemonic} defined twice`);
  handlers.set(mnemonic, handler);
}

/**
 * Register the semantics of one form (iced Code name, e.g. "Mov_cr_r64", "Jmp_m1664") of a
 * mnemonic another group defines: iced names MOV CRn, MOV Sreg and far JMP/CALL "Mov"/"Jmp"/
 * "Call" like their general-purpose forms, but they are system instructions (system.ts).
 * A form wins over its mnemonic; the choice is made once, at decode.
 */
export function defineForm(code: string, handler: Handler): void {
  if (forms.has(code)) throw new Error(`model: form ${code} defined twice`);
  forms.set(code, handler);
}

/** Handlers chosen per decoded instruction (decode.ts shares one Insn per distinct instruction). */
const chosen = new WeakMap<Insn, Handler>();

/**
 * The handler for a decoded instruction, or one that stops the run naming it. A register or
 * immediate form the fast path knows (fast.ts) gets its fast form, with the same semantics.
 */
export function handlerFor(insn: Insn): Handler {
  let h = chosen.get(insn);
  if (h === undefined) {
    const general = generalHandlerFor(insn);
    h = (forms.has(insn.code) ? undefined : fastForm(insn, general)) ?? general;
    chosen.set(insn, h);
  }
  return h;
}

/** The handler of the instruction's group, never a fast form (the reference the fast forms are tested against). */
export function generalHandlerFor(insn: Insn): Handler {
  return forms.get(insn.code) ?? handlers.get(insn.mnemonic) ?? unsupported;
}

function unsupported(cpu: Cpu, insn: Insn): void {
  throw new ModelStop(`unsupported instruction ${insn.mnemonic.toLowerCase()} (${insn.code}) at ${cpu.rip.toString(16)}`);
}

/** Mnemonics the model implements (sorted), for the generator's check and the docs. */
export function supportedMnemonics(): string[] {
  return [...handlers.keys()].sort();
}
