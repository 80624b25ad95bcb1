// What an event is (APM vol. 2 8.1–8.2) and the classes #DF escalation works on (8.2.9). The one
// interface a guest-mode layer uses to watch delivery, EventHooks, is in cpu/cpu.ts beside the Cpu
// it is installed on (docs/model.md "The guest-mode hook").
//
// Nothing here knows SVM. The SVM layer installs EventHooks on the CPU and reads `cpu.delivering`
// (the event whose delivery is under way) to fill EXITINTINFO; it builds injected events with
// the same Event shape, so an injected event goes through every check of delivery.ts.

import { Fault } from '../cpu/fault.ts';
import { VEC } from '../../arch/x86.ts';

/**
 * Where an event comes from. It decides the gate-DPL check, the EXT bit of error codes raised
 * while delivering it, and its #DF class:
 *  - exception:     raised by the processor (faults, traps such as single-step #DB, aborts; BOUND's #BR)
 *  - softint:       INT n (CD ib), including `int $3` (CD 03): DPL-checked (APM vol. 3 INT)
 *  - softexception: INT3 (CC) and INTO (CE): exceptions (#BP, #OF) raised by an instruction,
 *                   DPL-checked like INT n (APM vol. 2 8.2.4, 8.2.5; vol. 3 INT3, INTO)
 *  - icebp:         INT1 / ICEBP (F1): #DB as a trap, no DPL check
 *  - external:      INTR from the interrupt controller
 *  - nmi:           non-maskable interrupt (vector 2)
 * INT3 and CD 03 both reach vector 3 with a DPL check, but SVM reports them differently
 * (EXITINTINFO TYPE 3 vs TYPE 4, APM vol. 2 15.7.2): the kinds keep them apart.
 */
export type EventKind = 'exception' | 'softint' | 'softexception' | 'icebp' | 'external' | 'nmi';

export interface Event {
  vector: number;
  kind: EventKind;
  /** Pushed error code; undefined = none pushed. */
  errorCode?: number;
  /** The RIP pushed in the frame: the next instruction for traps and INT n, the instruction itself for faults. */
  returnRip: bigint;
  /**
   * For events an instruction raises as a trap (INT n, INT3, INTO, ICEBP): the instruction's own
   * address. An exception raised while delivering such an event is a fault of that instruction
   * and pushes this address, so the instruction is restarted (APM vol. 2 8.2: a fault reports
   * the instruction that caused it). Undefined: the restart point is `returnRip`.
   */
  insnRip?: bigint;
  /** #PF: the faulting linear address, written to CR2 when the #PF is delivered (APM vol. 2 8.4.2). */
  cr2?: bigint;
  /**
   * RF in the pushed RFLAGS image (APM vol. 2 3.1.6, "Resume Flag"): 'set' for fault-class
   * exceptions, 'clear' for the #DB of an instruction breakpoint, undefined = RFLAGS.RF as it is
   * (traps, interrupts: RF was cleared when the previous instruction completed).
   */
  rf?: 'set' | 'clear';
}

/**
 * An event an instruction raises instead of completing: thrown like a Fault (so the run loop's
 * catch delivers it), but carrying its kind and return address. Used for INT n, INT3, INTO,
 * ICEBP and for traps such as the single-step #DB.
 */
export class RaisedEvent extends Fault {
  constructor(readonly event: Event) {
    super(event.vector, event.errorCode, event.cr2);
    this.name = 'RaisedEvent';
    this.message = `${event.kind} ${event.vector}`;
  }
}

// ---- #DF classes (APM vol. 2 8.2.9, table 8-6 "Double-Fault Exception Conditions") ----------

export type DfClass = 'benign' | 'contributory' | 'pagefault' | 'doublefault';

/** Contributory exceptions: #DE, #TS, #NP, #SS, #GP (APM vol. 2 8.2.9). */
const CONTRIBUTORY: ReadonlySet<number> = new Set([VEC.DE, VEC.TS, VEC.NP, VEC.SS, VEC.GP]);

/**
 * The class of an event for #DF purposes. Only processor exceptions are contributory or page
 * faults; INT n, INT3/INTO, ICEBP, INTR and NMI are benign whatever their vector (8.2.9: "INTR",
 * "INTn" and the trap exceptions are in the benign class). `int $14` is not a page fault.
 */
export function dfClassOf(e: Pick<Event, 'vector' | 'kind'>): DfClass {
  if (e.kind !== 'exception') return 'benign';
  if (e.vector === VEC.DF) return 'doublefault';
  if (e.vector === VEC.PF) return 'pagefault';
  return CONTRIBUTORY.has(e.vector) ? 'contributory' : 'benign';
}

/**
 * What happens when exception `second` is raised while delivering `first` (APM vol. 2 8.2.9):
 *   first benign                          → 'serial' (deliver the second one)
 *   first contributory, second contributory → 'double'
 *   first page fault, second contributory or page fault → 'double'
 *   first #DF, any exception              → 'shutdown' ("a third interrupting event while
 *                                            transferring control to the #DF handler")
 *   anything else                         → 'serial'
 */
export function combine(first: Event, second: Pick<Event, 'vector' | 'kind'>): 'serial' | 'double' | 'shutdown' {
  const a = dfClassOf(first);
  const b = dfClassOf(second);
  if (a === 'doublefault') return 'shutdown';
  if (a === 'contributory' && b === 'contributory') return 'double';
  if (a === 'pagefault' && (b === 'contributory' || b === 'pagefault')) return 'double';
  return 'serial';
}

/**
 * EXT, bit 0 of a selector error code (APM vol. 2 8.4.1): 1 when the exception arose while
 * delivering an event external to the running program — an external interrupt, an NMI or a
 * processor exception — and 0 while delivering INT n, INT3, INTO or ICEBP.
 */
export function extBit(during: Event | undefined): number {
  if (during === undefined) return 0;
  return during.kind === 'exception' || during.kind === 'external' || during.kind === 'nmi' ? 1 : 0;
}

/** The event a Fault thrown by an instruction stands for: a fault of the instruction at `rip`. */
export function eventOfFault(fault: Fault, rip: bigint): Event {
  if (fault instanceof RaisedEvent) return fault.event;
  const e: Event = { vector: fault.vector, kind: 'exception', returnRip: rip, rf: 'set' };
  if (fault.errorCode !== undefined) e.errorCode = fault.errorCode;
  if (fault.cr2 !== undefined) e.cr2 = fault.cr2;
  return e;
}

/** Short text for messages and test failures: "#GP(0x10a) exception", "INT 0x80 softint". */
export function describeEvent(e: Event): string {
  const code = e.errorCode !== undefined ? `(0x${e.errorCode.toString(16)})` : '';
  return `vector 0x${e.vector.toString(16)}${code} ${e.kind}`;
}
