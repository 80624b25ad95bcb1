// Event injection (APM vol. 2 15.20) and EXITINTINFO (15.7.2), the pure parts: EVENTINJ → the
// Event that delivery (model/events/delivery.ts) takes, and an Event → its EXITINTINFO encoding.
//
// Classification of EVENTINJ (docs/svm-rules.md "EVENTINJ and EXITINTINFO layout", "Soft events"):
//   TYPE 0 → 'external' (INTR) with the vector;
//   TYPE 2 → 'nmi', vector 2 whatever VECTOR holds (15.20: "If TYPE is 2 (NMI), the VECTOR field
//            is ignored");
//   TYPE 3 → vectors 3 and 4: 'softexception', i.e. "like a trap raised by INT3 and INTO" with the
//            gate-DPL check (15.20); vector 1: a plain 'exception' — no trap semantics, no DPL check,
//            return address = VMCB RIP ("Event injection does not support injection of intercepted
//            #DB faults that are the result of a guest ICEBP instruction"); other vectors: 'exception';
//   TYPE 4 → 'softint' (INT n): DPL-checked;
//   TYPE 1, 5, 6, 7 are reserved: VMRUN fails before injection (checks.ts), so they never get here.
// Error code: pushed iff EV = 1, whatever the vector (15.20: "ERRORCODE … If EV is set to 1, the
// error code to be pushed onto the stack, ignored otherwise").
//
// Return address (the RIP pushed in the frame): for TYPE 4 and TYPE 3 vectors 3/4 — the trap-like
// events — next_rip (VMCB 0x0C8) when the CPU has NRIPS (implied by 15.20: "Software interrupts
// cannot be properly injected if the processor does not support the NextRIP field"); without NRIPS
// the model pushes the VMCB RIP, and the pushed address is *unspecified* (`returnRipUnspecified`:
// the masks step marks it). Every other event pushes the VMCB RIP. An exception raised while
// delivering a trap-like injected event restarts at the VMCB RIP (`insnRip`), as for the
// instruction it stands for.
// Not set (unspecified, docs/svm-rules.md "Injection: what the manual leaves open"): RF in the pushed RFLAGS image — the
// event pushes RFLAGS.RF as the VMCB loaded it (`rf` undefined) — and CR2 for an injected #PF (the
// VMM provides CR2 in the VMCB; injection does not write it).

import type { Event, EventKind } from '../events/classes.ts';
import { VEC, pushesErrorCode } from '../../arch/x86.ts';
import { EVENT_TYPE, isSoftEvent, isSoftException, makeEventInj, parseEventInfo, type EventInfo } from '../../arch/svm.ts';
import type { MutantName } from '../mutants.ts';

export interface InjectionContext {
  /** The guest RIP loaded from the VMCB save area. */
  rip: bigint;
  /** VMCB next_rip (0x0C8). */
  nextRip: bigint;
  /** The profile has NRIPS (CPUID Fn8000_000A EDX[3]). */
  nrips: boolean;
  /** Mutants switched on (model/mutants.ts); none when absent. */
  mutant?: (name: MutantName) => boolean;
}

export interface Injection {
  event: Event;
  /** The pushed return address is unspecified by the manual (trap-like injection without NRIPS). */
  returnRipUnspecified: boolean;
}

/** Reserved EVENTINJ.TYPE reached injection: a caller skipped checks.ts. */
export class ReservedEventType extends Error {
  constructor(readonly type: number) {
    super(`EVENTINJ.TYPE ${type} is reserved: VMRUN must have failed its checks (15.20)`);
    this.name = 'ReservedEventType';
  }
}

/**
 * The event VMRUN injects for EVENTINJ `value` (15.20), or undefined when V = 0. Throws
 * ReservedEventType for TYPE 1, 5, 6, 7 (checks.ts rejects them first).
 */
export function injectedEvent(value: bigint | EventInfo, ctx: InjectionContext): Injection | undefined {
  const info = typeof value === 'bigint' ? parseEventInfo(value) : value;
  if (!info.valid) return undefined;
  let kind: EventKind;
  let vector = info.vector;
  switch (info.type) {
    case EVENT_TYPE.INTR: kind = 'external'; break;
    case EVENT_TYPE.NMI: kind = 'nmi'; vector = VEC.NMI; break;
    case EVENT_TYPE.EXCEPTION: kind = isSoftException(info) ? 'softexception' : 'exception'; break;
    case EVENT_TYPE.SOFT_INT: kind = 'softint'; break;
    default: throw new ReservedEventType(info.type);
  }
  // mutant icebp-trap: TYPE 3 vector 1 treated like ICEBP's trap (next_rip pushed, gate DPL checked)
  const icebpTrap = info.type === EVENT_TYPE.EXCEPTION && vector === VEC.DB && ctx.mutant?.('icebp-trap') === true;
  if (icebpTrap) kind = 'icebp';
  const trap = isSoftEvent(info) || icebpTrap;
  const event: Event = { vector, kind, returnRip: trap && ctx.nrips ? ctx.nextRip : ctx.rip };
  if (trap) event.insnRip = ctx.rip;
  if (info.ev) event.errorCode = info.errorCode >>> 0;
  // mutant error-code-ignores-ev: the vector decides whether an error code is pushed, not EV
  if (info.type === EVENT_TYPE.EXCEPTION && ctx.mutant?.('error-code-ignores-ev')) {
    if (pushesErrorCode(vector)) event.errorCode = info.errorCode >>> 0;
    else delete event.errorCode;
  }
  return { event, returnRipUnspecified: trap && !ctx.nrips };
}

/** EXITINTINFO.TYPE of an event (15.7.2, Table 15-1): INT3/INTO/BOUND/ICEBP are exceptions, only INT n is TYPE 4. */
export function exitIntInfoType(kind: EventKind): number {
  switch (kind) {
    case 'external': return EVENT_TYPE.INTR;
    case 'nmi': return EVENT_TYPE.NMI;
    case 'softint': return EVENT_TYPE.SOFT_INT;
    case 'exception': case 'softexception': case 'icebp': return EVENT_TYPE.EXCEPTION;
  }
}

/**
 * EXITINTINFO for an event whose delivery was interrupted (15.7.2): V = 1, TYPE by kind, the
 * vector, EV and the error code iff the event pushes one (`errorCode` overrides the event's).
 */
export function exitIntInfoOf(event: Pick<Event, 'vector' | 'kind' | 'errorCode'>, errorCode: number | undefined = event.errorCode): bigint {
  const e: { vector: number; type: number; ev: boolean; errorCode?: number } = {
    vector: event.vector,
    type: exitIntInfoType(event.kind),
    ev: errorCode !== undefined,
  };
  if (errorCode !== undefined) e.errorCode = errorCode;
  return makeEventInj(e);
}
