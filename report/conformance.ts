// Conformance per implementation: the question a reader asks first — how does this QEMU, this
// Bochs flavour, this KVM do against the manual, area by area? The case verdicts of
// report/compare.ts are over all columns; here each column (backend and version) is counted on
// its own, per template and per parameter value (report/axes.ts), from the same comparison: what
// its record was against its reference.
//
// One rule for every view: a run's matrix (terminal, matrix.md, `compare --json`) and publish's
// family sections (report/publish.ts, matrix.json) both turn a case on a column into a
// ColumnOutcome with `outcomeOf` and count the outcomes with `tallyColumn`.

import type { BackendInfo, CaseResult, Results } from '../core/types.ts';
import { axisRowsOf } from './axes.ts';
import type { CaseComparison, Comparison } from './compare.ts';
import type { Deviation } from './deviations.ts';
import { cellFor, type CellKind } from './format.ts';

/** What one case came to on one column. */
export type ColumnOutcome = 'agree' | 'known' | 'open' | 'diverge' | 'notRun' | 'problem' | 'reference' | 'missing';

/**
 * A cell of the matrix as conformance counts it: the verdict `open` (the manual leaves the outcome
 * open) kept apart; undefined-bit differences agree; the reference itself, or the one OK record of
 * a case, is not counted (`reference`).
 */
export function outcomeOf(kind: CellKind, open: boolean): ColumnOutcome {
  switch (kind) {
    case 'missing': return 'missing';
    case 'notrun': return 'notRun';
    case 'problem': return 'problem';
    case 'reference': case 'single': return 'reference';
    default:
      if (open) return 'open';
      return kind === 'diverge' ? 'diverge' : kind === 'known' ? 'known' : 'agree';
  }
}

/** One case on one column of a run. */
export function columnOutcome(c: CaseComparison, r: CaseResult | undefined, column: string): ColumnOutcome {
  return outcomeOf(cellFor(c, r, column).kind, c.verdict === 'open');
}

/** The registry entries that explain a column's record in a case (as the deviating backend, or as the one deviated against). */
export function knownEntries(c: Pick<CaseComparison, 'deviations' | 'known'>, column: string): string[] {
  return [...new Set(c.deviations.filter((m) => m.backend === column || (m.against === column && c.known.includes(column))).map((m) => m.id))];
}

export interface ConformanceCounts {
  agree: number;
  known: number;
  open: number;
  diverge: number;
  notRun: number;
  problem: number;
}

export interface ConformanceRow extends ConformanceCounts {
  template: string;
  /** Rows of ColumnConformance.axes: the parameter and its value (`nrips`, `off`). */
  axis?: string;
  value?: string;
  /** The registry entries behind `known`. */
  entries: string[];
}

export interface ColumnConformance {
  column: string;
  version: string;
  /** The backend family the column is a version of (BackendInfo.family), when the backend says. */
  family?: string;
  /** The pinned peer the column runs (BackendInfo.peer), when it runs one. */
  peer?: string;
  total: ConformanceCounts & { entries: string[] };
  /** Why cases did not run, each reason once with its count (most frequent first). */
  notRunReasons: Array<{ reason: string; cases: number }>;
  templates: ConformanceRow[];
  /** Per template, parameter and value: grouped by template and parameter, each in first-seen order. */
  axes: Array<ConformanceRow & { axis: string; value: string }>;
  /** Every registry entry behind the column's known deviations (first seen first). */
  deviations: string[];
  /** The findings (expected/findings.yaml) those entries belong to. */
  findings: string[];
}

/** One case on one column, as both views hand it to tallyColumn. */
export interface CaseOnColumn {
  template: string;
  params: Readonly<Record<string, string>>;
  outcome: ColumnOutcome;
  /** known: the entries that explain it. */
  entries: readonly string[];
  /** notRun: why (the result's reason, else its status). */
  reason?: string;
}

/** What a column is, besides its cases. */
export interface ColumnHead {
  column: string;
  version: string;
  family?: string;
  peer?: string;
}

const zero = (): ConformanceCounts => ({ agree: 0, known: 0, open: 0, diverge: 0, notRun: 0, problem: 0 });

const addOnce = (list: string[], ids: readonly string[]): void => {
  for (const id of ids) if (!list.includes(id)) list.push(id);
};

/** The head of a run's column from its BackendInfo. */
export function columnHead(b: Pick<BackendInfo, 'name' | 'version' | 'family' | 'peer'>, column = b.name): ColumnHead {
  return { column, version: b.version ?? '?', ...(b.family ? { family: b.family } : {}), ...(b.peer ? { peer: b.peer } : {}) };
}

/** Count one column's cases: in total, per template, per template, axis and value; the entries' findings from the registry. */
export function tallyColumn(head: ColumnHead, cases: Iterable<CaseOnColumn>, registry: readonly Deviation[] = []): ColumnConformance {
  const templates = new Map<string, ConformanceRow>();
  const axes = new Map<string, ConformanceRow & { axis: string; value: string }>();
  const total = { ...zero(), entries: [] as string[] };
  const reasons = new Map<string, number>();
  for (const c of cases) {
    const o = c.outcome;
    if (o === 'missing' || o === 'reference') continue;
    let t = templates.get(c.template);
    if (!t) templates.set(c.template, (t = { template: c.template, ...zero(), entries: [] }));
    const rows = [total, t, ...axisRowsOf(axes, c, (axis, value) => ({ template: c.template, axis, value, ...zero(), entries: [] }))];
    for (const row of rows) {
      row[o]++;
      if (o === 'known') addOnce(row.entries, c.entries);
    }
    if (o === 'notRun') reasons.set(c.reason ?? '?', (reasons.get(c.reason ?? '?') ?? 0) + 1);
  }
  // rows grouped by template, then by axis (each in first-seen order), values in first-seen order within
  const rank = new Map<string, number>();
  for (const a of axes.values()) for (const k of [a.template, `${a.template}\u0000${a.axis}`]) if (!rank.has(k)) rank.set(k, rank.size);
  const byAxis = [...axes.values()].sort((x, y) => rank.get(x.template)! - rank.get(y.template)! || rank.get(`${x.template}\u0000${x.axis}`)! - rank.get(`${y.template}\u0000${y.axis}`)!);
  const finding = new Map(registry.filter((d) => d.finding).map((d) => [d.id, d.finding!] as const));
  return {
    ...head, total,
    notRunReasons: [...reasons].map(([reason, n]) => ({ reason, cases: n })).sort((x, y) => y.cases - x.cases),
    templates: [...templates.values()],
    axes: byAxis,
    deviations: [...total.entries],
    findings: [...new Set(total.entries.flatMap((id) => (finding.has(id) ? [finding.get(id)!] : [])))],
  };
}

/** Every compared column of a run but the reference model columns, per template and axis value. */
export function conformance(results: Results, cmp: Comparison, registry: readonly Deviation[] = []): ColumnConformance[] {
  const byId = new Map(results.cases.map((c) => [c.id, c] as const));
  return results.backends
    .filter((b) => b.kind !== 'model' && cmp.backends.includes(b.name))
    .map((b) => tallyColumn(columnHead(b), cmp.cases.map((c): CaseOnColumn => {
      const r = byId.get(c.id)?.results[b.name];
      const outcome = columnOutcome(c, r, b.name);
      return {
        template: c.template, params: c.params, outcome,
        entries: outcome === 'known' ? knownEntries(c, b.name) : [],
        ...(r ? { reason: r.reason || r.status } : {}),
      };
    }), registry));
}

/** A column's counts in a few words: `420 agree · 118 known · 31 open · 0 diverge · 491 not run`. */
export function countsText(c: ConformanceCounts): string {
  return `${c.agree} agree · ${c.known} known · ${c.open} open · ${c.diverge} diverge · ${c.notRun} not run${c.problem ? ` · ${c.problem} problems` : ''}`;
}
