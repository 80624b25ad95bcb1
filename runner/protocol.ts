// The serial protocol of docs/protocol.md: formatting lines (for tests and fake kernels) and a
// pure parser that turns the serial lines of one boot into one outcome per case.
//
// The parser never guesses a pass: a case gets OK/SKIP/CRASH only from a CASE line whose CRC
// matches and that names the case expected next; anything else makes that expected case ERROR and
// ends the trust in the boot: no later line of it is credited (docs/protocol.md, "What the runner
// makes of it"). What happens to the case that was running when the output stopped (CRASH or
// TIMEOUT, and the reboot after it) is the scheduler's business: the parser reports it as
// NOT_REACHED.

import { crc32Hex } from './crc32.ts';

/** Every protocol line starts with this (docs/protocol.md: other lines are noise). */
export const PREFIX = 'SVMCONF ';

/**
 * The longest line the protocol allows, without its line end (docs/protocol.md "Limits"): a CASE
 * line holds at most a 256-byte record (generator/layout.ts RECORD_MAX, 512 hex digits), its id,
 * status and CRC fit in the rest. A longer line is a protocol error, and readers keep no more of a
 * line than this (runner/lines.ts).
 */
export const MAX_LINE_BYTES = 1024;

/**
 * How long one boot may last at most, whatever it prints (docs/protocol.md "Limits"): the idle
 * timeout for the start (firmware, BEGIN), one for each case the boot runs and one for END and the
 * exit. The idle timer restarts only on a valid protocol line, and only for as many such lines as
 * the boot can print (BEGIN, CPUID, one per case, END), so a kernel that keeps printing is stopped here.
 */
export function bootLimitMs(cases: number, idleTimeoutMs: number): number {
  return (cases + 2) * idleTimeoutMs;
}

/** The valid protocol lines a boot of `cases` cases prints at most: BEGIN, CPUID, one per case, END or PANIC. */
export function maxProtocolLines(cases: number): number {
  return cases + 3;
}

/**
 * The most serial output a boot of `cases` cases may produce (bytes): its protocol lines at their
 * longest, and 64 KiB of noise (firmware) besides. A boot that prints more is stopped.
 */
export function maxBootBytes(cases: number): number {
  return maxProtocolLines(cases) * (MAX_LINE_BYTES + 2) + 64 * 1024;
}

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
  /** The kernel's CPUID line: the SVM leaf 8000_000A as it read it (8 hex digits each), when it printed one. */
  cpuid?: { leaf: string; eax: string; ebx: string; ecx: string; edx: string };
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
  /**
   * Set (to the reason the case got) when a line broke the protocol: the case expected next got
   * ERROR and nothing after that line was credited; the cases still NOT_REACHED run in a new boot.
   */
  untrusted?: string;
  /** Set when a line longer than MAX_LINE_BYTES stopped the parse (the kernel printed without end). */
  overlong?: string;
  /**
   * Every case of the boot had its line but no END came: the last case is set back to NOT_REACHED
   * (its record is not trusted), so the scheduler charges it with how the boot ended.
   */
  noEnd?: boolean;
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
const HEX32_RE = /^[0-9a-f]{8}$/;

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
  /** END, PANIC, a restart, a bad BEGIN or a broken rule: what follows is diagnostics only. */
  let stopped = false;

  const expectedId = (): string => (next < end ? caseIds[next]! : 'END');

  /**
   * The one rule for every line that is not what the protocol allows next: the case expected next
   * is ERROR (after the last case: the last case, whose END did not come), and the rest of the boot
   * is not trusted. `what` says what came instead.
   */
  const distrust = (what: string, line: string): void => {
    const reason = `protocol: got ${what} while expecting ${next < end ? expectedId() : 'END'}`;
    out.problems.push(`${reason}: ${JSON.stringify(line.length > 200 ? `${line.slice(0, 200)}…` : line)}`);
    const charged = next < end ? next : end - 1;
    if (charged >= start) cases.set(caseIds[charged]!, { status: 'ERROR', reason });
    next = Math.max(next, charged + 1);
    out.untrusted = reason;
    stopped = true;
  };

  const handleCase = (line: string, t: string[]): void => {
    if (!out.begin) return distrust('a CASE line before any BEGIN', line);
    if (t.length < 5) return distrust('a malformed CASE line', line);
    const id = t[2]!;
    if (next >= end || id !== caseIds[next]) {
      const idx = indexOf.get(id);
      if (idx !== undefined && idx < next && idx >= start && cases.get(id) !== NOT_REACHED) {
        // The kernel went back to a case it had reported: that case is to blame, not the one
        // expected next, which runs in the new boot. Its report is no longer believed either.
        const reason = `protocol: got a second line for ${id} while expecting ${expectedId()}`;
        out.problems.push(`${reason}: ${JSON.stringify(line)}`);
        cases.set(id, { status: 'ERROR', reason });
        out.untrusted = reason;
        stopped = true;
        return;
      }
      return distrust(`line for ${id}`, line);
    }
    const record = t[t.length - 1]!;
    // A SKIP reason may hold spaces: everything between the id and the record is the status.
    const parsed = parseStatus(t.slice(3, -1).join(' '), record);
    if ('error' in parsed) return distrust(`a line for ${id} whose ${parsed.error}`, line);
    cases.set(id, parsed);
    next++;
  };

  /** CPUID <leaf> <eax> <ebx> <ecx> <edx>: once, right after BEGIN (docs/protocol.md). */
  const handleCpuid = (line: string, t: string[]): void => {
    if (!out.begin) return distrust('a CPUID line before any BEGIN', line);
    if (out.cpuid !== undefined || next !== start || cases.get(caseIds[start] ?? '') !== NOT_REACHED) return distrust('a CPUID line after the first', line);
    if (t.length !== 7 || !t.slice(2).every((x) => HEX32_RE.test(x))) return distrust('a malformed CPUID line', line);
    out.cpuid = { leaf: t[2]!, eax: t[3]!, ebx: t[4]!, ecx: t[5]!, edx: t[6]! };
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
      const named = kind === 'CASE' && checked.tokens.length > 3 ? `a line for ${checked.tokens[2]} with a ${checked.why}` : `a line with a ${checked.why}`;
      if (!out.begin && kind !== 'CASE') {
        // before BEGIN nothing is expected yet: the boot did not start (the scheduler says so)
        out.problems.push(`${checked.why}: ${JSON.stringify(line)}`);
        return;
      }
      return distrust(named, line);
    }
    const t = checked.tokens;
    switch (kind) {
      case 'BEGIN':
        return handleBegin(line, t);
      case 'CASE':
        return handleCase(line, t);
      case 'CPUID':
        return handleCpuid(line, t);
      case 'END':
        if (t.length !== 2) return distrust('a malformed END line', line);
        if (next < end) return distrust('END', line);
        out.ended = true;
        stopped = true;
        return;
      case 'PANIC':
        // The runtime failed outside any case and stops; the scheduler charges the running case.
        out.panic = t.slice(2).join(' ');
        stopped = true;
        return;
      default:
        return distrust(`an unknown line type ${JSON.stringify(kind ?? '')}`, line);
    }
  };

  for (const raw of lines) {
    const line = raw.replace(/\r/g, '');
    if (stopped) {
      if (line !== '') out.noise.push(line.length > MAX_LINE_BYTES ? `${line.slice(0, MAX_LINE_BYTES)}…` : line);
      continue;
    }
    if (line.length > MAX_LINE_BYTES && (out.begin !== undefined || line.includes(PREFIX))) {
      // Longer than any protocol line: the kernel prints without end (or its line end was lost).
      // The case expected next stays NOT_REACHED: the scheduler charges it with how the boot ended.
      out.overlong = `a line longer than ${MAX_LINE_BYTES} bytes while expecting ${expectedId()}`;
      out.problems.push(out.overlong);
      out.noise.push(`${line.slice(0, 200)}…`);
      stopped = true;
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
  } else if (!out.ended && out.untrusted === undefined && out.begin !== undefined && end > start && next >= end) {
    // Every case had its line, yet END never came (a hang, a crash, an exit after the last case):
    // the last record is not confirmed, and the scheduler charges that case with the boot's end.
    out.noEnd = true;
    cases.set(caseIds[end - 1]!, NOT_REACHED);
  }

  for (let i = start; i < end; i++) {
    if (cases.get(caseIds[i]!) === NOT_REACHED) {
      out.firstUnfinished = i;
      break;
    }
  }
  return out;
}

/** Whether `line` holds a protocol line with a matching CRC (what restarts a boot's idle timer). */
export function isValidLine(line: string): boolean {
  const at = line.indexOf(PREFIX);
  if (at < 0 || line.length - at > MAX_LINE_BYTES) return false;
  return checkLine(line.slice(at).replace(/\r/g, '')).ok;
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
