// The deviation registry (docs/architecture.md "Comparison"): expected/deviations.yaml lists divergences that
// are understood — which backend, which versions, which cases and record fields, what the backend
// gives, what the manual says, and the evidence (manual section, peer source line, thread). The
// comparison shows a divergence covered by an entry as a *known deviation*; nothing here can hide a
// divergence the entry does not describe (another field, another case, another value).
//
// Loading validates every entry and names the file and line of the first problem, as the
// template front matter does (generator/template.ts).

import { readFile } from 'node:fs/promises';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Document } from 'yaml';
import { globToRegExp } from '../core/glob.ts';
import { EVENT_TYPE, EVENTINJ } from '../arch/svm.ts';
import { RFLAGS, RFLAGS_FLAG_NAMES, VEC } from '../arch/x86.ts';

export class DeviationError extends Error {
  constructor(readonly file: string, readonly line: number | undefined, readonly detail: string) {
    super(`${file}${line !== undefined ? `:${line}` : ''}: ${detail}`);
    this.name = 'DeviationError';
  }
}

/** A reference into a peer's source (an emulator or hypervisor that shows the behaviour). */
export interface PeerReference {
  repo: string;
  path: string;
  line: number;
  commit?: string;
  /** The function the line is in (optional, helps when lines move). */
  function?: string;
  note: string;
}

export interface DeviationEvidence {
  /** Where the manual says what should happen, e.g. `APM vol. 2 §15.20`. */
  manual: string;
  peer: PeerReference[];
  threads: string[];
}

/**
 * What the backend gives in one field. `value` is compared on the bits of `mask` (undefined: every
 * bit of the field). `value` may be negative (a signed offset): it is taken modulo the field width.
 */
export interface ObservedValue {
  text: string;
  value: bigint;
  mask: bigint | undefined;
}

/**
 * The versions of an entry (docs/peers.md "The registry by version"): what it was seen on and,
 * when a later version no longer shows it, which one and what fixed it. `match` decides where
 * the entry applies; `checked` and `fixed` are what runs found, and are checked against `match`
 * when the registry is read, so the text can never claim a version the pattern does not cover.
 */
export interface DeviationVersions {
  /** In words, for the matrix: "QEMU 7.2.22 to 11.1.3". */
  range: string;
  /** A regular expression on the column's BackendInfo.version; the entry applies where it matches. */
  match: RegExp;
  /** Exact versions (BackendInfo.version) a run showed the entry on, oldest first; each matches `match`. */
  checked: string[];
  /** A later version checked without it: the first such version, and the upstream fix where found. */
  fixed?: { in: string; by: string };
}

export interface Deviation {
  id: string;
  backend: string;
  versions: DeviationVersions;
  cases: string[];
  fields: string[];
  observed: Record<string, ObservedValue>;
  expected: string;
  summary: string;
  evidence: DeviationEvidence;
  /**
   * Families of columns that run on this entry's backend as their emulated CPU and show the same
   * value (`shows_through: [kvm-tcg]`: KVM inside QEMU TCG inherits TCG's event delivery). Each
   * such column is matched on its emulator's version (BackendInfo.emulator). Empty: none.
   */
  showsThrough: string[];
  /** The finding the entry belongs to (expected/findings.yaml), set when the register is read with it (suite/select.ts). */
  finding?: string;
  /** Where the entry is written. */
  file: string;
  line: number;
}

const ENTRY_KEYS = ['id', 'backend', 'versions', 'cases', 'fields', 'observed', 'expected', 'summary', 'evidence', 'shows_through'] as const;
const EVIDENCE_KEYS = ['manual', 'peer', 'threads'] as const;
const PEER_KEYS = ['repo', 'path', 'line', 'commit', 'function', 'note'] as const;
const VERSION_KEYS = ['range', 'match', 'checked', 'fixed'] as const;
const FIXED_KEYS = ['in', 'by'] as const;

/** A kebab-case id, for registry entries and the findings that group them (report/findings.ts). */
export const ID_RE = /^[a-z0-9]+(-[a-z0-9]+)*$/;
const BACKEND_RE = /^[a-z][a-z0-9-]*$/;
const FIELD_RE = /^[a-z][a-z0-9_]*$/;
const CASE_GLOB_RE = /^[A-Za-z0-9_.+\-*?/=,]+$/;
const REPO_RE = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;
const COMMIT_RE = /^[0-9a-f]{7,40}$/;
const URL_RE = /^https?:\/\/\S+$/;

// ---------------------------------------------------------------------------------------------
// Observed values

const EVENT_KEYS: Record<string, { shift: bigint; width: bigint }> = {
  VEC: { shift: 0n, width: 8n },
  TYPE: { shift: EVENTINJ.TYPE_SHIFT, width: 3n },
  EV: { shift: 11n, width: 1n },
  V: { shift: 31n, width: 1n },
  ERR: { shift: EVENTINJ.ERR_SHIFT, width: 32n },
};

function parseNumber(s: string): bigint | undefined {
  const t = s.replace(/_/g, '');
  if (/^0x[0-9a-f]+$/i.test(t)) return BigInt(t);
  if (/^[0-9]+$/.test(t)) return BigInt(t);
  return undefined;
}

/**
 * The forms an observed value may take (all YAML strings):
 *   `0xffffffff`, `50`          the whole field equals this number (`_` separators allowed)
 *   `+0x1`, `-0x2`              a signed value (offset fields), two's complement in the field width
 *   `#UD`, `#GP`                an exception vector by its mnemonic
 *   `V=1 TYPE=SOFT_INT VEC=3`   EVENTINJ/EXITINTINFO bits: only the named parts are compared
 *                               (V, TYPE by number or name INTR/NMI/EXCEPTION/SOFT_INT, VEC, EV, ERR)
 *   `RF=0`, `RF=1 IF=0`         RFLAGS bits: only the named flags are compared
 *   {value: 0x.., mask: 0x..}   `value` compared on the bits of `mask` (a YAML map)
 * Returns an error text instead of throwing.
 */
export function parseObserved(raw: unknown): ObservedValue | string {
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
    const o = raw as Record<string, unknown>;
    for (const k of Object.keys(o)) if (k !== 'value' && k !== 'mask') return `unknown key \`${k}\` (a masked value is {value, mask})`;
    if (typeof o.value !== 'string' || typeof o.mask !== 'string') return 'a masked value needs `value` and `mask`, both numbers such as 0x403';
    const value = parseNumber(o.value);
    const mask = parseNumber(o.mask);
    if (value === undefined) return `\`${o.value}\` is not a number (0x… or decimal)`;
    if (mask === undefined || mask === 0n) return `\`${o.mask}\` is not a non-zero mask`;
    if ((value & ~mask) !== 0n) return `value ${o.value} has bits outside mask ${o.mask}`;
    return { text: `${o.value} (mask ${o.mask})`, value, mask };
  }
  if (typeof raw !== 'string' || raw.trim() === '') return 'must be a value: 0x…, ±0x…, #XX, `V=1 TYPE=… VEC=…`, `RF=0`, or {value, mask}';
  const text = raw.trim();
  const plain = parseNumber(text);
  if (plain !== undefined) return { text, value: plain, mask: undefined };
  const signed = /^([+-])(.+)$/.exec(text);
  if (signed) {
    const n = parseNumber(signed[2] ?? '');
    if (n === undefined) return `\`${text}\` is not a signed number such as -0x2`;
    return { text, value: signed[1] === '-' ? -n : n, mask: undefined };
  }
  if (text.startsWith('#')) {
    const v = (VEC as Record<string, number>)[text.slice(1)];
    if (v === undefined) return `\`${text}\` is not an exception mnemonic (${Object.keys(VEC).map((k) => `#${k}`).join(' ')})`;
    return { text, value: BigInt(v), mask: undefined };
  }
  const tokens = text.split(/\s+/).map((t) => /^([A-Za-z_]+)=(\S+)$/.exec(t));
  if (tokens.some((t) => t === null)) return `\`${text}\`: expected KEY=VALUE parts separated by spaces`;
  const pairs = tokens.map((t) => [t![1]!.toUpperCase(), t![2]!] as const);
  const flagNames = RFLAGS_FLAG_NAMES as readonly string[];
  const isEvent = pairs.every(([k]) => k in EVENT_KEYS);
  const isFlags = pairs.every(([k]) => flagNames.includes(k));
  if (!isEvent && !isFlags) {
    return `\`${text}\`: use either event-info parts (${Object.keys(EVENT_KEYS).join(', ')}) or RFLAGS flags (${flagNames.join(', ')}), not a mix`;
  }
  let value = 0n;
  let mask = 0n;
  for (const [k, v] of pairs) {
    let n: bigint | undefined;
    let bits: bigint;
    let shift: bigint;
    if (isEvent) {
      const spec = EVENT_KEYS[k]!;
      n = k === 'TYPE' && v in EVENT_TYPE ? BigInt(EVENT_TYPE[v as keyof typeof EVENT_TYPE]) : parseNumber(v);
      if (n === undefined && k === 'VEC' && v.startsWith('#')) {
        const vec = (VEC as Record<string, number>)[v.slice(1)];
        n = vec === undefined ? undefined : BigInt(vec);
      }
      bits = (1n << spec.width) - 1n;
      shift = spec.shift;
    } else {
      n = parseNumber(v);
      const flag = RFLAGS[k as keyof typeof RFLAGS];
      shift = BigInt(flag.toString(2).length - 1);
      bits = 1n;
    }
    if (n === undefined || n > bits) return `\`${k}=${v}\`: not a value that fits ${k}`;
    if ((mask & (bits << shift)) !== 0n) return `\`${k}\` given twice`;
    value |= n << shift;
    mask |= bits << shift;
  }
  return { text, value, mask };
}

/** Does a field value (of `size` bytes) match an observed value? */
export function observedMatches(obs: ObservedValue, value: bigint | undefined, size: number): boolean {
  if (value === undefined) return false;
  const width = BigInt(8 * size);
  const full = (1n << width) - 1n;
  // a value that does not fit the field (in the bits compared) can never be what the field holds
  const magnitude = obs.value < 0n ? -obs.value : obs.value;
  if (obs.mask === undefined ? magnitude > full : (obs.value & obs.mask & ~full) !== 0n) return false;
  const want = BigInt.asUintN(Number(width), obs.value);
  const mask = (obs.mask ?? full) & full;
  return ((value ^ want) & mask) === 0n;
}

// ---------------------------------------------------------------------------------------------
// Loading

class Source {
  constructor(readonly file: string, readonly doc: Document, readonly lines: LineCounter) {}

  lineOf(path: Array<string | number>): number | undefined {
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? this.doc.contents : this.doc.getIn(path.slice(0, n), true);
      const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
      if (range) return this.lines.linePos(range[0]).line;
    }
    return undefined;
  }

  fail(path: Array<string | number>, detail: string): never {
    const where = path.length ? `\`${path.map((p) => (typeof p === 'number' ? `[${p}]` : p)).join('.').replace(/\.\[/g, '[')}\`: ` : '';
    throw new DeviationError(this.file, this.lineOf(path), where + detail);
  }

  str(path: Array<string | number>, v: unknown, re?: RegExp, what?: string): string {
    if (typeof v !== 'string' || v.trim() === '') this.fail(path, 'must be a non-empty string');
    if (re && !re.test(v)) this.fail(path, `\`${v}\` is not ${what ?? `of the form ${re}`}`);
    return v.trim();
  }

  map(path: Array<string | number>, v: unknown, keys: readonly string[]): Record<string, unknown> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, `must be a map (keys: ${keys.join(', ')})`);
    for (const k of Object.keys(v)) if (!keys.includes(k)) this.fail([...path, k], `unknown key \`${k}\` (known: ${keys.join(', ')})`);
    return v as Record<string, unknown>;
  }

  list(path: Array<string | number>, v: unknown, nonEmpty: boolean): unknown[] {
    if (v === undefined) {
      if (nonEmpty) this.fail(path, 'is required');
      return [];
    }
    if (!Array.isArray(v)) this.fail(path, 'must be a list');
    if (nonEmpty && v.length === 0) this.fail(path, 'must not be empty');
    return v;
  }
}

function parseVersions(src: Source, path: Array<string | number>, raw: unknown): Deviation['versions'] {
  const form = '{range, match: <regex on the column version>, checked: [versions seen], fixed?: {in, by}}';
  if (raw === undefined) src.fail(path, `is required: ${form}`);
  if (typeof raw === 'string') src.fail(path, `must be ${form}: the versions the entry was seen on are part of its evidence`);
  const o = src.map(path, raw, VERSION_KEYS);
  for (const k of ['range', 'match', 'checked']) if (o[k] === undefined) src.fail(path, `needs \`${k}\` (${form})`);
  const range = src.str([...path, 'range'], o.range);
  const text = src.str([...path, 'match'], o.match);
  let match: RegExp;
  try {
    match = new RegExp(text);
  } catch (e) {
    return src.fail([...path, 'match'], `not a regular expression: ${(e as Error).message}`);
  }
  const checked = src.list([...path, 'checked'], o.checked, true).map((v, j) => src.str([...path, 'checked', j], v));
  checked.forEach((v, j) => {
    if (!match.test(v)) src.fail([...path, 'checked', j], `\`${v}\` is not matched by \`${text}\`: an entry applies to every version it was seen on`);
  });
  if (o.fixed === undefined) return { range, match, checked };
  const f = src.map([...path, 'fixed'], o.fixed, FIXED_KEYS);
  for (const k of FIXED_KEYS) if (f[k] === undefined) src.fail([...path, 'fixed'], `needs \`${k}\`: {in: <first version checked without it>, by: <upstream commit or thread, or "not found">}`);
  const fixedIn = src.str([...path, 'fixed', 'in'], f.in);
  if (match.test(fixedIn)) src.fail([...path, 'fixed', 'in'], `\`${fixedIn}\` is matched by \`${text}\`: a version that fixed the entry is outside its range`);
  return { range, match, checked, fixed: { in: fixedIn, by: src.str([...path, 'fixed', 'by'], f.by) } };
}

function parseEvidence(src: Source, path: Array<string | number>, raw: unknown): DeviationEvidence {
  if (raw === undefined) src.fail(path, 'is required: {manual, peer: [{repo, path, line, commit?, note}], threads?: [urls]}');
  const o = src.map(path, raw, EVIDENCE_KEYS);
  if (o.manual === undefined) src.fail(path, 'needs `manual`: the manual section that says what should happen (e.g. "APM vol. 2 §15.20")');
  const manual = src.str([...path, 'manual'], o.manual);
  const peer = src.list([...path, 'peer'], o.peer, false).map((p, i): PeerReference => {
    const pp = [...path, 'peer', i];
    const po = src.map(pp, p, PEER_KEYS);
    for (const k of ['repo', 'path', 'line', 'note']) if (po[k] === undefined) src.fail(pp, `needs \`${k}\``);
    const line = src.str([...pp, 'line'], po.line, /^[1-9][0-9]*$/, 'a line number');
    const ref: PeerReference = {
      repo: src.str([...pp, 'repo'], po.repo, REPO_RE, 'owner/name'),
      path: src.str([...pp, 'path'], po.path),
      line: Number(line),
      note: src.str([...pp, 'note'], po.note),
    };
    if (po.commit !== undefined) ref.commit = src.str([...pp, 'commit'], po.commit, COMMIT_RE, 'a commit id (7 to 40 lower-case hex digits)');
    if (po.function !== undefined) ref.function = src.str([...pp, 'function'], po.function);
    return ref;
  });
  const threads = src.list([...path, 'threads'], o.threads, false).map((t, i) => src.str([...path, 'threads', i], t, URL_RE, 'an http(s) URL'));
  if (peer.length === 0 && threads.length === 0) {
    src.fail(path, 'needs at least one peer source reference (`peer`) or mailing-list/issue thread (`threads`) besides the manual');
  }
  return { manual, peer, threads };
}

function parseEntry(src: Source, i: number, raw: unknown, seen: Map<string, number>): Deviation {
  const path = [i];
  const o = src.map(path, raw, ENTRY_KEYS);
  for (const k of ['id', 'backend', 'versions', 'cases', 'fields', 'expected', 'summary', 'evidence']) {
    if (o[k] === undefined) src.fail(path, `needs \`${k}\``);
  }
  const id = src.str([i, 'id'], o.id, ID_RE, 'a kebab-case id such as `qemu-icebp-ud`');
  const other = seen.get(id);
  if (other !== undefined) src.fail([i, 'id'], `id \`${id}\` is already used by the entry at line ${other}`);
  const line = src.lineOf(path) ?? 1;
  seen.set(id, line);
  const cases = src.list([i, 'cases'], o.cases, true).map((c, j) => src.str([i, 'cases', j], c, CASE_GLOB_RE, 'a case-id glob (* and ? wildcards)'));
  const fields = src.list([i, 'fields'], o.fields, true).map((f, j) => src.str([i, 'fields', j], f, FIELD_RE, 'a record field name'));
  const dup = fields.find((f, j) => fields.indexOf(f) !== j);
  if (dup !== undefined) src.fail([i, 'fields'], `field \`${dup}\` listed twice`);
  const observed: Record<string, ObservedValue> = {};
  if (o.observed !== undefined) {
    const obs = src.map([i, 'observed'], o.observed, fields);
    for (const [field, v] of Object.entries(obs)) {
      const parsed = parseObserved(v);
      if (typeof parsed === 'string') src.fail([i, 'observed', field], parsed);
      observed[field] = parsed;
    }
  }
  return {
    id,
    backend: src.str([i, 'backend'], o.backend, BACKEND_RE, 'a backend name such as qemu-tcg'),
    versions: parseVersions(src, [i, 'versions'], o.versions),
    cases,
    fields,
    observed,
    expected: src.str([i, 'expected'], o.expected),
    summary: src.str([i, 'summary'], o.summary),
    evidence: parseEvidence(src, [i, 'evidence'], o.evidence),
    showsThrough: o.shows_through === undefined ? [] : src.list([i, 'shows_through'], o.shows_through, true).map((f, j) => src.str([i, 'shows_through', j], f, BACKEND_RE, 'a backend family such as kvm-tcg')),
    file: src.file,
    line,
  };
}

/**
 * " #" after a plain value starts a YAML comment, which silently cuts text such as "raises #UD"
 * to "raises": a comment on a value's line is refused (whole-line comments are fine). Shared by
 * the registry and the findings register (report/findings.ts), whose prose has the same trap.
 */
export function refuseValueComments(doc: Document, lines: LineCounter, error: (line: number, detail: string) => Error): void {
  visit(doc, {
    Scalar(_key, node) {
      if (isScalar(node) && node.comment !== undefined && node.range) {
        throw error(lines.linePos(node.range[0]).line, `a \`#\` after this value starts a YAML comment ("#${node.comment}"), which cuts the text: quote the value or use \`>-\``);
      }
    },
  });
}

/** Parse and validate the registry's text. An empty file is an empty registry. */
export function parseDeviations(text: string, file = 'deviations.yaml'): Deviation[] {
  const lines = new LineCounter();
  // failsafe: scalars stay the strings they were written as (0xffffffff, 7.2, 4 stay text)
  const doc = parseDocument(text, { schema: 'failsafe', prettyErrors: true, uniqueKeys: true, lineCounter: lines });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    throw new DeviationError(file, e.linePos?.[0]?.line, `not valid YAML: ${e.message.split('\n')[0]}`);
  }
  refuseValueComments(doc, lines, (line, detail) => new DeviationError(file, line, detail));
  const src = new Source(file, doc, lines);
  if (doc.contents === null) return [];
  if (!isSeq(doc.contents)) src.fail([], isMap(doc.contents) ? 'the registry is a list of entries (`- id: …`), not a map' : 'the registry is a list of entries');
  const seen = new Map<string, number>();
  return (doc.toJS() as unknown[]).map((raw, i) => parseEntry(src, i, raw, seen));
}

/** Load the registry; a missing file is an empty registry when `optional`. */
export async function loadDeviations(path: string, opts: { optional?: boolean; displayPath?: string } = {}): Promise<Deviation[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (opts.optional && (e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new DeviationError(opts.displayPath ?? path, undefined, `cannot read the deviation registry: ${(e as Error).message}`);
  }
  return parseDeviations(text, opts.displayPath ?? path);
}

/**
 * Registries of several files as one (the project's, a template folder's, --deviations): an entry
 * id names one entry in all of them, so an id in two files is an error naming both.
 */
export function mergeRegistries(registries: ReadonlyArray<readonly Deviation[]>): Deviation[] {
  const byId = new Map<string, Deviation>();
  const all: Deviation[] = [];
  for (const entries of registries) {
    for (const d of entries) {
      const first = byId.get(d.id);
      if (first) throw new DeviationError(d.file, d.line, `entry id \`${d.id}\` is already used by ${first.file}:${first.line}: give one of them another id`);
      byId.set(d.id, d);
      all.push(d);
    }
  }
  return all;
}

// ---------------------------------------------------------------------------------------------
// Matching

const caseRes = new WeakMap<Deviation, RegExp[]>();

/** Does the entry apply to this backend family and version, and this case? */
export function entryApplies(d: Deviation, backend: string, version: string | undefined, caseId: string): boolean {
  // `backend` is the column's family (core/columns.ts): qemu-tcg for qemu-tcg@11.1
  if (d.backend !== backend) return false;
  if (version === undefined || !d.versions.match.test(version)) return false;
  let res = caseRes.get(d);
  if (!res) caseRes.set(d, (res = d.cases.map(globToRegExp)));
  return res.some((r) => r.test(caseId));
}

/**
 * The first entry that explains `backend` giving `value` in `field` of case `caseId`: it applies to
 * the backend, version and case, lists the field, and — when it states the observed value — the
 * value is that one. A different value is not explained.
 */
export function findCovering(
  registry: readonly Deviation[],
  q: { backend: string; version: string | undefined; caseId: string; field: string; value: bigint | undefined; size: number },
): Deviation | undefined {
  return registry.find((d) => {
    if (!d.fields.includes(q.field) || !entryApplies(d, q.backend, q.version, q.caseId)) return false;
    const obs = d.observed[q.field];
    return obs === undefined || observedMatches(obs, q.value, q.size);
  });
}

/** The evidence of an entry as one line: `APM vol. 2 §…; qemu/qemu target/…:123 (abc1234) — note; <url>`. */
export function evidenceLines(d: Deviation): string[] {
  const out = [`manual: ${d.evidence.manual}`];
  for (const p of d.evidence.peer) {
    const at = `${p.repo} ${p.path}:${p.line}${p.commit ? ` @${p.commit.slice(0, 12)}` : ''}${p.function ? ` (${p.function})` : ''}`;
    out.push(`source: ${at} — ${p.note}`);
  }
  for (const t of d.evidence.threads) out.push(`thread: ${t}`);
  return out;
}
