// The serial byte stream of a boot, cut into protocol lines, for every backend that reads one
// (qemu, kvm, bochs, the model's lines). Bytes are decoded as latin1: every byte maps to one
// character, so a corrupted byte stays one (wrong) character and fails the line's CRC, instead of a
// multi-byte sequence being split across chunks (docs/protocol.md).
//
// BootWatch also decides when a boot must be stopped, the same way for every backend
// (docs/protocol.md "Limits"): no valid protocol line for the idle timeout, the boot's overall
// limit, or more output than its cases can print.

import type { BootRequest } from './backend.ts';
import { bootLimitMs, isValidLine, MAX_LINE_BYTES, maxBootBytes, maxProtocolLines } from './protocol.ts';

/**
 * Lines as they complete; `end()` hands over a last line cut short, which the parser reports. A
 * line longer than `maxLine` is handed over once, cut to `maxLine + 1` characters (so the parser
 * sees that it is too long), and the rest of it up to its `\n` is dropped: the buffer never holds
 * more than `maxLine + 1` characters.
 */
export class LineSplitter {
  private partial = '';
  private dropping = false;

  /** `emit` gets each line without its CR LF / LF. */
  constructor(
    private readonly emit: (line: string) => void,
    private readonly maxLine = MAX_LINE_BYTES,
  ) {}

  push(chunk: string): void {
    let from = 0;
    while (from < chunk.length) {
      const nl = chunk.indexOf('\n', from);
      const piece = chunk.slice(from, nl < 0 ? chunk.length : nl);
      from = nl < 0 ? chunk.length : nl + 1;
      if (!this.dropping) {
        this.partial += piece;
        if (this.partial.length > this.maxLine) {
          this.emit(this.partial.slice(0, this.maxLine + 1));
          this.partial = '';
          this.dropping = true;
        }
      }
      if (nl >= 0) {
        if (!this.dropping) this.emit(this.partial.replace(/\r$/, ''));
        this.partial = '';
        this.dropping = false;
      }
    }
  }

  end(): void {
    if (this.partial !== '') this.emit(this.partial.replace(/\r$/, ''));
    this.partial = '';
    this.dropping = false;
  }
}

/**
 * An `emit` for LineSplitter that keeps every line in `lines` and shows it to an observer (the
 * progress display); an observer that throws does not take the boot down with it.
 */
export function lineRecorder(lines: string[], onLine?: (line: string) => void): (line: string) => void {
  return (line) => {
    lines.push(line);
    try {
      onLine?.(line);
    } catch {
      // the observer's failure is not the boot's
    }
  };
}

/** The number of cases a boot request runs (`start` up to `end` or the kernel's last case). */
export function bootCases(req: Pick<BootRequest, 'kernel' | 'start' | 'end'>): number {
  return Math.max(0, (req.end ?? req.kernel.cases.length) - req.start);
}

export interface BootWatchOptions {
  idleTimeoutMs: number;
  /** Cases the boot runs (bootCases). */
  cases: number;
  /** Every line, as it completes (BootRequest.onLine). */
  onLine?: (line: string) => void;
  /** Called once, with the detail of the boot's end, when the boot must be stopped. */
  onExpire?: (detail: string) => void;
  /** Who is killed, for the detail: `QEMU`, `Bochs`, `svmconf-kvm`, `the model`. */
  vmm: string;
  /** Start timers (default). Off: the caller polls check() (the model, Bochs' poll loop). */
  timers?: boolean;
}

/**
 * One boot's serial stream: lines (bounded, LineSplitter), and the three limits of
 * docs/protocol.md "Limits". The idle timer restarts only on a valid protocol line (its CRC
 * matches, runner/protocol.ts isValidLine), and only for the first maxProtocolLines(cases) of them.
 */
export class BootWatch {
  readonly lines: string[] = [];
  /** Why the boot had to be stopped (the BootResult detail), once it had to. */
  expired: string | undefined;
  readonly limitMs: number;
  private readonly maxBytes: number;
  private readonly maxValid: number;
  private readonly splitter: LineSplitter;
  private readonly t0 = performance.now();
  private lastProgress = this.t0;
  private bytes = 0;
  private valid = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly o: BootWatchOptions) {
    this.limitMs = bootLimitMs(o.cases, o.idleTimeoutMs);
    this.maxBytes = maxBootBytes(o.cases);
    this.maxValid = maxProtocolLines(o.cases);
    this.splitter = new LineSplitter((line) => this.line(line));
    if (o.timers ?? true) this.arm();
  }

  /** Raw serial bytes (latin1). */
  push(chunk: string): void {
    if (this.expired !== undefined) return;
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      this.expire(`the boot printed more than ${this.maxBytes} bytes, more than ${this.o.cases} case(s) can (docs/protocol.md "Limits"); ${this.o.vmm} killed`);
      return;
    }
    this.splitter.push(chunk);
  }

  /** A complete line (the model's serial port hands over lines, not bytes). */
  line(line: string): void {
    if (this.expired !== undefined) return;
    if (line.length > MAX_LINE_BYTES + 1) line = line.slice(0, MAX_LINE_BYTES + 1);
    this.lines.push(line);
    try {
      this.o.onLine?.(line);
    } catch {
      // the observer's failure is not the boot's
    }
    if (this.valid < this.maxValid && isValidLine(line)) {
      this.valid++;
      this.lastProgress = performance.now();
    }
  }

  /** For line-handing callers: count the bytes of a line as push() does. */
  countLine(line: string): void {
    if (this.expired !== undefined) return;
    this.bytes += line.length + 1;
    if (this.bytes > this.maxBytes) {
      this.expire(`the boot printed more than ${this.maxBytes} bytes, more than ${this.o.cases} case(s) can (docs/protocol.md "Limits"); ${this.o.vmm} killed`);
      return;
    }
    this.line(line);
  }

  /** The stream ended: a last line without `\n` is handed over. Stops the timers. */
  end(): void {
    this.stop();
    if (this.expired === undefined) this.splitter.end();
  }

  /** Stop the timers (the boot is over). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Whether a limit is reached now; if so the watch expires (once) and the detail is returned. */
  check(): string | undefined {
    if (this.expired !== undefined) return this.expired;
    const now = performance.now();
    if (now - this.t0 >= this.limitMs) {
      this.expire(`the boot reached its limit of ${this.limitMs / 1000} s ((${this.o.cases} case(s) + 2) × the ${this.o.idleTimeoutMs / 1000} s idle timeout, docs/protocol.md "Limits"); ${this.o.vmm} killed`);
    } else if (now - this.lastProgress >= this.o.idleTimeoutMs) {
      this.expire(`no valid protocol line for ${this.o.idleTimeoutMs / 1000} s; ${this.o.vmm} killed`);
    }
    return this.expired;
  }

  private expire(detail: string): void {
    if (this.expired !== undefined) return;
    this.expired = detail;
    this.stop();
    try {
      this.o.onExpire?.(detail);
    } catch {
      // the caller's kill must not break the watch
    }
  }

  private arm(): void {
    if (this.stopped) return;
    const now = performance.now();
    const due = Math.min(this.lastProgress + this.o.idleTimeoutMs, this.t0 + this.limitMs);
    this.timer = setTimeout(() => {
      if (this.check() === undefined) this.arm();
    }, Math.max(1, due - now + 1));
  }
}
