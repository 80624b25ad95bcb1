// From a terminal's byte stream to text lines: what a serial console (IPMI SOL, picocom, virsh
// console, QEMU behind a pty) delivers is the kernel's lines mixed with CR/LF translation, ANSI
// and VT100 escape sequences (GRUB's menu, a BMC's banner) and other control bytes. Only lines
// starting `SVMCONF ` matter (runner/protocol.ts) and their CRC protects them, so the cleaner may
// be simple: it must never join two lines into one, and never alter a protocol line's bytes.

/** ESC sequences: CSI (ESC [ params final), OSC (ESC ] … BEL or ESC \), charset and two-byte ones. */
const ESCAPES = /\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()*+][0-~]|[@-Z\\-_=>78])/g;
/** Other C0 controls and DEL (tab kept; CR and LF are handled before). */
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f]/g;

/** Remove escape sequences and control characters from one line (no CR or LF in it). */
export function cleanText(text: string): string {
  return text.replace(ESCAPES, '').replace(CONTROLS, '');
}

/**
 * Split a cleaned chunk of terminal output into lines. `\n` ends a line; a `\r` not followed by
 * `\n` (a console redrawing a line, GRUB's countdown) also ends one, so that what was drawn over is
 * never glued to what follows.
 */
export class TerminalLines {
  private partial = '';
  /** An escape sequence may be cut by a chunk boundary: keep the bytes from ESC until complete. */
  private pendingEsc = '';

  constructor(
    private readonly onLine: (line: string) => void,
    /** A line longer than this (a screen redrawn without newlines) is flushed as it is. */
    private readonly maxLine = 16384,
  ) {}

  /** Feed raw output (latin1: one character per byte). */
  push(chunk: string): void {
    let text = this.pendingEsc + chunk;
    this.pendingEsc = '';
    const esc = text.lastIndexOf('\x1b');
    if (esc >= 0 && text.length - esc < 64 && !completeEscape(text.slice(esc))) {
      this.pendingEsc = text.slice(esc);
      text = text.slice(0, esc);
    }
    text = text.replace(ESCAPES, '');
    for (const ch of splitKeep(text)) {
      if (ch === '\n' || ch === '\r') {
        this.flush(ch);
      } else {
        this.partial += ch;
        if (this.partial.length > this.maxLine) this.emit();
      }
    }
  }

  /** The last line without an end (the stream stopped mid-line). */
  end(): void {
    this.partial += this.pendingEsc;
    this.pendingEsc = '';
    if (this.partial !== '') this.emit();
  }

  private lastWasCr = false;

  private flush(ch: string): void {
    if (ch === '\n' && this.lastWasCr) {
      // CR LF: the line was already ended at the CR.
      this.lastWasCr = false;
      return;
    }
    this.lastWasCr = ch === '\r';
    this.emit();
  }

  private emit(): void {
    const line = this.partial.replace(CONTROLS, '');
    this.partial = '';
    this.onLine(line);
  }
}

/** Split into runs of ordinary characters and single CR / LF characters. */
function splitKeep(text: string): string[] {
  return text.split(/([\r\n])/).filter((s) => s !== '');
}

function completeEscape(s: string): boolean {
  ESCAPES.lastIndex = 0;
  const m = new RegExp(`^(?:${ESCAPES.source})`).exec(s);
  return m !== null;
}
