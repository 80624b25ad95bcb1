// COM1 as the kernels use it (docs/protocol.md): a transmitter that is always ready. The line
// status register reads THRE|TEMT (bits 5 and 6), so every poll succeeds at once; bytes written
// to THR are collected into lines. Other UART registers read 0 and ignore writes.

import { PORTS, UART } from '../../arch/layout.ts';

export const COM1_BASE = PORTS.COM1_BASE;
const THR = 0;
const LSR = 5;
const LSR_READY = UART.LSR_THRE | UART.LSR_TEMT;

export class Serial {
  private current: number[] = [];
  readonly lines: string[] = [];

  constructor(private readonly onLine?: (line: string) => void) {}

  owns(port: number): boolean {
    return port >= COM1_BASE && port < COM1_BASE + 8;
  }

  in(port: number): number {
    return port - COM1_BASE === LSR ? LSR_READY : 0;
  }

  out(port: number, value: number): void {
    if (port - COM1_BASE !== THR) return;
    const byte = value & 0xff;
    if (byte === 0x0a) {
      const line = Buffer.from(this.current).toString('latin1').replace(/\r$/, '');
      this.current = [];
      this.lines.push(line);
      this.onLine?.(line);
    } else {
      this.current.push(byte);
    }
  }

  /** Bytes written after the last newline (a run cut short mid-line). */
  pending(): string {
    return Buffer.from(this.current).toString('latin1');
  }
}
