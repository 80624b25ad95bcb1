// Exception and interrupt delivery (APM vol. 2 ch. 8): the IDT gate, its checks, the stack
// switch, the frame, RFLAGS, and #DF escalation (8.2.9).
//
// One entry point, deliverEvent(cpu, event), for every kind of event (Event in classes.ts);
// deliverFault(cpu, fault) wraps it for the Fault a running instruction threw. The event whose
// delivery is under way is `cpu.delivering` (undefined otherwise): a guest-mode layer reads it in
// its hooks (`cpu.eventHooks`, EventHooks in cpu/cpu.ts) to report EXITINTINFO. Delivery changes
// nothing in the CPU until every check and every stack write of the frame has succeeded, so an
// exception raised midway leaves the state of the interrupted program intact (except CR2, written
// when a #PF is recognized, and DR7.GD, cleared on entry to the #DB handler).
//
// Decisions where the manual is silent or ambiguous (each also at its place below):
//  - Error codes raised during delivery carry EXT (8.4.1) whatever their vector, including
//    #SS(EXT) for a stack that is not canonical or beyond its limit and #GP(EXT) for a null
//    handler CS or a non-canonical handler RIP (vol. 3 INT says #SS(0)/#GP(0); EXT = 0 there for
//    INT n, which is what that pseudocode describes).
//  - The checks run in this order: IDT limit, gate type, gate DPL (INT n/INT3/INTO), gate P,
//    handler CS, stack (TSS read, SS checks), handler RIP canonical / within CS limit, frame writes.
//  - #DF pushes the restart point of the exception that caused it (the pushed RIP of #DF is
//    undefined, 8.2.9: "the saved rIP is undefined"); the model's choice is that of a fault.
//  - Real mode: the IVT, a 16-bit frame (FLAGS, CS, IP), IF and TF cleared; no error code.
//
// The handler's CS and the new SS are checked and loaded by segmentation.ts, as for every other
// segment load (readCodeDescriptor, checkCodeForGate, checkStackSegment; loadCodeSegment,
// loadDescriptor, loadNullStack), with EXT in their error codes; the TSS lookups are tss.ts's.
// Loading sets the descriptors' accessed bits (APM vol. 2 4.7.2, 4.7.3) once the frame is written
// and before any register changes, so a #PF on the descriptor table leaves the interrupted
// program's state intact like any other delivery fault.

import type { Cpu } from '../cpu/cpu.ts';
import { ACC, isCanonical } from '../cpu/cpu.ts';
import { ATTR, GPR, SEG } from '../cpu/state.ts';
import { Fault, ModelStop, Shutdown } from '../cpu/fault.ts';
import { F } from '../cpu/flags.ts';
import { DESC_TYPE, VEC } from '../../arch/x86.ts';
import { combine, describeEvent, eventOfFault, extBit, type Event } from './classes.ts';
import {
  checkCodeForGate, loadCodeSegment, loadDescriptor, loadNullStack, loadRealModeSegment, readCodeDescriptor, segmentFromDescriptor, setAccessed,
} from '../segmentation.ts';
import { tssStack32, tssStack64, type TssStack32 } from './tss.ts';

export type { Event, EventKind } from './classes.ts';
export type { EventHooks } from '../cpu/cpu.ts';

export interface DeliveryResult {
  /** 'delivered': the handler of `event` is about to run; 'intercepted': a hook took over. */
  outcome: 'delivered' | 'intercepted';
  /** The event that was finally delivered or intercepted (e.g. the #DF the first one became). */
  event: Event;
}

/** Deliver the exception an instruction (or its fetch) raised; the instruction starts at cpu.rip. */
export function deliverFault(cpu: Cpu, fault: Fault): DeliveryResult {
  return deliverEvent(cpu, eventOfFault(fault, cpu.rip));
}

/**
 * Deliver `event`, and whatever exceptions its delivery raises, combined as APM vol. 2 8.2.9
 * says: serially, as #DF, or shutdown (throws Shutdown unless a hook intercepts it).
 */
export function deliverEvent(cpu: Cpu, event: Event): DeliveryResult {
  const hooks = cpu.eventHooks;
  if (hooks?.beforeDeliver?.(cpu, event)) return { outcome: 'intercepted', event };
  let ev = event;
  for (;;) {
    cpu.delivering = ev;
    try {
      deliverOnce(cpu, ev);
      cpu.delivering = undefined;
      return { outcome: 'delivered', event: ev };
    } catch (e) {
      if (!(e instanceof Fault)) {
        cpu.delivering = undefined;
        throw e;
      }
      // an exception during delivery is a fault of the event's instruction, or at its restart point
      const nested: Event = eventOfFault(e, ev.insnRip ?? ev.returnRip);
      if (hooks?.onException?.(cpu, e, ev)) {
        cpu.delivering = undefined;
        return { outcome: 'intercepted', event: nested };
      }
      // a #PF loads CR2 when it is taken, also when it then becomes a #DF (8.4.2); intercepts first
      if (nested.kind === 'exception' && nested.vector === VEC.PF && nested.cr2 !== undefined) cpu.cr2 = nested.cr2;
      const how = combine(ev, nested);
      if (how === 'shutdown') {
        cpu.delivering = undefined;
        const why = `${describeEvent(nested)} while delivering #DF`;
        if (hooks?.onShutdown?.(cpu, why)) return { outcome: 'intercepted', event: nested };
        throw new Shutdown(why);
      }
      if (how === 'double') {
        const df = new Fault(VEC.DF, 0);
        if (hooks?.onException?.(cpu, df, ev)) {
          cpu.delivering = undefined;
          return { outcome: 'intercepted', event: eventOfFault(df, nested.returnRip) };
        }
        ev = { vector: VEC.DF, kind: 'exception', errorCode: 0, returnRip: nested.returnRip, rf: 'set' };
      } else {
        ev = nested;
      }
    }
  }
}

// ---- one delivery attempt ---------------------------------------------------------------------

function deliverOnce(cpu: Cpu, ev: Event): void {
  // CR2 holds the faulting address from the moment the #PF is taken (8.4.2), even if its
  // delivery then fails; it is written after the hooks, which see the old CR2 (15.12).
  if (ev.kind === 'exception' && ev.vector === VEC.PF && ev.cr2 !== undefined) cpu.cr2 = ev.cr2;
  // DR7.GD is cleared when the #DB handler is entered (13.1.1.4), ICEBP's included (our choice).
  if (ev.vector === VEC.DB && (ev.kind === 'exception' || ev.kind === 'icebp')) cpu.dr[7] = cpu.dr[7]! & ~(1n << 13n);
  if (!cpu.protectedMode) return deliverReal(cpu, ev);
  if (cpu.rflags & F.VM) throw new ModelStop(`event ${describeEvent(ev)} in virtual-8086 mode is not modelled`);
  if (cpu.longMode) return deliverLong(cpu, ev);
  return deliverLegacy(cpu, ev);
}

/** INT n, INT3 and INTO check the gate's DPL against CPL; ICEBP, exceptions and interrupts do not (8.7.3, 8.9; vol. 3 INT, INT3, INTO, INT1). */
function dplChecked(ev: Event): boolean {
  return ev.kind === 'softint' || ev.kind === 'softexception';
}

/** RFLAGS as pushed in the frame (3.1.6: RF=1 for faults, 0 for an instruction-breakpoint #DB). */
function pushedRflags(cpu: Cpu, ev: Event): number {
  if (ev.rf === 'set') return cpu.rflags | F.RF;
  if (ev.rf === 'clear') return cpu.rflags & ~F.RF;
  return cpu.rflags;
}

/** RFLAGS in the handler: TF, NT, RF, VM cleared; IF cleared through an interrupt gate, kept through a trap gate (8.7.1, 8.9). */
function handlerRflags(rflags: number, interruptGate: boolean): number {
  let f = rflags & ~(F.TF | F.NT | F.RF | F.VM);
  if (interruptGate) f &= ~F.IF;
  return f;
}

/** Start the handler: RFLAGS as the gate leaves them, RIP at its entry point (CS is loaded by the caller). */
function enter(cpu: Cpu, rip: bigint, rflags: number): void {
  cpu.rflags = rflags;
  cpu.rip = rip;
  cpu.nextRip = rip;
}

/** Gate types (arch/x86.ts DESC_TYPE): in long mode E/F are the 64-bit gates. */
const GATE = {
  TASK: DESC_TYPE.TASK_GATE, INT16: DESC_TYPE.INT_GATE16, TRAP16: DESC_TYPE.TRAP_GATE16, INT32: DESC_TYPE.INT_GATE, TRAP32: DESC_TYPE.TRAP_GATE,
} as const;

// ---- long mode: 16-byte gates, 64-bit frames (APM vol. 2 8.9) --------------------------------

function deliverLong(cpu: Cpu, ev: Event): void {
  const ext = extBit(ev);
  const gateErr = ev.vector * 8 + 2 + ext; // IDT bit set, selector index = vector (8.4.1)
  const off = ev.vector * 16;
  if (off + 15 > cpu.idtr.limit) throw new Fault(VEC.GP, gateErr);
  const lin = cpu.idtr.base + BigInt(off);
  const low = cpu.readLinear(lin, 8, 0);
  const high = cpu.readLinear(lin + 8n, 8, 0);
  // only 64-bit interrupt and trap gates are valid in the long-mode IDT (4.8.4, 8.9.1): type
  // with the S bit 0_1110b or 0_1111b, anything else (task gates included) is #GP
  const type = Number((low >> 40n) & 0x1fn);
  if (type !== GATE.INT32 && type !== GATE.TRAP32) throw new Fault(VEC.GP, gateErr);
  if (dplChecked(ev) && Number((low >> 45n) & 3n) < cpu.cpl) throw new Fault(VEC.GP, gateErr);
  if (!((low >> 47n) & 1n)) throw new Fault(VEC.NP, gateErr);

  const selector = Number((low >> 16n) & 0xffffn);
  const target = (low & 0xffffn) | (((low >> 48n) & 0xffffn) << 16n) | ((high & 0xffff_ffffn) << 32n);
  const ist = Number((low >> 32n) & 7n);
  const csDesc = readCodeDescriptor(cpu, selector, ext);
  const cpl = checkCodeForGate(cpu, selector, csDesc, ext);

  // stack (8.9.3, 8.9.4): RSPn of the TSS on a privilege change (SS becomes null with RPL = new
  // CPL), ISTn whenever IST ≠ 0 (with or without a privilege change); then aligned down to 16
  // bytes whatever its source. The frame is always SS, RSP, RFLAGS, CS, RIP [, error code].
  const oldCpl = cpu.cpl;
  let rsp = cpu.gpr[GPR.RSP]!;
  const stackSwitch = cpl < oldCpl;
  if (stackSwitch) rsp = tssStack64(cpu, { rsp: cpl }, ext);
  if (ist !== 0) rsp = tssStack64(cpu, { ist }, ext);
  rsp &= ~0xfn;

  // the handler's RIP must be canonical (vol. 3 INT: #GP(0); EXT added, see the header)
  if (!isCanonical(target)) throw new Fault(VEC.GP, ext);

  const frame: bigint[] = [
    BigInt(cpu.seg[SEG.SS]!.selector),
    cpu.gpr[GPR.RSP]!,
    BigInt(pushedRflags(cpu, ev)),
    BigInt(cpu.seg[SEG.CS]!.selector),
    ev.returnRip,
  ];
  if (ev.errorCode !== undefined) frame.push(BigInt(ev.errorCode >>> 0));
  const top = BigInt.asUintN(64, rsp - BigInt(8 * frame.length));
  if (!isCanonical(top) || !isCanonical(BigInt.asUintN(64, rsp - 1n))) throw new Fault(VEC.SS, ext);
  const access = cpl === 3 ? ACC.USER : 0;
  // frame[0] (SS) is highest in memory; write every slot before committing anything
  for (let i = 0; i < frame.length; i++) {
    cpu.writeLinear(BigInt.asUintN(64, rsp - BigInt(8 * (i + 1))), 8, frame[i]!, access);
  }

  // commit: CS's accessed bit first (APM vol. 2 4.7.2; a write that may #PF), then SS, RSP, CS
  setAccessed(cpu, selector, csDesc);
  if (stackSwitch) loadNullStack(cpu, cpl);
  cpu.gpr[GPR.RSP] = top;
  loadCodeSegment(cpu, selector, csDesc, cpl);
  enter(cpu, target, handlerRflags(cpu.rflags, type === GATE.INT32));
}

// ---- legacy protected mode: 8-byte gates, 32- and 16-bit frames (APM vol. 2 8.7) -------------

function deliverLegacy(cpu: Cpu, ev: Event): void {
  const ext = extBit(ev);
  const gateErr = ev.vector * 8 + 2 + ext;
  const off = ev.vector * 8;
  if (off + 7 > cpu.idtr.limit) throw new Fault(VEC.GP, gateErr);
  const low = cpu.readLinear(cpu.idtr.base + BigInt(off), 8, 0);
  const type = Number((low >> 40n) & 0x1fn);
  if (type === GATE.TASK) throw new ModelStop(`event ${describeEvent(ev)} through a task gate is not modelled`);
  if (type !== GATE.INT16 && type !== GATE.TRAP16 && type !== GATE.INT32 && type !== GATE.TRAP32) throw new Fault(VEC.GP, gateErr);
  if (dplChecked(ev) && Number((low >> 45n) & 3n) < cpu.cpl) throw new Fault(VEC.GP, gateErr);
  if (!((low >> 47n) & 1n)) throw new Fault(VEC.NP, gateErr);

  const gate32 = (type & 0x8) !== 0;
  const selector = Number((low >> 16n) & 0xffffn);
  const target = gate32 ? (low & 0xffffn) | (((low >> 48n) & 0xffffn) << 16n) : low & 0xffffn;
  const csDesc = readCodeDescriptor(cpu, selector, ext);
  const cpl = checkCodeForGate(cpu, selector, csDesc, ext);
  const cs = segmentFromDescriptor(selector, csDesc);

  const oldCpl = cpu.cpl;
  let ss = cpu.seg[SEG.SS]!;
  let esp = cpu.gpr[GPR.RSP]! & (ss.attrib & ATTR.DB ? 0xffff_ffffn : 0xffffn);
  const outer = cpl < oldCpl;
  let newStack: TssStack32 | undefined;
  if (outer) {
    newStack = tssStack32(cpu, cpl, ext);
    ss = segmentFromDescriptor(newStack.selector, newStack.descriptor);
    esp = newStack.esp;
  }
  const size = gate32 ? 4 : 2;
  const mask = size === 4 ? 0xffff_ffffn : 0xffffn;

  // the handler's EIP must lie within its code segment (vol. 3 INT: #GP(0); EXT added, see the header)
  if (target > BigInt(cs.limit)) throw new Fault(VEC.GP, ext);

  const frame: bigint[] = [];
  if (outer) frame.push(BigInt(cpu.seg[SEG.SS]!.selector), cpu.gpr[GPR.RSP]! & mask);
  frame.push(BigInt(pushedRflags(cpu, ev)) & mask, BigInt(cpu.seg[SEG.CS]!.selector), ev.returnRip & mask);
  if (ev.errorCode !== undefined) frame.push(BigInt(ev.errorCode >>> 0) & mask);

  const spMask = ss.attrib & ATTR.DB ? 0xffff_ffffn : 0xffffn;
  const newEsp = (esp - BigInt(size * frame.length)) & spMask;
  const offsets = frame.map((_, i) => (esp - BigInt(size * (i + 1))) & spMask);
  // expand-up stack: every slot within the limit (expand-down stacks are not used by svmconf's
  // kernels); the error code names the new SS on a stack switch (vol. 3 INT)
  if (offsets.some((o) => o + BigInt(size - 1) > BigInt(ss.limit))) throw new Fault(VEC.SS, outer ? (ss.selector & 0xfffc) | ext : ext);
  const access = cpl === 3 ? ACC.USER : 0;
  for (let i = 0; i < frame.length; i++) cpu.writeLinear((ss.base + offsets[i]!) & 0xffff_ffffn, size, frame[i]!, access);

  // commit: CS's accessed bit first (APM vol. 2 4.7.2; a write that may #PF), then SS (its accessed
  // bit, 4.7.3, then the register), RSP, CS
  setAccessed(cpu, selector, csDesc);
  if (newStack) loadDescriptor(cpu, SEG.SS, newStack.selector, newStack.descriptor);
  cpu.setGpr(GPR.RSP, ss.attrib & ATTR.DB ? 4 : 2, newEsp);
  loadCodeSegment(cpu, selector, csDesc, cpl);
  enter(cpu, target, handlerRflags(cpu.rflags, type === GATE.INT16 || type === GATE.INT32));
}

// ---- real mode: the interrupt vector table (APM vol. 2 8.6, "Real-Mode Interrupt Control Transfers") --

function deliverReal(cpu: Cpu, ev: Event): void {
  const off = ev.vector * 4;
  if (off + 3 > cpu.idtr.limit) throw new Fault(VEC.GP, 0);
  const entry = cpu.readLinear(cpu.idtr.base + BigInt(off), 4, 0);
  const ip = entry & 0xffffn;
  const sel = Number(entry >> 16n);
  const ss = cpu.seg[SEG.SS]!;
  const sp = cpu.gpr[GPR.RSP]! & 0xffffn;
  const frame = [BigInt(pushedRflags(cpu, ev) & 0xffff), BigInt(cpu.seg[SEG.CS]!.selector), ev.returnRip & 0xffffn];
  for (let i = 0; i < 3; i++) {
    cpu.writeLinear((ss.base + ((sp - BigInt(2 * (i + 1))) & 0xffffn)) & 0xffff_ffffn, 2, frame[i]!, 0);
  }
  cpu.setGpr(GPR.RSP, 2, (sp - 6n) & 0xffffn);
  loadRealModeSegment(cpu, SEG.CS, sel);
  cpu.cpl = 0;
  enter(cpu, ip, cpu.rflags & ~(F.IF | F.TF));
}
