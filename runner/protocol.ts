// The serial protocol of docs/protocol.md: formatting lines (for tests and fake kernels) and a
// pure parser that turns the serial lines of one boot into one outcome per case.
//
// The parser never guesses a pass: a case gets OK/SKIP/CRASH only from a CASE line whose CRC
// matches and that names it; anything doubtful is ERROR (docs/protocol.md, "What the runner makes
// of it"). What happens to the case that was running when the output stopped (CRASH or TIMEOUT,
// and the reboot after it) is the scheduler's business: the parser reports it as NOT_REACHED.

import { crc32Hex } from './crc32.ts';

/** Every protocol line starts with this (docs/protocol.md: other lines are noise). */
export const PREFIX = 'SVMCONF ';

/** What one CASE line (or its absence) amounts to, before the scheduler adds CRASH/TIMEOUT. */
export interface ParsedCase {
  status: 'OK' | 'SKIP' | 'CRASH' | 'ERROR';
  /** Lower-case hex of the record bytes; absent for `-`. */
  record?: string;
  /** SKIP: the kernel's reason; ERROR: what was wrong with the line. */
  reason?: string;
}

export const NOT_REACHED = 'not reached' as const;
export type CaseParse = ParsedCase | typeof NOT_REACHED;

export interface BeginInfo {
  kernelId: string;
  ncases: number;
  start: number;
}

export interface BootParse {
  /** One entry per case this boot should run (`start` up to `end`), in table order. */
  cases: Map<string, CaseParse>;
  /** Index (into the kernel's case table) of the first case without a result, or -1. */
  firstUnfinished: number;
  /** The first valid BEGIN line, if any. */
  begin?: BeginInfo;
  /** Set when BEGIN names another kernel, case count or start: every case is then ERROR. */
  beginError?: string;
  /** A valid END line was seen. */
  ended: boolean;
  /** Text of a valid PANIC line. */
  panic?: string;
  /** A second BEGIN appeared: the machine started over (a reset the VMM did not stop). */
  restarted: boolean;
  /** Lines (or line prefixes) that are not protocol lines, kept for diagnostics. */
  noise: string[];
  /** Protocol problems, human-readable, in the order met (also those charged to a case). */
  problems: string[];
}

export interface ParseOptions {
  /** When given, a BEGIN line naming another kernel is an error. */
  kernelId?: string;
  /** The boot's `end=` (exclusive): cases from here on are not expected in this boot. */
  end?: number;
}

const CRC_RE = /^[0-9a-f]{8}$/;
const HEX_RE = /^(?:[0-9a-f]{2})+$/;
const SKIP_RE = /^SKIP\((.*)\)$/s;
const UINT_RE = /^(?:0|[1-9][0-9]*)$/;

/** Append the protocol CRC to a line body (`SVMCONF …` without the trailing space). */
export function formatLine(body: string): string {
  return `${body} ${crc32Hex(body)}`;
}

export function formatBegin(kernelId: string, ncases: number, start: number): string {
  return formatLine(`${PREFIX}BEGIN ${kernelId} ${ncases} ${start}`);
}

/** `status` is `OK`, `CRASH` or `SKIP(reason)`; a missing record prints as `-`. */
export function formatCase(caseId: string, status: string, record?: string): string {
  const rec = record === undefined || record === '' ? '-' : record;
  return formatLine(`${PREFIX}CASE ${caseId} ${status} ${rec}`);
}

export function formatEnd(): string {
  return formatLine(`${PREFIX}END`);
}

/** The protocol's PANIC text has no spaces (docs/protocol.md); they become underscores. */
export function formatPanic(text: string): string {
  return formatLine(`${PREFIX}PANIC ${text.replace(/\s+/g, '_')}`);
}

/**
 * Split raw serial output into lines: `\n` ends a line and a `\r` before it is dropped
 * (docs/protocol.md: a pty or serial console adds it). A last line without `\n` is kept: it is
 * what a boot killed mid-line leaves, and the parser reports it as truncated.
 */
export function splitSerial(text: string): string[] {
  const lines = text.split('\n').map((l) => l.replace(/\r+$/, ''));
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

type Checked = { ok: true; tokens: string[] } | { ok: false; why: string; tokens: string[] };

/** Check the CRC of one protocol line (starting at `SVMCONF `) and split it into tokens. */
function checkLine(line: string): Checked {
  const cut = line.lastIndexOf(' ');
  const crc = line.slice(cut + 1);
  const body = line.slice(0, cut);
  if (cut < PREFIX.length || !CRC_RE.test(crc)) {
    // No well-formed CRC at the end: the line was cut short.
    return { ok: false, why: 'truncated line', tokens: line.split(' ') };
  }
  const tokens = body.split(' ');
  const want = crc32Hex(body);
  if (want !== crc) return { ok: false, why: `bad CRC (line says ${crc}, its bytes give ${want})`, tokens };
  return { ok: true, tokens };
}

/**
 * Parse the serial lines of one boot of a kernel that holds `caseIds` (in table order) and was
 * booted with `start=<start>`. Lines may still carry `\r`.
 */
export function parseBoot(
  lines: readonly string[],
  caseIds: readonly string[],
  start: number,
  opts: ParseOptions = {},
): BootParse {
  const end = Math.min(opts.end ?? caseIds.length, caseIds.length);
  const cases = new Map<string, CaseParse>();
  for (let i = start; i < end; i++) cases.set(caseIds[i]!, NOT_REACHED);
  const indexOf = new Map<string, number>();
  caseIds.forEach((id, i) => indexOf.set(id, i));

  const out: BootParse = {
    cases,
    firstUnfinished: -1,
    ended: false,
    restarted: false,
    noise: [],
    problems: [],
  };

  /** Index of the case the kernel should report next. */
  let next = start;
  /** END, PANIC, a restart or a bad BEGIN: what follows is diagnostics only. */
  let stopped = false;

  const setResult = (idx: number, r: ParsedCase): void => {
    const id = caseIds[idx]!;
    const prev = cases.get(id);
    if (prev === undefined) return; // before start: not this boot's to judge
    if (prev === NOT_REACHED) {
      cases.set(id, r);
      return;
    }
    // A second line for a case that already has one: never let it end as a pass.
    if (prev.status !== 'ERROR') {
      cases.set(id, { status: 'ERROR', reason: `two CASE lines for this case (${r.reason ?? r.status})` });
    }
  };

  /** Cases the kernel passed over on its way to `idx` have no line: ERROR, never a pass. */
  const skipTo = (idx: number, why: string): void => {
    for (let i = next; i < idx; i++) setResult(i, { status: 'ERROR', reason: why });
    next = Math.max(next, idx);
  };

  const chargeExpected = (reason: string): void => {
    if (next < end) {
      setResult(next, { status: 'ERROR', reason });
      next++;
    }
  };

  /** Index of `id` when it names a case still to come in this boot, else -1. */
  const knownAhead = (id: string | undefined): number => {
    if (id === undefined) return -1;
    const idx = indexOf.get(id);
    return idx !== undefined && idx >= next && idx < end ? idx : -1;
  };

  const handleCase = (line: string, t: string[]): void => {
    if (!out.begin) out.problems.push('CASE line before any BEGIN');
    if (t.length < 5) {
      const reason = 'malformed CASE line';
      out.problems.push(`${reason}: ${JSON.stringify(line)}`);
      chargeExpected(reason);
      return;
    }
    const id = t[2]!;
    const record = t[t.length - 1]!;
    // A SKIP reason may hold spaces: everything between the id and the record is the status.
    const statusText = t.slice(3, -1).join(' ');
    const expectedId = next < end ? caseIds[next] : undefined;
    const idx = knownAhead(id);
    if (idx < 0) {
      const reason = `unexpected case id ${id} (expected ${expectedId ?? 'no more cases'})`;
      out.problems.push(reason);
      const seen = indexOf.get(id);
      if (seen !== undefined && cases.has(id) && cases.get(id) !== NOT_REACHED) {
        // The kernel repeated a case it had already reported.
        setResult(seen, { status: 'ERROR', reason: 'repeated CASE line' });
        return;
      }
      chargeExpected(reason);
      return;
    }
    if (idx > next) {
      const reason = `no CASE line (the kernel went on with ${id})`;
      out.problems.push(`${reason} after ${expectedId}`);
      skipTo(idx, reason);
    }
    next = idx + 1;
    const parsed = parseStatus(statusText, record);
    if ('error' in parsed) {
      out.problems.push(`${parsed.error}: ${JSON.stringify(line)}`);
      setResult(idx, { status: 'ERROR', reason: parsed.error });
      return;
    }
    setResult(idx, parsed);
  };

  const handleBegin = (line: string, t: string[]): void => {
    if (out.begin || out.beginError !== undefined) {
      // The kernel started over inside one boot: a reset that the VMM did not stop.
      out.restarted = true;
      out.problems.push('second BEGIN: the machine restarted');
      stopped = true;
      return;
    }
    if (t.length !== 5 || !UINT_RE.test(t[3]!) || !UINT_RE.test(t[4]!)) {
      out.beginError = `malformed BEGIN line: ${JSON.stringify(line)}`;
    } else {
      const info: BeginInfo = { kernelId: t[2]!, ncases: Number(t[3]), start: Number(t[4]) };
      out.begin = info;
      const wrong: string[] = [];
      if (opts.kernelId !== undefined && info.kernelId !== opts.kernelId) {
        wrong.push(`kernel ${info.kernelId}, expected ${opts.kernelId}`);
      }
      if (info.ncases !== caseIds.length) wrong.push(`${info.ncases} cases, expected ${caseIds.length}`);
      if (info.start !== start) wrong.push(`start ${info.start}, expected ${start}`);
      if (wrong.length > 0) out.beginError = `BEGIN does not match the kernel: ${wrong.join('; ')}`;
    }
    if (out.beginError !== undefined) {
      out.problems.push(out.beginError);
      stopped = true;
    }
  };

  const handle = (line: string): void => {
    const checked = checkLine(line);
    const kind = checked.tokens[1];
    if (!checked.ok) {
      out.problems.push(`${checked.why}: ${JSON.stringify(line)}`);
      if (kind === 'BEGIN' || kind === 'END' || kind === 'PANIC') return; // names no case
      // Trust the id only when a space follows it (so it was not itself cut short).
      const idx = kind === 'CASE' && checked.tokens.length > 3 ? knownAhead(checked.tokens[2]) : -1;
      if (idx >= 0) {
        skipTo(idx, `no CASE line (the next line names ${caseIds[idx]})`);
        setResult(idx, { status: 'ERROR', reason: checked.why });
        next = idx + 1;
      } else {
        chargeExpected(checked.why);
      }
      return;
    }
    const t = checked.tokens;
    switch (kind) {
      case 'BEGIN':
        handleBegin(line, t);
        return;
      case 'CASE':
        handleCase(line, t);
        return;
      case 'END':
        if (t.length !== 2) {
          out.problems.push(`malformed END line: ${JSON.stringify(line)}`);
          return;
        }
        out.ended = true;
        stopped = true;
        return;
      case 'PANIC':
        // The runtime failed outside any case and stops; the scheduler charges the running case.
        out.panic = t.slice(2).join(' ');
        stopped = true;
        return;
      default:
        out.problems.push(`unknown line type: ${JSON.stringify(line)}`);
        return;
    }
  };

  for (const raw of lines) {
    const line = raw.replace(/\r/g, '');
    if (stopped) {
      if (line !== '') out.noise.push(line);
      continue;
    }
    const at = line.indexOf(PREFIX);
    if (at < 0) {
      if (line !== '') out.noise.push(line);
      continue;
    }
    // A console that has not ended its own line (GRUB, a BMC) may leave bytes before ours; the
    // CRC starts at the `S` of SVMCONF, so that prefix can be split off without risk.
    if (at > 0) out.noise.push(line.slice(0, at));
    const proto = line.slice(at);
    // Two protocol lines run together (a lost `\n`) fail the CRC as a whole, but each part carries
    // its own CRC. Split only then, so that a SKIP reason mentioning SVMCONF stays intact.
    const parts =
      checkLine(proto).ok || proto.indexOf(PREFIX, 1) < 0
        ? [proto]
        : proto.split(PREFIX).slice(1).map((p) => PREFIX + p);
    for (const part of parts) {
      if (stopped) out.noise.push(part);
      else handle(part);
    }
  }

  if (out.beginError !== undefined) {
    // Output of another kernel, case table or start index: nothing in it can be trusted.
    for (const [id, r] of cases) {
      if (r === NOT_REACHED || r.status !== 'ERROR') cases.set(id, { status: 'ERROR', reason: out.beginError });
    }
  } else if (out.ended) {
    // END says the batch is over; a case still without a line was never reported.
    for (const [id, r] of cases) {
      if (r === NOT_REACHED) cases.set(id, { status: 'ERROR', reason: 'no CASE line before END' });
    }
  }

  for (let i = start; i < end; i++) {
    if (cases.get(caseIds[i]!) === NOT_REACHED) {
      out.firstUnfinished = i;
      break;
    }
  }
  return out;
}

function parseStatus(status: string, record: string): ParsedCase | { error: string } {
  if (record !== '-' && !HEX_RE.test(record)) {
    return { error: 'record is not an even number of lower-case hex digits' };
  }
  const rec = record === '-' ? undefined : record;
  if (status === 'OK' || status === 'CRASH') {
    if (rec === undefined) return { error: `${status} without a record` };
    return { status, record: rec };
  }
  const m = SKIP_RE.exec(status);
  if (m) {
    const r: ParsedCase = { status: 'SKIP', reason: m[1]! };
    if (rec !== undefined) r.record = rec;
    return r;
  }
  return { error: `unknown status ${JSON.stringify(status)}` };
}
