// The `console` backend: a machine (bare metal, or anything else) that boots the suite image
// (generator/iso.ts) and prints the protocol on a serial console the user can attach to with a
// command: `ipmitool -I lanplus -H bmc -U u -P p sol activate`, `picocom -b 115200 /dev/ttyUSB0`,
// `virsh console vm`, or QEMU itself behind -serial stdio (the end-to-end test).
//
// One boot runs every batch kernel (the loader prints `svmconf-suite: begin N` … `svmconf-suite:
// done`; each batch prints its own BEGIN … END). The runner drives the console command in a pty
// (node-pty), optionally runs a boot command (power cycle, netboot) once the console is attached,
// cleans the terminal stream (runner/terminal.ts), maps each BEGIN segment to its kernel by id and
// parses it with runner/protocol.ts. A case without a valid CASE line never passes: the case that
// was running when the output stopped is TIMEOUT or CRASH, the ones after it ERROR.

import { execa } from 'execa';
import { createRequire } from 'node:module';
import type { Backend } from '../backend.ts';
import type { BackendInfo, CaseResult, Feature, Kernel } from '../../core/types.ts';
import { bootLimitMs, isValidLine, MAX_LINE_BYTES, maxBootBytes, NOT_REACHED, parseBoot, PREFIX } from '../protocol.ts';
import { unavailableFeatures } from '../probe.ts';
import { TerminalLines } from '../terminal.ts';

export const CONSOLE_BACKEND = 'console';

/** Plain lines of the suite loader (templates/partials/suite_loader.S.hbs). */
export const SUITE_BEGIN = 'svmconf-suite: begin ';
export const SUITE_DONE = 'svmconf-suite: done';

export interface ConsoleOptions {
  /** Shell command that attaches to the machine's serial console (its output is the console). */
  consoleCmd?: string;
  /** Shell command that boots the machine, run once the console is attached (optional). */
  bootCmd?: string;
  /** Before the suite starts (firmware, GRUB, a slow POST): give up after this long. */
  startTimeoutMs?: number;
  /** After SIGTERM to the console command's process group, wait this long before SIGKILL. */
  killGraceMs?: number;
}

export interface SuiteRunOptions {
  /** Kill the console when no output arrived for this long once the suite has started. */
  idleTimeoutMs: number;
  /** Every cleaned console line as it arrives. */
  onLine?: (line: string) => void;
  /** Each case as soon as its result is known from its CASE line (progress display). */
  onCase?: (caseId: string, status: string) => void;
  signal?: AbortSignal;
}

export interface SuiteRun {
  /** One result per case of every kernel given. */
  results: Map<string, CaseResult>;
  /** How the console session ended. */
  end: 'done' | 'timeout' | 'exited' | 'restarted' | 'boot-failed';
  detail: string;
  /** Cleaned console lines, in order. */
  lines: string[];
  seconds: number;
}

interface Pty {
  pid: number;
  onData(cb: (d: string | Buffer) => void): void;
  onExit(cb: (e: { exitCode: number; signal?: number }) => void): void;
  write(d: string): void;
}
type PtySpawn = (file: string, args: string[], opts: object) => Pty;

/** node-pty, loaded on demand (a native module: its absence makes the backend unavailable). */
function loadPty(): { spawn: PtySpawn } | { error: string } {
  try {
    const require = createRequire(import.meta.url);
    return require('node-pty') as { spawn: PtySpawn };
  } catch (e) {
    return { error: `node-pty cannot be loaded (npm ci builds it): ${e instanceof Error ? e.message.split('\n')[0] : String(e)}` };
  }
}

/** What the machine can show is its own CPU's business: the kernels check CPUID and SKIP. */
function machineFeatures(): BackendInfo['features'] {
  const reason = 'decided by the machine\'s CPU: a case whose requirement it does not meet reports SKIP';
  const t = {} as BackendInfo['features'];
  for (const f of ['svm', 'npt', 'nrips'] as Feature[]) t[f] = { present: true, absent: true, reason };
  return t;
}

/** The lines of one batch in the console stream: from its BEGIN up to the next BEGIN. */
interface Segment {
  kernelId: string;
  lines: string[];
}

/** Split cleaned console lines into batch segments by their BEGIN lines (CRC checked later). */
export function segmentLines(lines: readonly string[]): Segment[] {
  const out: Segment[] = [];
  const begin = `${PREFIX}BEGIN `;
  for (const line of lines) {
    const at = line.indexOf(begin);
    if (at >= 0) {
      out.push({ kernelId: line.slice(at + begin.length).split(' ')[0] ?? '', lines: [line] });
    } else {
      out[out.length - 1]?.lines.push(line);
    }
  }
  return out;
}

/**
 * Results of every case of `kernels` from the lines of one boot of the image. Pure: the session
 * (runConsole) supplies the lines and how it ended.
 */
export function resultsFromConsole(
  kernels: readonly Kernel[],
  lines: readonly string[],
  ending: { end: SuiteRun['end']; detail: string; idleTimeoutMs: number },
): Map<string, CaseResult> {
  const results = new Map<string, CaseResult>();
  const byId = new Map(kernels.map((k) => [k.id, k]));
  const segments = segmentLines(lines);
  for (const [n, seg] of segments.entries()) {
    const kernel = byId.get(seg.kernelId);
    if (!kernel) continue; // a kernel of another image or selection: nothing here to judge
    const ids = kernel.cases.map((c) => c.id);
    const startTok = /BEGIN \S+ \d+ (\d+) /.exec(seg.lines[0]!)?.[1];
    const start = startTok !== undefined ? Number(startTok) : 0;
    const p = parseBoot(seg.lines, ids, Math.min(start, ids.length), { kernelId: kernel.id });
    const last = n === segments.length - 1;
    let blamed = false;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (results.has(id)) continue;
      const r = p.cases.get(id);
      if (r === undefined) {
        results.set(id, { status: 'ERROR', reason: `not run: this boot started the kernel at case ${start}` });
      } else if (r !== NOT_REACHED) {
        const cr: CaseResult = { status: r.status };
        if (r.record !== undefined) cr.record = r.record;
        if (r.status === 'OK' && p.cpuid !== undefined) cr.cpuidSvmEdx = p.cpuid.edx;
        if (r.reason !== undefined) cr.reason = r.reason;
        results.set(id, cr);
      } else if (p.untrusted !== undefined) {
        // the console cannot boot the batch again: what its broken output did not reach is not run
        results.set(id, { status: 'ERROR', reason: `not run: the batch's output was not trusted after "${p.untrusted}"` });
      } else if (!blamed) {
        blamed = true;
        results.set(id, blame(p, last, ending));
      } else {
        results.set(id, { status: 'ERROR', reason: 'not reached: the batch stopped at an earlier case' });
      }
    }
  }
  for (const k of kernels) {
    for (const c of k.cases) {
      if (!results.has(c.id)) {
        results.set(c.id, { status: 'ERROR', reason: `not run: no BEGIN of ${k.id} on the console (${ending.end}: ${ending.detail})` });
      }
    }
  }
  return results;
}

/** The case that was running when its batch's output stopped without END. */
function blame(
  p: ReturnType<typeof parseBoot>,
  lastSegment: boolean,
  ending: { end: SuiteRun['end']; detail: string; idleTimeoutMs: number },
): CaseResult {
  const after = p.noEnd ? 'its CASE line came, then no END: ' : p.overlong !== undefined ? `${p.overlong}; ` : '';
  if (p.panic !== undefined) return { status: 'CRASH', reason: `${after}kernel PANIC: ${p.panic}` };
  if (!lastSegment) {
    // Another batch began after this one without its END: the loader cannot do that, so the
    // machine restarted (or output was lost) while this case ran.
    return { status: 'CRASH', reason: `${after}the next BEGIN came without this batch's END: the machine restarted or output was lost` };
  }
  switch (ending.end) {
    case 'timeout':
      return { status: 'TIMEOUT', reason: `${after}${ending.detail}` };
    case 'restarted':
      return { status: 'CRASH', reason: `${after}the machine restarted while this case ran (${ending.detail})` };
    default:
      return { status: 'CRASH', reason: `${after}the console ended while this case ran (${ending.end}: ${ending.detail})` };
  }
}

export interface ConsoleBackend extends Backend {
  /** Attach, boot, read the whole suite, and give every case of `kernels` one result. */
  runSuite(kernels: readonly Kernel[], opts: SuiteRunOptions): Promise<SuiteRun>;
}

export function consoleBackend(opts: ConsoleOptions = {}): ConsoleBackend {
  const killGraceMs = opts.killGraceMs ?? 2000;

  async function probe(): Promise<BackendInfo> {
    const unavailable = (reason: string): BackendInfo => ({ name: CONSOLE_BACKEND, kind: 'hardware', available: false, reason, features: unavailableFeatures(reason) });
    if (!opts.consoleCmd) {
      return unavailable("not configured: give --console-cmd '<command attaching to the machine's serial console>' (and --boot-cmd to boot it), or SVMCONF_CONSOLE_CMD");
    }
    const pty = loadPty();
    if ('error' in pty) return unavailable(pty.error);
    return { name: CONSOLE_BACKEND, kind: 'hardware', available: true, reason: '', features: machineFeatures(), version: `console: ${opts.consoleCmd}` };
  }

  async function boot(): Promise<never> {
    throw new Error('the console backend runs the whole suite image in one boot (runSuite), not one kernel at a time');
  }

  async function runSuite(kernels: readonly Kernel[], ro: SuiteRunOptions): Promise<SuiteRun> {
    if (!opts.consoleCmd) throw new Error('console backend: no console command');
    const pty = loadPty();
    if ('error' in pty) throw new Error(pty.error);
    const t0 = performance.now();
    const lines: string[] = [];
    const startTimeoutMs = opts.startTimeoutMs ?? Math.max(ro.idleTimeoutMs, 300_000);
    const caseIds = new Set(kernels.flatMap((k) => k.cases.map((c) => c.id)));

    const child = pty.spawn('/bin/sh', ['-c', opts.consoleCmd], {
      name: 'vt100', cols: 200, rows: 50, cwd: process.cwd(), env: process.env, encoding: null,
    });

    let started = false;
    let finished: { end: SuiteRun['end']; detail: string } | undefined;
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    let exited = false;

    const killGroup = (sig: NodeJS.Signals): void => {
      try {
        process.kill(-child.pid, sig); // node-pty makes the shell a session (and group) leader
      } catch {
        try {
          process.kill(child.pid, sig);
        } catch {
          // already gone
        }
      }
    };
    const finish = (end: SuiteRun['end'], detail: string): void => {
      if (finished) return;
      finished = { end, detail };
      clearTimeout(idle);
      clearTimeout(limit);
      if (!exited) {
        killGroup('SIGTERM');
        setTimeout(() => {
          if (!exited) killGroup('SIGKILL');
        }, killGraceMs).unref();
      }
      resolveDone();
    };

    let idle: NodeJS.Timeout = setTimeout(() => finish('timeout', `the suite did not start within ${startTimeoutMs / 1000} s`), startTimeoutMs);
    // docs/protocol.md "Limits": once the suite runs, only a valid protocol line (or one of the
    // loader's) restarts the idle timer; the whole session ends at the start timeout plus every
    // batch's boot limit, and after as much output as every batch can print plus 1 MiB of noise.
    const limitMs = startTimeoutMs + kernels.reduce((t, k) => t + bootLimitMs(k.cases.length, ro.idleTimeoutMs), 0);
    const limit = setTimeout(() => finish('timeout', `the console session reached its limit of ${limitMs / 1000} s (docs/protocol.md "Limits"); console command killed`), limitMs);
    const maxBytes = kernels.reduce((t, k) => t + maxBootBytes(k.cases.length), 1 << 20);
    let bytes = 0;
    const rearm = (): void => {
      clearTimeout(idle);
      if (finished) return;
      idle = started
        ? setTimeout(() => finish('timeout', `no valid protocol line for ${ro.idleTimeoutMs / 1000} s; console command killed`), ro.idleTimeoutMs)
        : setTimeout(() => finish('timeout', `the suite did not start within ${startTimeoutMs / 1000} s`), startTimeoutMs);
    };

    const onLine = (line: string): void => {
      if (finished) return;
      lines.push(line);
      if (isValidLine(line) || line.includes(SUITE_BEGIN) || line.includes(SUITE_DONE)) rearm();
      try {
        ro.onLine?.(line);
      } catch {
        // an observer must not break the run
      }
      if (line.includes(SUITE_BEGIN)) {
        if (started && lines.some((l, i) => i < lines.length - 1 && l.includes(SUITE_BEGIN))) {
          finish('restarted', 'the suite began a second time (the machine reset)');
          return;
        }
        started = true;
      } else if (line.includes(`${PREFIX}BEGIN `)) {
        started = true;
      } else if (line.includes(`${PREFIX}CASE `)) {
        const t = line.slice(line.indexOf(PREFIX)).split(' ');
        if (t[2] && caseIds.has(t[2])) {
          try {
            ro.onCase?.(t[2], (t[3] ?? '').replace(/\(.*$/, ''));
          } catch {
            // progress only
          }
        }
      } else if (line.includes(SUITE_DONE)) {
        finish('done', 'the suite loader said done');
      }
    };
    const term = new TerminalLines(onLine, MAX_LINE_BYTES + 1);
    child.onData((d) => {
      if (finished) return;
      const text = typeof d === 'string' ? d : d.toString('latin1');
      bytes += text.length;
      if (bytes > maxBytes) {
        finish('timeout', `the console printed more than ${maxBytes} bytes, more than the suite can (docs/protocol.md "Limits"); console command killed`);
        return;
      }
      if (!started) rearm(); // before the suite, firmware output keeps the start timeout going
      term.push(text);
    });
    child.onExit((e) => {
      exited = true;
      // The pty may report the exit before the last output: let it drain first.
      setTimeout(() => {
        term.end();
        finish('exited', `console command ended (exit status ${e.exitCode}${e.signal ? `, signal ${e.signal}` : ''})`);
      }, 300);
    });
    const onAbort = (): void => finish('exited', 'aborted');
    ro.signal?.addEventListener('abort', onAbort, { once: true });

    if (opts.bootCmd) {
      const b = await execa('/bin/sh', ['-c', opts.bootCmd], { reject: false, stdin: 'ignore', all: true });
      if (b.exitCode !== 0) {
        finish('boot-failed', `boot command failed (exit status ${b.exitCode}): ${String(b.all ?? '').trim().split('\n').slice(-2).join(' | ')}`);
      }
    }
    await done;
    ro.signal?.removeEventListener('abort', onAbort);
    if (ro.signal?.aborted) throw ro.signal.reason ?? new Error('aborted');
    const ending = finished!;
    const results = resultsFromConsole(kernels, lines, { ...ending, idleTimeoutMs: ro.idleTimeoutMs });
    return { results, end: ending.end, detail: ending.detail, lines, seconds: (performance.now() - t0) / 1000 };
  }

  return { name: CONSOLE_BACKEND, kind: 'hardware', probe, boot, runSuite };
}
