// Progress of a run: a redrawn bar with counts and ETA on a terminal, plain lines otherwise.

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

export function createProgress(total: number, stream: NodeJS.WriteStream = process.stderr, plainEvery = 10): ProgressSink {
  const started = Date.now();
  const counts = new Map<string, number>();
  let done = 0;
  const tty = Boolean(stream.isTTY) && process.env.TERM !== 'dumb';
  const line = () => {
    const elapsed = (Date.now() - started) / 1000;
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
      else if (done % plainEvery === 0 || done === total) stream.write(`progress: ${line()}\n`);
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
