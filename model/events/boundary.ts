// One instruction and the events around it: instruction breakpoints before it, RF after it,
// the single-step trap after it, and the delivery of whatever it raised (APM vol. 2 3.1.6 RF,
// 8.5 priorities, 13.1.3 breakpoints, 13.1.4 single stepping). Machine.step is this function.
//
// Not modelled: data and I/O breakpoints (R/W = 01, 10, 11), general detect (DR7.GD on MOV DRn),
// task-switch breakpoints, BTF (control-transfer single stepping), LBR, bus-lock traps, external
// interrupts and NMI at the boundary (svmconf's L1 kernels have no interrupt source), and the
// MOV SS / POP SS shadow over a single-step trap.

import type { Cpu } from '../cpu/cpu.ts';
import { AccessAbort, Fault } from '../cpu/fault.ts';
import { F } from '../cpu/flags.ts';
import { linearRip } from '../cpu/linear.ts';
import { VEC } from '../../arch/x86.ts';
import { RaisedEvent } from './classes.ts';
import { deliverEvent, deliverFault } from './delivery.ts';

/** DR6 bits (APM vol. 2 13.1.1.3). */
export const DR6 = { B_MASK: 0xfn, BS: 1n << 14n } as const;

/** DR7 bits 31:0 in CpuState.dr32 (the low half of dr[7]: little-endian host). */
const DR7_LOW = 14;

/**
 * Instructions that load RF, which then survives until the next instruction completes (3.1.6):
 * IRET from its frame; VMRUN from the guest's VMCB RFLAGS (15.5.1), so that a hypervisor resuming
 * L2 after an intercepted instruction-breakpoint #DB with RF = 1 in the VMCB runs the instruction
 * once instead of taking the breakpoint again (13.1.3.1).
 */
const KEEPS_RF: ReadonlySet<string> = new Set(['Iret', 'Iretd', 'Iretq', 'Vmrun']);

/**
 * Execute one instruction at cpu.rip, or deliver the event it raised:
 *  1. instruction breakpoints (DR0–DR3, R/W = 00) unless RF = 1: #DB fault, DR6.Bn (13.1.3.1)
 *  2. fetch, decode, execute
 *  3. RF cleared after every instruction that completes, IRET excepted (3.1.6)
 *  4. if TF was 1 when the instruction started: #DB trap with DR6.BS (13.1.4). An instruction
 *     that raised an event instead of completing (a fault, INT n, INT3, INTO, ICEBP) takes no
 *     single-step trap: its delivery clears TF before the handler runs (13.1.4: "INTn, INT3,
 *     and INTO clear rFLAGS[TF]"); the TF image it pushed resumes stepping after IRET.
 */
export function step(cpu: Cpu): void {
  try {
    // the common case (DR7 enables nothing) is one test: this runs before every instruction
    if (!(cpu.rflags & F.RF) && (cpu.dr32[DR7_LOW]! & 0xff) !== 0) instructionBreakpoint(cpu);
    const insn = cpu.fetch();
    cpu.current = insn;
    cpu.nextRip = insn.next;
    // an intercept (guest mode) replaces the instruction: nothing of it executes, RIP is the exit's
    const hooks = cpu.eventHooks;
    if (hooks !== undefined && hooks.beforeExecute?.(cpu, insn)) return;
    const singleStep = (cpu.rflags & F.TF) !== 0;
    // the shadow of STI / MOV SS / POP SS covers exactly the next instruction (APM vol. 3, STI
    // and MOV Sreg): it ends when that instruction completes
    const shadowed = cpu.interruptShadow;
    insn.exec(cpu, insn);
    if (shadowed) cpu.interruptShadow = false;
    cpu.rip = cpu.nextRip;
    cpu.instructions++;
    if (cpu.rflags & F.RF && !KEEPS_RF.has(insn.mnemonic)) cpu.rflags &= ~F.RF;
    if (singleStep) {
      // DR6.BS is set; B0–B3 are left as they are (13.1.1.3: the processor updates them on
      // breakpoint conditions, and single step is not one of those)
      cpu.dr[6] = cpu.dr[6]! | DR6.BS;
      deliverEvent(cpu, { vector: VEC.DB, kind: 'exception', returnRip: cpu.rip });
    }
  } catch (e) {
    raised(cpu, e);
  }
}

/**
 * What the instruction, its fetch or the delivery of its event threw: a guest exception is
 * delivered; an abort that is no guest exception (SVM's nested page fault) is turned into an exit
 * by the guest-mode layer, or ends the run. Kept out of step so that step stays small: it runs
 * for every instruction and V8 inlines it into the run loop only while it is.
 */
function raised(cpu: Cpu, e: unknown): void {
  if (e instanceof Fault) {
    try {
      deliverFault(cpu, e);
      return;
    } catch (inner) {
      e = inner;
    }
  }
  if (e instanceof AccessAbort && !(e instanceof Fault) && cpu.eventHooks?.onAbort?.(cpu, e)) return;
  throw e;
}

/**
 * DR0–DR3 execute breakpoints (APM vol. 2 13.1.3.1): enabled by Ln or Gn in DR7, R/Wn = 00,
 * compared with the linear address of the next instruction. Matches set their Bn bit in DR6 and
 * clear the other B bits (13.1.1.3: "set to 1 if the corresponding address-breakpoint register
 * detects an enabled breakpoint condition ... and is cleared to 0 otherwise"); the #DB is a fault
 * (the pushed RIP is the instruction) with RF = 0 in the pushed image (3.1.6: "when a #DB
 * exception occurs as a result of an instruction breakpoint, the processor clears the RF bit to
 * 0 in the interrupt-stack RFLAGS image"). LENn must be 00 for execute breakpoints; other
 * lengths are undefined (13.1.1.4) and the model compares the single byte.
 */
function instructionBreakpoint(cpu: Cpu): void {
  const dr7 = cpu.dr[7]!;
  if ((dr7 & 0xffn) === 0n) return;
  const lin = linearRip(cpu);
  const width = cpu.longMode ? 0xffff_ffff_ffff_ffffn : 0xffff_ffffn;
  let hits = 0n;
  for (let n = 0n; n < 4n; n++) {
    const enabled = (dr7 >> (2n * n)) & 3n;
    const rw = (dr7 >> (16n + 4n * n)) & 3n;
    if (enabled !== 0n && rw === 0n && (cpu.dr[Number(n)]! & width) === lin) hits |= 1n << n;
  }
  if (hits === 0n) return;
  cpu.dr[6] = (cpu.dr[6]! & ~DR6.B_MASK) | hits;
  throw new RaisedEvent({ vector: VEC.DB, kind: 'exception', returnRip: cpu.rip, rf: 'clear' });
}
