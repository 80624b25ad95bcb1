// The serial byte stream of a boot, cut into protocol lines, for every backend that reads one
// (qemu, kvm, bochs). Bytes are decoded as latin1: every byte maps to one character, so a
// corrupted byte stays one (wrong) character and fails the line's CRC, instead of a multi-byte
// sequence being split across chunks (docs/protocol.md).

/** Lines as they complete; `end()` hands over a last line cut short, which the parser reports. */
export class LineSplitter {
  private partial = '';

  /** `emit` gets each line without its CR LF / LF. */
  constructor(private readonly emit: (line: string) => void) {}

  push(chunk: string): void {
    this.partial += chunk;
    let nl: number;
    while ((nl = this.partial.indexOf('\n')) >= 0) {
      this.emit(this.partial.slice(0, nl).replace(/\r$/, ''));
      this.partial = this.partial.slice(nl + 1);
    }
  }

  end(): void {
    if (this.partial !== '') this.emit(this.partial.replace(/\r$/, ''));
    this.partial = '';
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
