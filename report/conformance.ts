// Conformance per implementation: the question a reader asks first — how does this QEMU, this
// Bochs flavour, this KVM do against the manual, area by area? The case verdicts of
// report/compare.ts are over all columns; here each column (backend and version) is counted on
// its own, per template, from the same comparison: what its record was against its reference.

import type { CaseResult, Results } from '../core/types.ts';
import type { CaseComparison, Comparison } from './compare.ts';
import { cellFor } from './format.ts';

/** What one case came to on one column. */
export type ColumnOutcome = 'agree' | 'known' | 'open' | 'diverge' | 'notRun' | 'problem' | 'reference' | 'missing';

/** One case on one column: the cell of the matrix, with the verdict `open` kept apart. */
export function columnOutcome(c: CaseComparison, r: CaseResult | undefined, column: string): ColumnOutcome {
  const cell = cellFor(c, r, column);
  switch (cell.kind) {
    case 'missing': return 'missing';
    case 'notrun': return 'notRun';
    case 'problem': return 'problem';
    case 'reference': case 'single': return 'reference';
    default:
      if (c.verdict === 'open') return 'open';
      return cell.kind === 'diverge' ? 'diverge' : cell.kind === 'known' ? 'known' : 'agree';
  }
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
  /** The registry entries behind `known`. */
  entries: string[];
}

export interface ColumnConformance {
  column: string;
  version: string;
  total: ConformanceCounts & { entries: string[] };
  /** Why cases did not run, each reason once with its count (most frequent first). */
  notRunReasons: Array<{ reason: string; cases: number }>;
  templates: ConformanceRow[];
}

const zero = (): ConformanceCounts => ({ agree: 0, known: 0, open: 0, diverge: 0, notRun: 0, problem: 0 });

/** Every compared column but the reference model columns, per template. */
export function conformance(results: Results, cmp: Comparison): ColumnConformance[] {
  const byId = new Map(results.cases.map((c) => [c.id, c] as const));
  return results.backends
    .filter((b) => b.kind !== 'model' && cmp.backends.includes(b.name))
    .map((b) => {
      const rows = new Map<string, ConformanceRow>();
      const total = { ...zero(), entries: [] as string[] };
      const reasons = new Map<string, number>();
      for (const c of cmp.cases) {
        const r = byId.get(c.id)?.results[b.name];
        const o = columnOutcome(c, r, b.name);
        if (o === 'missing' || o === 'reference') continue;
        let row = rows.get(c.template);
        if (!row) rows.set(c.template, (row = { template: c.template, ...zero(), entries: [] }));
        row[o]++;
        total[o]++;
        if (o === 'notRun') reasons.set(r?.reason ?? r?.status ?? '?', (reasons.get(r?.reason ?? r?.status ?? '?') ?? 0) + 1);
        if (o === 'known') {
          for (const m of c.deviations) {
            if (m.backend !== b.name && m.against !== b.name) continue;
            if (!row.entries.includes(m.id)) row.entries.push(m.id);
            if (!total.entries.includes(m.id)) total.entries.push(m.id);
          }
        }
      }
      return {
        column: b.name, version: b.version ?? '?', total,
        notRunReasons: [...reasons].map(([reason, cases]) => ({ reason, cases })).sort((x, y) => y.cases - x.cases),
        templates: [...rows.values()],
      };
    });
}

/** A column's counts in a few words: `420 agree · 118 known · 31 open · 0 diverge · 491 not run`. */
export function countsText(c: ConformanceCounts): string {
  return `${c.agree} agree · ${c.known} known · ${c.open} open · ${c.diverge} diverge · ${c.notRun} not run${c.problem ? ` · ${c.problem} problems` : ''}`;
}
