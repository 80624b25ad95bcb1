// Comparison of one case's records across backends, and the summary of a whole run.
//
// Per case, over the backends whose status is OK:
//   agree    ≥2 OK and every record equals the reference's on all defined bits
//   known    ≥2 OK and every difference in a defined bit is a known deviation: for each differing
//            field an entry of the deviation registry (report/deviations.ts) for that backend, or for
//            the reference backend, covers the case, the field and the value the backend gives
//   diverge  ≥2 OK and some record differs from the reference's in a defined bit no entry covers
//   single   exactly one OK: nothing to compare with
//   none     no OK result
// The reference is the first OK backend in a preference order (`model` first once it exists, then
// the run's backend order). Records are compared byte for byte, field by field when the template's
// layout is known. A per-field *defined-bits mask* (docs/architecture.md "Comparison") decides which differing
// bits count: differences outside the mask are informational, never a divergence. The model ships
// a mask with its results (CaseResult.mask, model/svm/masks.ts); without one every bit counts.

import { crc32 } from 'node:zlib';
import type { CaseOutcome, DeviationMatch, FieldDecode, RecordField, Results, Status, WarmColdSummary } from '../core/types.ts';

export type { DeviationMatch } from '../core/types.ts';
import { formatValue, hex, layoutSize, parseHex, readLE } from './decode.ts';
import { findCovering, type Deviation } from './deviations.ts';
import { columnFamily, familyOf } from '../core/columns.ts';
import { fieldOfMask, maskSwitchesFromSvmEdx, recordMask } from '../model/svm/masks.ts';

/**
 * `open`: the manual leaves the case's outcome open (CaseResult.open, set by the model): every
 * backend is shown, no bit is compared, and it is never a divergence.
 */
export type Verdict = 'agree' | 'open' | 'known' | 'diverge' | 'single' | 'none';
export const VERDICTS: readonly Verdict[] = ['agree', 'open', 'known', 'diverge', 'single', 'none'];
export const STATUSES: readonly Status[] = ['OK', 'SKIP', 'CRASH', 'TIMEOUT', 'ERROR', 'UNSUPPORTED'];
/** Non-OK statuses that mean something went wrong (as opposed to SKIP / UNSUPPORTED, which are by design). */
export const PROBLEM_STATUSES: readonly Status[] = ['CRASH', 'TIMEOUT', 'ERROR'];

export function isProblem(status: Status): boolean {
  return PROBLEM_STATUSES.includes(status);
}

/** Preference order for the reference backend; the run's own backend order follows. */
export const DEFAULT_PREFERENCE: readonly string[] = ['model'];

/** Pseudo field names for differences that are not about one declared field. */
export const SIZE_FIELD = '(size)';
export const RECORD_FIELD = '(record)';

/**
 * The defined-bits hook: the bits of `field` that the architecture defines for this case. Return
 * undefined for "all bits" (the default). Bits outside the mask that differ are informational.
 * `outcome` carries every backend's result, so a mask shipped with the model's result can be read here.
 */
export type DefinedMask = (ctx: { outcome: CaseOutcome; field: RecordField; reference: string }) => bigint | undefined;

/**
 * The default defined-bits hook: the mask a result carries (CaseResult.mask; the model gives one),
 * the reference's first, else the model's. No mask: every bit counts.
 */
export const maskFromResults: DefinedMask = ({ outcome, field, reference }) => {
  const mask = outcome.results[reference]?.mask ?? outcome.results.model?.mask;
  if (mask === undefined || mask.length < 2 * (field.offset + field.size)) return undefined;
  let v = 0n;
  for (let i = field.size - 1; i >= 0; i--) v = (v << 8n) | BigInt(parseInt(mask.slice(2 * (field.offset + i), 2 * (field.offset + i) + 2), 16));
  return v;
};

/**
 * Per compared backend, the defined-bits mask of the reference's record under the SVM features
 * that backend's own kernel read from CPUID (CaseResult.cpuidSvmEdx; model/svm/masks.ts): a field
 * the manual defines only with a feature the backend does not report is not held against it
 * (docs/svm-rules.md "Masks follow each backend's CPUID"). A bit counts only where it is defined
 * under both the backend's and the reference's features, and the reference's own mask
 * (definedMask) applies on top. Absent for a backend whose kernel printed no CPUID line.
 */
function ownFeatureMasks(outcome: CaseOutcome, layout: readonly RecordField[], reference: string, order: readonly string[]): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>();
  const refRecord = outcome.results[reference]?.record;
  if (refRecord === undefined || !/^(?:[0-9a-f]{2})*$/i.test(refRecord)) return out;
  for (const b of order) {
    const edx = outcome.results[b]?.cpuidSvmEdx;
    if (edx === undefined || !/^[0-9a-f]{8}$/i.test(edx)) continue;
    out.set(b, recordMask(layout, refRecord.toLowerCase(), maskSwitchesFromSvmEdx(parseInt(edx, 16))));
  }
  return out;
}

export interface CompareOptions {
  /** Backends to try as the reference first, in order (default DEFAULT_PREFERENCE). */
  preference?: readonly string[];
  /** Column order of the backends (default: the order of Results.backends, then any others seen). */
  backends?: readonly string[];
  definedMask?: DefinedMask;
  /** The deviation registry (expected/deviations.yaml); empty: every divergence is a divergence. */
  deviations?: readonly Deviation[];
  /** Backend name → BackendInfo.version, for the entries' version patterns (compareResults fills it). */
  versions?: Readonly<Record<string, string | undefined>>;
  /**
   * Column name → the family the registry files its entries under (core/columns.ts; compareResults
   * fills it from BackendInfo.family); a column not named here is its own name's family.
   */
  families?: Readonly<Record<string, string>>;
  /**
   * Backend name → the backend it is compared with (BackendInfo.reference; compareResults fills
   * it). Backends naming the same reference form a group compared on its own, the reference
   * naming itself; backends not named here are compared with the case's usual reference.
   */
  referenceOf?: Readonly<Record<string, string>>;
}


export interface FieldValue {
  backend: string;
  /** Undefined when the record is too short for the field. */
  value: bigint | undefined;
  text: string;
}

export interface FieldDiff {
  /** The field's name, or SIZE_FIELD / RECORD_FIELD. */
  field: string;
  decode: FieldDecode;
  /** Defined bits of the field (all ones by default). */
  mask: bigint;
  /** True when every differing bit lies outside the mask: shown, but not a divergence. */
  informational: boolean;
  /** Every OK backend's value, the reference first, then in column order. */
  values: FieldValue[];
  /** OK backends whose value differs from the reference's (in any bit). */
  differing: string[];
  /** OK backends whose value differs from the reference's in a defined bit (covered or not). */
  strict: string[];
  /** Backends (of `strict`) whose difference a registry entry explains, with the entry's id. */
  known: Array<{ backend: string; id: string }>;
}

export interface CaseComparison {
  id: string;
  template: string;
  params: Record<string, string>;
  verdict: Verdict;
  /** With verdict `open`: why the manual leaves the outcome open (the reference's CaseResult.open). */
  open?: string;
  /** The backend every other OK record is compared with (undefined when no backend is OK). */
  reference: string | undefined;
  /** OK backends in column order. */
  ok: string[];
  /** OK backends equal to the reference on all defined bits (the reference included). */
  agreeing: string[];
  /** OK backends that differ from the reference in a defined bit that no registry entry explains. */
  diverging: string[];
  /** OK backends that differ from the reference in defined bits, every one explained by an entry. */
  known: string[];
  /** The registry entries that explained differences in this case. */
  deviations: DeviationMatch[];
  /** Field differences, in layout order; informational ones included and flagged. */
  diffs: FieldDiff[];
  /** Short digest (6 hex digits of the CRC-32) of each OK backend's record. */
  digests: Record<string, string>;
  /**
   * With reference groups (CompareOptions.referenceOf): OK backend → the reference it was compared
   * with, when that is not `reference`. The diffs of each group list its own reference first.
   */
  references?: Record<string, string>;
}

/** Column order: the given list, else Results.backends' order, then backends only seen in cases. */
export function backendOrder(results: Pick<Results, 'backends' | 'cases'>, given?: readonly string[]): string[] {
  const order: string[] = [...(given ?? results.backends.map((b) => b.name))];
  if (given) return order;
  for (const c of results.cases) for (const name of Object.keys(c.results)) if (!order.includes(name)) order.push(name);
  return order;
}

/** Short digest of a record: the first 6 hex digits of the CRC-32 of its (lower-case) hex text, enough to tell records apart at a glance. */
export function digest(recordHex: string): string {
  return crc32(Buffer.from(recordHex.toLowerCase(), 'latin1')).toString(16).padStart(8, '0').slice(0, 6);
}

function pickReference(ok: readonly string[], preference: readonly string[]): string | undefined {
  for (const p of preference) if (ok.includes(p)) return p;
  return ok[0];
}

function safeBytes(record: string | undefined): Uint8Array | undefined {
  try {
    return parseHex(record ?? '');
  } catch {
    return undefined;
  }
}

/** The reference a backend is compared with, and the backends of each reference group. */
function referenceGroups(columns: readonly string[], referenceOf: Readonly<Record<string, string>>): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const b of columns) {
    const g = referenceOf[b] ?? '';
    groups.set(g, [...(groups.get(g) ?? []), b]);
  }
  return groups;
}

/**
 * Compare one case across its OK backends. `layout` may be undefined (template unknown): raw compare.
 * With reference groups, each group is compared on its own and the verdicts combine: diverge if
 * any group diverges, else known, else agree if any group compared two records, else single/none.
 */
export function compareCase(
  outcome: CaseOutcome,
  layout: readonly RecordField[] | undefined,
  opts: CompareOptions = {},
): CaseComparison {
  const referenceOf = opts.referenceOf ?? {};
  const allColumns = [...(opts.backends ?? [])];
  for (const name of Object.keys(outcome.results)) if (!allColumns.includes(name)) allColumns.push(name);
  const groups = referenceGroups(allColumns, referenceOf);
  if (groups.size > 1 || (groups.size === 1 && !groups.has(''))) {
    const parts = [...groups].map(([ref, members]) => {
      const results = Object.fromEntries(members.filter((b) => outcome.results[b] !== undefined).map((b) => [b, outcome.results[b]!]));
      return compareCase({ ...outcome, results }, layout, {
        ...opts, referenceOf: {}, backends: members, ...(ref !== '' ? { preference: [ref] } : {}),
      });
    });
    return mergeGroups(outcome, allColumns, parts);
  }
  const columns = [...(opts.backends ?? [])];
  for (const name of Object.keys(outcome.results)) if (!columns.includes(name)) columns.push(name);
  const ok = columns.filter((b) => outcome.results[b]?.status === 'OK');
  const reference = pickReference(ok, [...(opts.preference ?? DEFAULT_PREFERENCE), ...columns]);
  const base = { id: outcome.id, template: outcome.template, params: outcome.params, reference, ok };
  const digests: Record<string, string> = {};
  for (const b of ok) digests[b] = digest(outcome.results[b]?.record ?? '');

  if (ok.length === 0 || reference === undefined) {
    return { ...base, verdict: 'none', agreeing: [], diverging: [], known: [], deviations: [], diffs: [], digests };
  }
  if (ok.length === 1) {
    return { ...base, verdict: 'single', agreeing: [reference], diverging: [], known: [], deviations: [], diffs: [], digests };
  }

  const order = [reference, ...ok.filter((b) => b !== reference)];
  const hexOf = (b: string): string => (outcome.results[b]?.record ?? '').toLowerCase();
  const bytes = new Map(order.map((b) => [b, safeBytes(hexOf(b))] as const));
  const diffs: FieldDiff[] = [];
  const divergent = new Set<string>();
  const registry = opts.deviations ?? [];
  const versions = opts.versions ?? {};
  const family = (b: string): string => opts.families?.[b] ?? familyOf(b);

  // Records that are not hex cannot be decoded: compare them as strings.
  if ([...bytes.values()].some((v) => v === undefined) || layout === undefined || layout.length === 0) {
    const differing = order.filter((b) => hexOf(b) !== hexOf(reference));
    if (differing.length > 0) {
      differing.forEach((b) => divergent.add(b));
      diffs.push({
        field: RECORD_FIELD, decode: 'hex', mask: -1n, informational: false, differing, strict: differing, known: [],
        values: order.map((b) => ({ backend: b, value: undefined, text: hexOf(b) || '(empty)' })),
      });
    }
  } else {
    const lengths = new Map(order.map((b) => [b, bytes.get(b)?.length ?? 0] as const));
    const refLen = lengths.get(reference) ?? 0;
    const sizeDiffering = order.filter((b) => lengths.get(b) !== refLen);
    if (sizeDiffering.length > 0) {
      sizeDiffering.forEach((b) => divergent.add(b));
      diffs.push({
        field: SIZE_FIELD, decode: 'count', mask: -1n, informational: false, differing: sizeDiffering, strict: sizeDiffering, known: [],
        values: order.map((b) => ({ backend: b, value: BigInt(lengths.get(b) ?? 0), text: `${lengths.get(b)} bytes` })),
      });
    }
    const own = ownFeatureMasks(outcome, layout, reference, order);
    for (const field of layout) {
      const full = (1n << BigInt(8 * field.size)) - 1n;
      const mask = (opts.definedMask?.({ outcome, field, reference }) ?? full) & full;
      const vals = order.map((b) => readLE(bytes.get(b) ?? new Uint8Array(), field.offset, field.size));
      const refVal = vals[0];
      const differing: string[] = [];
      const strict: string[] = [];
      vals.forEach((v, i) => {
        if (i === 0 || v === refVal) return;
        const b = order[i] as string;
        differing.push(b);
        const bMask = mask & (fieldOfMask(own.get(b), field) ?? full) & (fieldOfMask(own.get(reference), field) ?? full);
        if (v === undefined || refVal === undefined || ((v ^ refVal) & bMask) !== 0n) {
          strict.push(b);
          divergent.add(b);
        }
      });
      if (differing.length === 0) continue;
      // A registry entry may explain the difference: one about this backend giving its value, or one
      // about the reference giving the reference's value (the reference is then the one off the manual).
      const known: FieldDiff['known'] = [];
      if (registry.length > 0) {
        for (const b of strict) {
          const i = order.indexOf(b);
          const q = { caseId: outcome.id, field: field.name, size: field.size };
          const own = findCovering(registry, { ...q, backend: family(b), version: versions[b], value: vals[i] });
          const ref = own ?? findCovering(registry, { ...q, backend: family(reference), version: versions[reference], value: refVal });
          const entry = own ?? ref;
          if (entry) known.push({ backend: b, id: entry.id });
        }
      }
      diffs.push({
        field: field.name, decode: field.decode, mask, informational: strict.length === 0, differing, strict, known,
        values: order.map((b, i) => {
          const v = vals[i];
          return { backend: b, value: v, text: v === undefined ? '(missing)' : formatValue(v, field) };
        }),
      });
    }
    // Bytes beyond the layout, when every record has the same (unexpected) length.
    const end = layoutSize(layout);
    if (sizeDiffering.length === 0 && refLen > end) {
      const tail = (b: string): string => hexOf(b).slice(2 * end);
      const differing = order.filter((b) => tail(b) !== tail(reference));
      if (differing.length > 0) {
        differing.forEach((b) => divergent.add(b));
        diffs.push({
          field: RECORD_FIELD, decode: 'hex', mask: -1n, informational: false, differing, strict: differing, known: [],
          values: order.map((b) => ({ backend: b, value: undefined, text: `trailing ${tail(b)}` })),
        });
      }
    }
  }

  // Values that decode to the same text but differ in raw bits: add the raw hex so the diff is visible.
  for (const d of diffs) {
    const seen = new Map<string, bigint | undefined>();
    let ambiguous = false;
    for (const v of d.values) {
      if (seen.has(v.text) && seen.get(v.text) !== v.value) ambiguous = true;
      seen.set(v.text, v.value);
    }
    if (ambiguous) for (const v of d.values) if (v.value !== undefined) v.text = `${v.text} [${hex(v.value)}]`;
  }

  // A backend is a known deviation when every field it differs in (defined bits) is explained.
  const explained = (b: string): boolean =>
    diffs.every((d) => !d.strict.includes(b) || d.known.some((k) => k.backend === b));
  const diverging = ok.filter((b) => divergent.has(b) && !explained(b));
  const known = ok.filter((b) => divergent.has(b) && explained(b));
  const agreeing = ok.filter((b) => !divergent.has(b));
  const deviations: DeviationMatch[] = [];
  for (const d of diffs) {
    for (const k of d.known) {
      if (!known.includes(k.backend)) continue;
      // the entry is about the backend itself or about the reference
      const about = registry.find((e) => e.id === k.id)?.backend === family(k.backend) ? k.backend : reference;
      const against = about === k.backend ? reference : k.backend;
      const m = deviations.find((x) => x.id === k.id && x.backend === about && x.against === against);
      if (m) {
        if (!m.fields.includes(d.field)) m.fields.push(d.field);
      } else deviations.push({ id: k.id, backend: about, against, fields: [d.field] });
    }
  }
  const open = outcome.results[reference]?.open;
  const verdict: Verdict = diverging.length > 0 ? 'diverge' : open !== undefined ? 'open' : known.length > 0 ? 'known' : 'agree';
  return { ...base, verdict, ...(open !== undefined ? { open } : {}), agreeing, diverging, known, deviations, diffs, digests };
}

const VERDICT_RANK: Readonly<Record<Verdict, number>> = { none: 0, single: 1, agree: 2, open: 3, known: 4, diverge: 5 };

/** One comparison of a case from the comparisons of its reference groups. */
function mergeGroups(outcome: CaseOutcome, columns: readonly string[], parts: readonly CaseComparison[]): CaseComparison {
  const inOrder = (xs: Iterable<string>): string[] => {
    const set = new Set(xs);
    return columns.filter((b) => set.has(b));
  };
  const main = parts.find((p) => p.reference !== undefined && p.ok.length > 1) ?? parts.find((p) => p.reference !== undefined);
  const reference = main?.reference;
  const references: Record<string, string> = {};
  for (const p of parts) {
    if (p.reference === undefined || p.reference === reference) continue;
    for (const b of p.ok) references[b] = p.reference;
  }
  let verdict: Verdict = 'none';
  for (const p of parts) if (VERDICT_RANK[p.verdict] > VERDICT_RANK[verdict]) verdict = p.verdict;
  const ok = inOrder(parts.flatMap((p) => p.ok));
  const open = parts.find((p) => p.open !== undefined)?.open;
  return {
    id: outcome.id, template: outcome.template, params: outcome.params, verdict, reference, ok,
    ...(verdict === 'open' && open !== undefined ? { open } : {}),
    agreeing: inOrder(parts.flatMap((p) => p.agreeing)),
    diverging: inOrder(parts.flatMap((p) => p.diverging)),
    known: inOrder(parts.flatMap((p) => p.known)),
    deviations: parts.flatMap((p) => p.deviations),
    diffs: parts.flatMap((p) => p.diffs),
    digests: Object.assign({}, ...parts.map((p) => p.digests)),
    ...(Object.keys(references).length > 0 ? { references } : {}),
  };
}

/** The reference a backend's record was compared with in a case. */
export function referenceFor(c: Pick<CaseComparison, 'reference' | 'references'>, backend: string): string | undefined {
  return c.references?.[backend] ?? c.reference;
}

/** `model`, or `model, model@amd-10h` when the named backends were compared with several references. */
export function referencesText(c: Pick<CaseComparison, 'reference' | 'references'>, backends: readonly string[]): string {
  const refs = [...new Set(backends.map((b) => referenceFor(c, b) ?? '?'))];
  return refs.length > 0 ? refs.join(', ') : (c.reference ?? '?');
}

/** One line per field difference: `exit_int_info: qemu-tcg V=1 …, kvm V=1 …`. */
export function formatDiff(d: FieldDiff): string {
  const ids = [...new Set(d.known.map((k) => k.id))];
  const label = d.informational ? `${d.field} (informational: differs only in undefined bits)`
    : ids.length > 0 && d.known.length === d.strict.length ? `${d.field} (known deviation ${ids.join(', ')})`
      : ids.length > 0 ? `${d.field} (known deviation ${ids.join(', ')} for ${d.known.map((k) => k.backend).join(', ')} only)`
        : d.field;
  return `${label}: ${d.values.map((v) => `${v.backend} ${v.text}`).join(', ')}`;
}

export type StatusCounts = Record<Status, number> & { missing: number };

export interface Problem {
  case: string;
  backend: string;
  status: Status;
  reason: string;
}

export interface Summary {
  cases: number;
  /** Per backend (column order): how many cases got each status; `missing` = no result at all. */
  backends: Record<string, StatusCounts>;
  verdicts: Record<Verdict, number>;
  /** Cases that agree but show informational differences (outside the defined bits). */
  informational: number;
  /** CRASH / TIMEOUT / ERROR results, with their reasons, in case order. */
  problems: Problem[];
  /** SKIP / UNSUPPORTED results: by design, not problems. */
  notRun: number;
  /** No divergence and no problem (known deviations are not divergences). */
  clean: boolean;
}

export function emptyCounts(): StatusCounts {
  return { OK: 0, SKIP: 0, CRASH: 0, TIMEOUT: 0, ERROR: 0, UNSUPPORTED: 0, missing: 0 };
}

export function summarize(results: Pick<Results, 'cases' | 'backends'>, comparisons: readonly CaseComparison[], columns?: readonly string[]): Summary {
  const order = backendOrder(results, columns);
  const backends: Record<string, StatusCounts> = {};
  for (const b of order) backends[b] = emptyCounts();
  const problems: Problem[] = [];
  let notRun = 0;
  for (const c of results.cases) {
    for (const b of order) {
      const r = c.results[b];
      const counts = backends[b] ?? emptyCounts();
      if (!r) {
        counts.missing++;
        continue;
      }
      counts[r.status]++;
      if (isProblem(r.status)) problems.push({ case: c.id, backend: b, status: r.status, reason: r.reason ?? '' });
      else if (r.status !== 'OK') notRun++;
    }
  }
  const verdicts: Record<Verdict, number> = { agree: 0, open: 0, known: 0, diverge: 0, single: 0, none: 0 };
  let informational = 0;
  for (const cmp of comparisons) {
    verdicts[cmp.verdict]++;
    if (cmp.verdict === 'agree' && cmp.diffs.length > 0) informational++;
  }
  return {
    cases: results.cases.length, backends, verdicts, informational, problems, notRun,
    clean: verdicts.diverge === 0 && problems.length === 0,
  };
}

export interface Comparison {
  /** Backend column order used everywhere in the report. */
  backends: string[];
  cases: CaseComparison[];
  summary: Summary;
}

/** Compare every case of a run and summarize. */
export function compareResults(results: Results, opts: CompareOptions = {}): Comparison {
  const backends = backendOrder(results, opts.backends);
  const versions = { ...Object.fromEntries(results.backends.map((b) => [b.name, b.version] as const)), ...opts.versions };
  const families = { ...Object.fromEntries(results.backends.map((b) => [b.name, columnFamily(b)] as const)), ...opts.families };
  const definedMask = opts.definedMask ?? maskFromResults;
  const referenceOf = opts.referenceOf ?? Object.fromEntries(results.backends.filter((b) => b.reference !== undefined).map((b) => [b.name, b.reference!] as const));
  const cases = results.cases.map((c) => compareCase(c, results.layouts[c.template], { ...opts, backends, versions, families, definedMask, referenceOf }));
  return { backends, cases, summary: summarize(results, cases, backends) };
}

/** The registry entries used, in registry order, with the cases each explained. */
export function usedDeviations(cmp: Pick<Comparison, 'cases'>, registry: readonly Deviation[]): Array<{ entry: Deviation; cases: CaseComparison[] }> {
  return registry
    .map((entry) => ({ entry, cases: cmp.cases.filter((c) => c.deviations.some((m) => m.id === entry.id)) }))
    .filter((u) => u.cases.length > 0);
}

/** results.json's `deviations`: case id → the entries that explained its differences. */
export function deviationsByCase(cmp: Pick<Comparison, 'cases'>): Record<string, DeviationMatch[]> {
  const out: Record<string, DeviationMatch[]> = {};
  for (const c of cmp.cases) if (c.deviations.length > 0) out[c.id] = c.deviations.map((m) => ({ ...m, fields: [...m.fields] }));
  return out;
}

/**
 * A compared run's exit code (bin/cli.ts EXIT): 2 when a result is a problem (CRASH, TIMEOUT,
 * ERROR), 1 on a divergence or a warm/cold disagreement (known deviations are not divergences), else 0.
 */
export function runExitCode(summary: Summary, warmCold?: Pick<WarmColdSummary, 'disagreements'>): 0 | 1 | 2 {
  if (summary.problems.length > 0) return 2;
  if (summary.verdicts.diverge > 0 || (warmCold?.disagreements.length ?? 0) > 0) return 1;
  return 0;
}
