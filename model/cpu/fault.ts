// An exception raised while executing or delivering: thrown, caught by the run loop, delivered
// by events/delivery.ts (APM vol. 2 ch. 8).

export class Fault extends Error {
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
