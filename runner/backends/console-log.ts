// The `console` backend fed from a saved serial log instead of a live console: what a lab system
// such as LAVA captured while the machine booted the suite image (docs/lava-job.yaml). The log is
// cleaned and split exactly as a live console's stream (runner/terminal.ts, resultsFromConsole),
// so a case without a valid CASE line in the log is never a pass.

import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import type { BackendInfo, Feature, Kernel } from '../../core/types.ts';
import { TerminalLines } from '../terminal.ts';
import type { CaseResult } from '../../core/types.ts';
import { PREFIX } from '../protocol.ts';
import { CONSOLE_BACKEND, resultsFromConsole, segmentLines, SUITE_BEGIN, SUITE_DONE, type ConsoleBackend, type SuiteRun, type SuiteRunOptions } from './console.ts';

export class ConsoleLogError extends Error {
  override name = 'ConsoleLogError';
}

/** Cleaned lines of a captured console log (bytes as latin1, so no byte is lost before the CRC check). */
export function logLines(raw: Buffer | string): string[] {
  const lines: string[] = [];
  const term = new TerminalLines((l) => lines.push(l));
  term.push(typeof raw === 'string' ? raw : raw.toString('latin1'));
  term.end();
  return lines;
}

/**
 * A LAVA job log (YAML: one `- {"dt": …, "lvl": …, "msg": …}` entry a line, as the job page's log
 * download gives it) turned back into the device's serial text: the `target` entries' messages,
 * one a line. Undefined when `text` is not such a log (then it is taken as raw serial output).
 */
export function lavaLogText(text: string): string | undefined {
  const first = text.split('\n', 1)[0] ?? '';
  if (!/^- \{"?dt"?:/.test(first)) return undefined;
  let entries: unknown;
  try {
    entries = parseYaml(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(entries)) return undefined;
  const out: string[] = [];
  for (const e of entries) {
    const o = e as { lvl?: unknown; msg?: unknown };
    if (o?.lvl === 'target' && typeof o.msg === 'string') out.push(o.msg);
  }
  return `${out.join('\n')}\n`;
}

/** How the captured session ended, judged from its lines (a live session knows; a log only shows). */
export function logEnding(lines: readonly string[]): { end: SuiteRun['end']; detail: string } {
  const begins = lines.filter((l) => l.includes(SUITE_BEGIN)).length;
  if (begins > 1) return { end: 'restarted', detail: 'the suite began more than once in the log (the machine reset)' };
  if (lines.some((l) => l.includes(SUITE_DONE))) return { end: 'done', detail: 'the suite loader said done' };
  return { end: 'exited', detail: 'the log ends before the suite loader\'s done line (capture stopped, or the machine hung)' };
}

/**
 * The boots a log holds (docs/protocol.md "The suite image", several boots in one log): a new boot
 * starts at each `svmconf-suite: begin` line, and at a BEGIN of a batch the current boot already
 * began (a log of `-kernel` boots joined, without the loader's lines).
 */
export function logBoots(lines: readonly string[]): string[][] {
  const boots: string[][] = [];
  let cur: string[] = [];
  let kernels = new Set<string>();
  let loader = false;
  const begin = `${PREFIX}BEGIN `;
  for (const line of lines) {
    const at = line.indexOf(begin);
    const kernel = at >= 0 ? (line.slice(at + begin.length).split(' ')[0] ?? '') : undefined;
    const suite = line.includes(SUITE_BEGIN);
    if ((suite && (loader || kernels.size > 0)) || (kernel !== undefined && kernels.has(kernel))) {
      boots.push(cur);
      cur = [];
      kernels = new Set();
      loader = false;
    }
    if (suite) loader = true;
    if (kernel !== undefined) kernels.add(kernel);
    cur.push(line);
  }
  boots.push(cur);
  return boots;
}

/** Two results the same as far as a comparison goes (status and record). */
const same = (a: CaseResult, b: CaseResult): boolean => a.status === b.status && a.record === b.record;
const shown = (r: CaseResult): string => `${r.status}${r.record !== undefined ? ` ${r.record}` : ''}${r.reason ? ` (${r.reason})` : ''}`;

/**
 * Results of a log of several boots: each boot is parsed as a session of its own; a case takes
 * the result of the boots that ran its batch (printed its BEGIN) when they agree, and is ERROR,
 * naming each boot's result, when they do not. Nothing of any boot is dropped unseen.
 */
export function resultsFromBoots(kernels: Parameters<typeof resultsFromConsole>[0], boots: readonly string[][], idleTimeoutMs: number): { results: Map<string, CaseResult>; end: SuiteRun['end']; detail: string } {
  const per = boots.map((lines, i) => {
    const last = i === boots.length - 1;
    const ending = last || lines.some((l) => l.includes(SUITE_DONE)) ? logEnding(lines) : { end: 'restarted' as const, detail: 'the log holds another boot after this one (the machine reset)' };
    const ran = new Set(segmentLines(lines).map((s) => s.kernelId));
    return { ending, ran, results: resultsFromConsole(kernels, lines, { ...ending, idleTimeoutMs }) };
  });
  const results = new Map<string, CaseResult>();
  for (const k of kernels) {
    for (const c of k.cases) {
      const got = per.map((b, i) => ({ boot: i + 1, r: b.results.get(c.id)!, ran: b.ran.has(k.id) })).filter((x) => x.ran);
      const lastBoot = per[per.length - 1]!.results.get(c.id)!;
      if (got.length === 0) results.set(c.id, lastBoot);
      else if (got.every((x) => same(x.r, got[got.length - 1]!.r))) results.set(c.id, got[got.length - 1]!.r);
      else {
        results.set(c.id, { status: 'ERROR', reason: `the log's boots disagree: ${got.map((x) => `boot ${x.boot}: ${shown(x.r)}`).join('; ')}` });
      }
    }
  }
  const lastEnd = per[per.length - 1]!.ending;
  return { results, end: lastEnd.end, detail: `${boots.length} boots in the log; the last: ${lastEnd.detail}` };
}

/** The cleaned lines of a log file; throws ConsoleLogError naming the file when it cannot be a suite log. */
export async function readConsoleLog(file: string): Promise<string[]> {
  let raw: Buffer;
  try {
    raw = await readFile(file);
  } catch (e) {
    throw new ConsoleLogError(`${file}: cannot read the console log (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const lava = lavaLogText(raw.toString('latin1'));
  const lines = logLines(lava ?? raw);
  if (!lines.some((l) => l.includes('SVMCONF BEGIN '))) {
    throw new ConsoleLogError(`${file}: no "SVMCONF BEGIN" line: not a console log of the suite image (${lines.length} line(s))`);
  }
  return lines;
}

export function consoleLogBackend(file: string): ConsoleBackend {
  async function probe(): Promise<BackendInfo> {
    const reason = 'decided by the machine\'s CPU: a case whose requirement it does not meet reports SKIP';
    const features = {} as BackendInfo['features'];
    for (const f of ['svm', 'npt', 'nrips'] as Feature[]) features[f] = { present: true, absent: true, reason };
    return { name: CONSOLE_BACKEND, kind: 'hardware', available: true, reason: '', features, version: `console log ${file}` };
  }
  async function boot(): Promise<never> {
    throw new Error('the console backend reads the whole suite from the log (runSuite)');
  }
  async function runSuite(kernels: readonly Kernel[], ro: SuiteRunOptions): Promise<SuiteRun> {
    const t0 = performance.now();
    const lines = await readConsoleLog(file);
    for (const l of lines) ro.onLine?.(l);
    const boots = logBoots(lines);
    const { results, end, detail } = boots.length > 1
      ? resultsFromBoots(kernels, boots, ro.idleTimeoutMs)
      : { ...logEnding(lines), results: resultsFromConsole(kernels, lines, { ...logEnding(lines), idleTimeoutMs: ro.idleTimeoutMs }) };
    for (const [id, r] of results) ro.onCase?.(id, r.status);
    return { results, end, detail, lines, seconds: (performance.now() - t0) / 1000 };
  }
  return { name: CONSOLE_BACKEND, kind: 'hardware', probe, boot, runSuite };
}
