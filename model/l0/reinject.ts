// What the virtual L0 does after an exit that interrupted an event's delivery: the two halves of
// KVM's svm_complete_interrupts — make sense of EXITINTINFO and the soft-event state
// (completeSoftEvent), then put the event back through EVENTINJ (reinject) — written from the
// manual's rules (APM vol. 2 15.7.1 next_rip, 15.7.2 EXITINTINFO, 15.20 EVENTINJ) and KVM's 2022
// fixes (model/mutants.ts [kvm-2022]). The mutants of layer 'l0' switch the historical bugs back in.
//
// Soft events (INT n = TYPE 4, INT3/INTO = TYPE 3 vectors 3/4) are the hard part: EXITINTINFO says
// which event, not where its instruction ends, and an exit taken while vectoring writes next_rip = 0
// (15.7.1). So the L0 remembers, for the soft event it last injected, the RIP, the next RIP and the
// CS base (KVM's soft_int_old_rip / soft_int_next_rip / soft_int_csbase), and recognises the event
// again by its linear RIP. An event the guest's own instruction raised is not known: the L0 decodes
// the instruction at RIP for its length (KVM: skip_emulated_instruction). With NRIPS the next RIP
// goes into next_rip and RIP stays; without NRIPS the L0 must advance RIP itself before injecting
// (the processor pushes RIP) and undo that if the delivery is interrupted again.
//
// ICEBP: its #DB reads as TYPE 3 vector 1 in EXITINTINFO, which EVENTINJ cannot deliver as a trap
// (15.20). The L0 here is one that intercepts ICEBP (15.9, exit 0x88) and delivers its #DB itself,
// so it knows an interrupted #DB is ICEBP's (the event's kind) and delivers it again as such.
//
// RF: the interrupted event's frame would carry RF = 1 for a fault (APM vol. 2 3.1.6); an injected
// event pushes RFLAGS.RF as it is. The L0 exit hands back the RF the frame was to carry (the model's
// choice, the way VMX saves RF for an exit during delivery of a fault), so the re-injected fault
// pushes the same image.

import type { Cpu } from '../cpu/cpu.ts';
import { AccessAbort } from '../cpu/fault.ts';
import { F } from '../cpu/flags.ts';
import { SEG } from '../cpu/state.ts';
import { linearCodeAddress, linearRip } from '../cpu/linear.ts';
import { deliverEvent } from '../events/delivery.ts';
import type { Event } from '../events/classes.ts';
import { guestOf } from '../svm/guest.ts';
import { injectedEvent } from '../svm/inject.ts';
import { EVENT_TYPE, isSoftEvent, isSoftException, makeEventInj, type EventInfo } from '../../arch/svm.ts';
import { VEC } from '../../arch/x86.ts';
import type { MutantName } from '../mutants.ts';

/** The soft event the L0 last injected (or L1 injected through a VMRUN L0 emulated). */
export interface SoftEventState {
  oldRip: bigint;
  nextRip: bigint;
  csBase: bigint;
}

/** What reinject needs of the L0. */
export interface L0Context {
  readonly nrips: boolean;
  soft: SoftEventState | undefined;
  mutant(name: MutantName): boolean;
  /** Count what was done with an interrupted event (before it is delivered again, which may exit again). */
  count(outcome: 'reinjected' | 'retried'): void;
}

/** A remembered RIP as a linear address in the CPU's current mode (model/cpu/linear.ts). */
function linear(cpu: Cpu, rip: bigint, base: bigint): bigint {
  return linearCodeAddress(rip, base, cpu.mode64);
}

/**
 * KVM's svm_complete_soft_interrupt: with NRIPS, the next RIP of the soft event last injected if
 * the interrupted RIP is that event's; without NRIPS, undo the RIP advance made for it. Returns
 * the next RIP when known.
 */
export function completeSoftEvent(cpu: Cpu, l0: L0Context, info: EventInfo, soft: SoftEventState | undefined): bigint | undefined {
  if (!soft) return undefined;
  const softType = isSoftEvent(info);
  // mutant ignore-cs-base: the remembered RIP compared as if CS had base 0
  const base = l0.mutant('ignore-cs-base') ? 0n : soft.csBase;
  if (l0.nrips) {
    if (softType && linearRip(cpu) === linear(cpu, soft.oldRip, base)) return soft.nextRip;
  } else if ((softType || info.type === EVENT_TYPE.EXCEPTION) && linearRip(cpu) === linear(cpu, soft.nextRip, base)) {
    // the event now reported may be one its delivery raised (INT n → #NP): RIP is unwound all the same
    cpu.rip = soft.oldRip;
  }
  return undefined;
}

/**
 * The next RIP of the instruction at RIP, decoded (KVM: skip_emulated_instruction without side
 * effects); undefined when the bytes cannot be fetched or decoded.
 */
function decodeNext(cpu: Cpu): bigint | undefined {
  const current = cpu.current;
  const next = cpu.nextRip;
  try {
    return cpu.fetch().next;
  } catch (e) {
    if (e instanceof AccessAbort) return undefined;
    throw e;
  } finally {
    cpu.current = current;
    cpu.nextRip = next;
  }
}

/** Deliver an event the way VMRUN delivers EVENTINJ: not checked against L1's intercepts (15.20). */
function deliverInjected(cpu: Cpu, l0: L0Context, event: Event): void {
  l0.count('reinjected');
  const g = guestOf(cpu);
  if (!g) {
    deliverEvent(cpu, event);
    return;
  }
  g.injecting = event;
  try {
    deliverEvent(cpu, event);
  } finally {
    g.injecting = undefined;
  }
}

/** Drop the event: the instruction at RIP runs again. */
function retry(l0: L0Context): 'retried' {
  l0.count('retried');
  return 'retried';
}

/**
 * Put the interrupted event back (EXITINTINFO → EVENTINJ); `known` is the next RIP completeSoftEvent
 * found. 'retried': the event was dropped and the instruction at RIP runs again (the retry-*
 * mutants, or an instruction that cannot be decoded again).
 */
export function reinject(cpu: Cpu, l0: L0Context, info: EventInfo, during: Event, known: bigint | undefined): 'reinjected' | 'retried' {
  const softInt = info.type === EVENT_TYPE.SOFT_INT;
  const softExc = isSoftException(info);
  if ((softExc && l0.mutant('retry-soft-exception')) || (softInt && l0.mutant('retry-soft-int'))) return retry(l0);

  if (during.kind === 'icebp') {
    // an L0 that intercepts ICEBP delivers its #DB itself, as the trap it is (see the header)
    const next = decodeNext(cpu);
    if (next === undefined) return retry(l0);
    deliverInjected(cpu, l0, { vector: VEC.DB, kind: 'icebp', returnRip: next, insnRip: cpu.rip });
    return 'reinjected';
  }

  if (softInt && l0.mutant('soft-int-as-intr')) {
    const ev = injectedEvent(makeEventInj({ vector: info.vector, type: EVENT_TYPE.INTR }), { rip: cpu.rip, nextRip: 0n, nrips: l0.nrips })!;
    deliverInjected(cpu, l0, ev.event);
    return 'reinjected';
  }

  const value = makeEventInj({ vector: info.vector, type: info.type, ev: info.ev, errorCode: info.errorCode });
  if (softInt || softExc) {
    // an instruction that cannot be decoded again: drop the event and let it run again (KVM's
    // "least awful option" in svm_update_soft_interrupt_rip)
    const next = known ?? decodeNext(cpu);
    if (next === undefined) return retry(l0);
    const oldRip = cpu.rip;
    const csBase = cpu.mode64 ? 0n : cpu.seg[SEG.CS]!.base;
    l0.soft = { oldRip, nextRip: next, csBase };
    // with NRIPS the processor pushes next_rip; without it, RIP (so the L0 advances RIP first)
    if (!l0.nrips) cpu.rip = next;
    const ev = injectedEvent(value, { rip: cpu.rip, nextRip: next, nrips: l0.nrips })!;
    deliverInjected(cpu, l0, ev.event);
    return 'reinjected';
  }

  if (during.rf === 'set') cpu.rflags |= F.RF;
  const ev = injectedEvent(value, { rip: cpu.rip, nextRip: 0n, nrips: l0.nrips })!;
  deliverInjected(cpu, l0, ev.event);
  return 'reinjected';
}
