// Progress of a run: a redrawn bar with counts and ETA on a terminal, plain lines otherwise
// (at most every 5% of the results or every 10 s: plainLineDue).

export interface ProgressSink {
  caseDone(status: string, backend: string): void;
  note(text: string): void;
  end(): void;
}

function eta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  return `${Math.floor(seconds / 60)}m${String(Math.ceil(seconds % 60)).padStart(2, '0')}s`;
}

/**
 * When a plain (non-terminal) stream gets a line: after each further 5% of the case results, or
 * when 10 s have passed since the last line, and at the end, so that a CI log of a 15,000-result
 * run holds a few dozen progress lines, not thousands. Pure, for the spec.
 */
export function plainLineDue(o: { done: number; total: number; lastDone: number; msSinceLast: number }): boolean {
  if (o.done >= o.total) return true;
  const step = Math.max(1, Math.ceil(o.total / 20));
  return o.done - o.lastDone >= step || o.msSinceLast >= 10_000;
}

export function createProgress(total: number, stream: NodeJS.WriteStream = process.stderr, now: () => number = Date.now): ProgressSink {
  const started = now();
  let lastDone = 0;
  let lastAt = started;
  const counts = new Map<string, number>();
  let done = 0;
  const tty = Boolean(stream.isTTY) && process.env.TERM !== 'dumb';
  const line = () => {
    const elapsed = (now() - started) / 1000;
    const remaining = done ? (elapsed / done) * (total - done) : NaN;
    const byStatus = [...counts].map(([s, n]) => `${s} ${n}`).join(' · ');
    return `${done}/${total} case results · ${byStatus || 'starting'} · ${eta(elapsed)} elapsed · ETA ${done ? eta(remaining) : '?'}`;
  };
  const draw = () => {
    const width = Math.max(10, Math.min(30, (stream.columns ?? 80) - 80));
    const filled = total ? Math.round((done / total) * width) : width;
    stream.write(`\r\x1b[K[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${line()}`);
  };
  return {
    caseDone(status) {
      done++;
      counts.set(status, (counts.get(status) ?? 0) + 1);
      if (tty) draw();
      else if (plainLineDue({ done, total, lastDone, msSinceLast: now() - lastAt })) {
        lastDone = done;
        lastAt = now();
        stream.write(`progress: ${line()}\n`);
      }
    },
    note(text) {
      if (tty) stream.write(`\r\x1b[K${text}\n`);
      else stream.write(`${text}\n`);
      if (tty && done) draw();
    },
    end() {
      if (tty) stream.write(`\r\x1b[K${line()}\n`);
    },
  };
}
