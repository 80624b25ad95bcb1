// An exception raised while executing or delivering: thrown, caught by the run loop, delivered
// by events/delivery.ts (APM vol. 2 ch. 8).

/**
 * An access (a fetch, a read or write, a page-table walk, an event delivery) that could not
 * complete. Either a guest exception (Fault) or something a guest-mode layer turns into an exit
 * (SVM's nested page fault, model/svm/npt.ts): the CPU treats both alike where it must hold an
 * abort back (an instruction fetch that fails on a byte past the first: the decoder may not need
 * that byte) and leaves the rest to events/boundary.ts and the hooks (EventHooks.onAbort).
 */
export class AccessAbort extends Error {}

export class Fault extends AccessAbort {
  constructor(
    readonly vector: number,
    /** Pushed error code, or undefined for vectors without one (APM vol. 2 8.2, table 8-1). */
    readonly errorCode?: number,
    /** For #PF: the faulting linear address, written to CR2 at delivery. */
    readonly cr2?: bigint,
  ) {
    super(`exception ${vector}${errorCode !== undefined ? ` (error 0x${errorCode.toString(16)})` : ''}`);
    this.name = 'Fault';
  }
}

/** The model cannot go on: an instruction or feature it does not implement. Never a guest event. */
export class ModelStop extends Error {
  constructor(message: string) {
    super(`model: ${message}`);
    this.name = 'ModelStop';
  }
}

/** The processor shut down (triple fault, APM vol. 2 8.2.9). */
export class Shutdown extends Error {
  constructor(readonly why: string) {
    super(`shutdown: ${why}`);
    this.name = 'Shutdown';
  }
}

import { VEC } from '../../arch/x86.ts';

export const ud = (): Fault => new Fault(VEC.UD);
export const gp = (code = 0): Fault => new Fault(VEC.GP, code);
