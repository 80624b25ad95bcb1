// Counts per matrix axis: how many cases take each value of each parameter (over all templates,
// for `svmconf list`), and the verdicts per template, axis and value (for the matrix report), so
// a reader sees at once e.g. that every divergence of a template has owner=l1 or temp=cold.

import type { Case } from '../core/types.ts';
import { VERDICTS, type CaseComparison, type Verdict } from './compare.ts';

/** axis name → value → number of cases, axes and values in first-seen order. */
export type AxisCounts = Map<string, Map<string, number>>;

/** Cases per parameter value, over every template that has the parameter. */
export function axisCounts(cases: readonly Pick<Case, 'params'>[]): AxisCounts {
  const out: AxisCounts = new Map();
  for (const c of cases) {
    for (const [name, value] of Object.entries(c.params)) {
      let values = out.get(name);
      if (!values) out.set(name, (values = new Map()));
      values.set(value, (values.get(value) ?? 0) + 1);
    }
  }
  return out;
}

/** One line per axis: `  name: v1:n1 v2:n2`. */
export function formatAxisCounts(counts: AxisCounts, indent = '  '): string[] {
  return [...counts].map(([name, values]) => `${indent}${name}: ${[...values].map(([v, n]) => `${v}:${n}`).join(' ')}`);
}

export interface AxisVerdicts {
  template: string;
  axis: string;
  value: string;
  verdicts: Record<Verdict, number>;
}

/** One key per (template, axis, value), for maps of rows. */
export const axisKey = (r: { template: string; axis: string; value: string }): string => `${r.template}\u0000${r.axis}\u0000${r.value}`;

/**
 * The rows a case counts in, one per (template, axis, value) of its parameters: taken from `rows`,
 * or made by `make` and added there, so rows keep the first-seen order of templates, axes and values.
 * The verdicts here and each column's conformance (report/conformance.ts) are grouped by this one rule.
 */
export function axisRowsOf<R>(rows: Map<string, R>, c: Pick<Case, 'params'> & { template: string }, make: (axis: string, value: string) => R): R[] {
  return Object.entries(c.params).map(([axis, value]) => {
    const key = axisKey({ template: c.template, axis, value });
    let row = rows.get(key);
    if (!row) rows.set(key, (row = make(axis, value)));
    return row;
  });
}

/** Verdict counts per template, axis and value (templates, axes, values in first-seen order). */
export function axisVerdicts(cases: readonly Pick<CaseComparison, 'template' | 'params' | 'verdict'>[]): AxisVerdicts[] {
  const rows = new Map<string, AxisVerdicts>();
  for (const c of cases) {
    const make = (axis: string, value: string): AxisVerdicts =>
      ({ template: c.template, axis, value, verdicts: Object.fromEntries(VERDICTS.map((v) => [v, 0])) as Record<Verdict, number> });
    for (const row of axisRowsOf(rows, c, make)) row.verdicts[c.verdict]++;
  }
  return [...rows.values()];
}
