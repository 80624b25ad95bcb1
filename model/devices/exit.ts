// The ways a kernel leaves the machine (templates/partials/batch.S.hbs rt_exit):
//   port 0xf4, QEMU's isa-debug-exit: the value written ends the run with status (value << 1) | 1;
//   port 0x8900, Bochs' shutdown port: the bytes of "Shutdown" in sequence end the run.

import { PORTS } from '../../arch/layout.ts';

export const DEBUG_EXIT_PORT = PORTS.DEBUG_EXIT;
export const BOCHS_SHUTDOWN_PORT = PORTS.BOCHS_SHUTDOWN;
const SHUTDOWN = 'Shutdown';

export class ExitDevices {
  exitStatus: number | undefined;
  private matched = 0;

  owns(port: number): boolean {
    return port === DEBUG_EXIT_PORT || port === BOCHS_SHUTDOWN_PORT;
  }

  out(port: number, value: number): void {
    if (port === DEBUG_EXIT_PORT) {
      this.exitStatus = ((value << 1) | 1) >>> 0;
      return;
    }
    this.matched = (value & 0xff) === SHUTDOWN.charCodeAt(this.matched) ? this.matched + 1 : 0;
    if (this.matched === SHUTDOWN.length) this.exitStatus = 0;
  }

  get exited(): boolean {
    return this.exitStatus !== undefined;
  }
}
